"""Reading the bearer token of a resource request (RFC 6750 §2.1, MedMij core.rscint.200: only the
Authorization request header field is used — no form or query tokens)."""

from __future__ import annotations

from .errors import InvalidRequestError
from .errors import InvalidTokenError


class MissingTokenError(InvalidTokenError):
    """No credentials at all: RFC 6750 §3.1 says the error code SHOULD then be omitted."""

    def __init__(self) -> None:
        super().__init__("An access token is required (Authorization: Bearer <token>)")


def bearer_token(authorization: str | None) -> str:
    """The token in ``Authorization: Bearer <token>``; the scheme name is case-insensitive."""
    if not authorization:
        raise MissingTokenError()
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidRequestError("Use the Bearer authentication scheme (RFC 6750 section 2.1)")
    value = value.strip()
    if not value or " " in value:
        raise InvalidTokenError("Malformed bearer token")
    return value
