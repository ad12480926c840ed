"""The authorization server's errors: Authlib's RFC 6749/6750 error classes, one hierarchy.

Each carries ``error``, ``description`` and ``status_code``; ``get_body()``/``get_headers()`` give
the wire form (RFC 6749 §5.2 JSON for the token endpoint, §4.1.2.1 redirect parameters for the
authorization endpoint, RFC 6750 §3 ``WWW-Authenticate`` for resource requests).
"""

from __future__ import annotations

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError
from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.errors import UnauthorizedClientError
from authlib.oauth2.rfc6749.errors import UnsupportedGrantTypeError
from authlib.oauth2.rfc6749.errors import UnsupportedResponseTypeError
from authlib.oauth2.rfc6750.errors import InvalidTokenError

__all__ = [
    "OAuth2Error", "AccessDeniedError", "InvalidClientError", "InvalidGrantError", "InvalidRequestError",
    "InvalidScopeError", "UnauthorizedClientError", "UnsupportedGrantTypeError",
    "UnsupportedResponseTypeError", "InvalidTokenError",
]
