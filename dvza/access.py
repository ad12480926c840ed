"""The one interface between the resource server and the authorization server.

``fhir_api`` asks "who is this token for, which gegevensdiensten" (:class:`fhir_api.access.AccessResolver`);
``oauth`` answers with its own ``TokenInfo``. This adapter joins them so that neither package
imports the other: ``oauth`` knows no FHIR, ``fhir_api`` knows no OAuth storage.
"""

from __future__ import annotations

import typing as t

from flask import Request

from fhir_api.access import AccessGrant
from fhir_api.errors import Unauthorized
from oauth import mtls
from oauth.bearer import MissingTokenError
from oauth.bearer import bearer_token
from oauth.errors import InvalidRequestError
from oauth.errors import InvalidTokenError
from oauth.tokens import QUALIFICATION
from oauth.tokens import introspect

if t.TYPE_CHECKING:
    from .db import Database

REALM = "medmij-dvza"
#: where :meth:`TokenAccessResolver.resolve` leaves the grant of the request's token, for the
#: application's own middleware (qualification recording, :mod:`dvza.qualification.recorder`)
GRANT_ENVIRON_KEY = "dvza.access_grant"


def _challenge(error: str | None = None, description: str | None = None) -> str:
    """RFC 6750 §3 ``WWW-Authenticate`` value."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append('error_description="' + description.replace('"', "'") + '"')
    return "Bearer " + ", ".join(parts)


class TokenAccessResolver:
    def __init__(self, database: Database, *, qualification_mode: bool,
                 trusted_proxies: t.Sequence[str] = (), client_cert_header: str = "X-SSL-Client-Cert"):
        self.database = database
        self.qualification_mode = qualification_mode
        self.trusted_proxies = tuple(trusted_proxies)
        self.client_cert_header = client_cert_header

    def client_thumbprint(self, request: Request) -> str | None:
        certificate = mtls.client_certificate(
            request.environ, remote_addr=request.remote_addr, trusted_proxies=self.trusted_proxies,
            header_name=self.client_cert_header,
        )
        return mtls.thumbprint_s256(certificate) if certificate is not None else None

    def resolve(self, request: Request) -> AccessGrant:
        try:
            token = bearer_token(request.headers.get("Authorization"))
            info = introspect(
                self.database.connection(), token, client_thumbprint=self.client_thumbprint(request),
                allow_qualification=self.qualification_mode,
            )
        except MissingTokenError as exc:
            raise Unauthorized(exc.description, headers={"WWW-Authenticate": _challenge()}) from None
        except InvalidRequestError as exc:
            raise Unauthorized(
                exc.description, headers={"WWW-Authenticate": _challenge("invalid_request", exc.description)}
            ) from None
        except InvalidTokenError as exc:
            raise Unauthorized(
                exc.description, headers={"WWW-Authenticate": _challenge("invalid_token", exc.description)}
            ) from None
        grant = AccessGrant(
            patient_id=info.patient_id,
            gegevensdiensten=info.gegevensdiensten,
            client_id=info.client_id,
            token_ref=info.token_ref,
            scope=info.scope,
            qualification=info.kind == QUALIFICATION,
        )
        request.environ[GRANT_ENVIRON_KEY] = grant
        return grant
