"""The one interface between the resource server and the authorization server.

``fhir_api`` asks "who is this token for, which gegevensdiensten" (:class:`fhir_api.access.AccessResolver`);
``oauth`` answers with its own ``TokenInfo``. This adapter joins them so that neither package
imports the other: ``oauth`` knows no FHIR, ``fhir_api`` knows no OAuth storage.

Reads (GET, HEAD, POST ``_search``) take a token's row from a small per-process cache after its first use, and do not
look it up again (issue 12: one round trip less on every read). What could have changed since — the
token revoked (RFC 7009, consent withdrawn on any worker or instance), expired, re-bound — is confirmed
in the very statement that writes the read's audit record (``oauth.tokens.STILL_VALID`` in
``dvza.audit``): if it no longer holds, no record is written and the answer is withheld
(``fhir_api.errors.GrantLapsed``, 401). Expiry, kind and certificate binding are also checked in the
process on every request. Writes always look the token up.
"""

from __future__ import annotations

import threading
import typing as t
from collections import OrderedDict

from flask import Request

from fhir_api.access import AccessGrant
from fhir_api.errors import Unauthorized
from oauth import mtls
from oauth.bearer import MissingTokenError
from oauth.bearer import bearer_token
from oauth.errors import InvalidRequestError
from oauth.errors import InvalidTokenError
from oauth.tokens import QUALIFICATION
from oauth.tokens import TokenInfo
from oauth.tokens import check_presented
from oauth.tokens import hash_secret
from oauth.tokens import introspect

if t.TYPE_CHECKING:
    from .db import Database

REALM = "medmij-dvza"
#: where :meth:`TokenAccessResolver.resolve` leaves the grant of the request's token, for the
#: application's own middleware (qualification recording, :mod:`dvza.qualification.recorder`)
GRANT_ENVIRON_KEY = "dvza.access_grant"


#: methods of reads: their grant may come from the cache, and their audit record confirms it before the answer
#: leaves (and ``POST [type]/_search``, a read too)
READ_METHODS = frozenset({"GET", "HEAD"})


def is_read(request: Request) -> bool:
    return request.method in READ_METHODS or (request.method == "POST" and request.path.endswith("/_search"))


def challenge(error: str | None = None, description: str | None = None) -> str:
    """RFC 6750 §3 ``WWW-Authenticate`` value."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append('error_description="' + description.replace('"', "'") + '"')
    return "Bearer " + ", ".join(parts)


class GrantCache:
    """Token rows by token hash (SHA-256), the ``size`` most recently used, for this process. Only valid
    tokens are kept; an entry is dropped when its token is refused."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: OrderedDict[str, TokenInfo] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> TokenInfo | None:
        with self._lock:
            info = self._items.get(token_hash)
            if info is not None:
                self._items.move_to_end(token_hash)
            return info

    def put(self, token_hash: str, info: TokenInfo) -> None:
        with self._lock:
            self._items[token_hash] = info
            if len(self._items) > self.size:
                self._items.popitem(last=False)

    def discard(self, token_hash: str) -> None:
        with self._lock:
            self._items.pop(token_hash, None)


class TokenAccessResolver:
    def __init__(self, database: Database, *, qualification_mode: bool,
                 trusted_proxies: t.Sequence[str] = (), client_cert_header: str = "X-SSL-Client-Cert"):
        self.database = database
        self.grants = GrantCache()
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
            info = self._info(token, request)
        except MissingTokenError as exc:
            raise Unauthorized(exc.description, headers={"WWW-Authenticate": challenge()}) from None
        except InvalidRequestError as exc:
            raise Unauthorized(
                exc.description, headers={"WWW-Authenticate": challenge("invalid_request", exc.description)}
            ) from None
        except InvalidTokenError as exc:
            raise Unauthorized(
                exc.description, headers={"WWW-Authenticate": challenge("invalid_token", exc.description)}
            ) from None
        grant = AccessGrant(
            patient_id=info.patient_id,
            gegevensdiensten=info.gegevensdiensten,
            client_id=info.client_id,
            token_ref=info.token_ref,
            scope=info.scope,
            qualification=info.kind == QUALIFICATION,
            recheck=info if is_read(request) else None,  # oauth.tokens.recheck_params: dvza.audit
        )
        request.environ[GRANT_ENVIRON_KEY] = grant
        return grant

    def forget(self, request: Request) -> None:
        """Drop the cached row of the request's token (its grant lapsed: revoked, expired or re-bound), so
        the next request reads it anew."""
        try:
            self.grants.discard(hash_secret(bearer_token(request.headers.get("Authorization"))))
        except (MissingTokenError, InvalidRequestError):
            pass

    def _info(self, token: str, request: Request) -> TokenInfo:
        thumbprint = self.client_thumbprint(request)
        digest = hash_secret(token) if is_read(request) else None
        info = self.grants.get(digest) if digest is not None else None
        if info is None:
            info = introspect(self.database.connection(), token, client_thumbprint=thumbprint,
                              allow_qualification=self.qualification_mode)
            if digest is not None:
                self.grants.put(digest, info)
            return info
        try:
            check_presented(info, client_thumbprint=thumbprint, allow_qualification=self.qualification_mode)
        except InvalidTokenError:
            self.grants.discard(digest)
            raise
        return info
