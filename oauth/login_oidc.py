"""DigiD through an OpenID Connect broker (an eToegang/DigiD broker, the VWS authentication service):
the authorization server as OIDC Relying Party (medmij-protocol.md §3.4 "Non-DigiD futures": OIDC with
PKCE in front of DigiD).

* Authorization code flow (OpenID Connect Core §3.1) with **PKCE** S256 (RFC 7636), ``state`` and
  ``nonce`` from :class:`~oauth.login_state.LoginStates` (server-side, single use, bound to the
  browser's session). The provider's endpoints come from its discovery document (OIDC Discovery §4).
* Client authentication at the token endpoint: ``private_key_jwt`` (OIDC Core §9, RFC 7523 §2.2; our
  RSA or EC key, ``OIDC_PRIVATE_KEY``) or ``tls_client_auth`` (RFC 8705 §2.1, ``OIDC_TLS_CERT``/``_KEY``),
  with Authlib's requests client.
* The **ID token** (OIDC Core §3.1.3.7) is checked with joserfc (Authlib's JOSE library): signature
  with a key of the provider's JWKS (asymmetric algorithms only; an unknown ``kid`` makes us fetch
  the JWKS again, so the provider can rotate keys), ``iss``, ``aud`` and ``azp`` (items 3–5: issued to
  us, no other authorized party), ``exp``/``iat`` with ``OIDC_CLOCK_SKEW``, and ``nonce``. The
  authorization response's ``iss`` (RFC 9207) must be the issuer when present.
* The BSN comes from the claim ``OIDC_BSN_CLAIM`` (a bare BSN or ``s00000000:<BSN>``, elfproef); the
  level from ``acr`` through ``OIDC_ACR_LEVELS`` (DigiD's SAML class references by default), refused
  below ``OIDC_MIN_LEVEL``. ``error=access_denied`` from the provider means the person cancelled.

The BSN leaves this module only in the returned :class:`~oauth.login.Person`: tokens are not kept
and nothing here logs claims.
"""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass
from dataclasses import field

import requests
from flask import Request
from flask import Response
from flask import redirect

from .assurance import meets
from .assurance import too_low_message
from .login import LoginCancelled
from .login import LoginFailed
from .login import LoginUnavailable
from .login import Person
from .login import is_valid_bsn

if t.TYPE_CHECKING:
    from .login_state import LoginStates

NAME = "oidc"
#: asymmetric signatures only: never ``none`` or HMAC with a guessable secret
ID_TOKEN_ALGORITHMS = ("RS256", "PS256", "ES256", "RS384", "PS384", "ES384", "RS512", "PS512", "ES512")
TRY_AGAIN = "Begin opnieuw vanuit je persoonlijke gezondheidsomgeving (PGO)."
NOT_CONFIRMED = "De inlogdienst heeft niet bevestigd wie je bent. " + TRY_AGAIN
UNAVAILABLE = "De inlogdienst (DigiD) is op dit moment niet bereikbaar."
#: discovery and JWKS are cached this long (a rotation is also picked up through an unknown ``kid``)
CACHE_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """``OIDC_*`` configuration (validated by ``dvza.config``)."""

    issuer: str
    client_id: str
    redirect_uri: str
    client_auth: str = "private_key_jwt"
    private_key: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    ca_bundle: str | None = None
    scope: str = "openid"
    bsn_claim: str = "bsn"
    #: acr value → level (basis, midden, substantieel, hoog)
    acr_levels: t.Mapping[str, str] = field(default_factory=dict)
    acr_values: str | None = None
    min_level: str = "substantieel"
    timeout: float = 10.0
    clock_skew: int = 60


class OidcLogin:
    """The :class:`~oauth.login.LoginAdapter` for an OpenID Connect provider in front of DigiD."""

    name = NAME

    def __init__(self, settings: OidcSettings, states: LoginStates):
        self.settings = settings
        self.states = states
        self._lock = threading.Lock()
        self._discovery: dict[str, t.Any] | None = None
        self._discovery_at = 0.0
        self._jwks: t.Any = None
        self._jwks_at = 0.0
        self._private_key: str | None = None
        if settings.client_auth == "private_key_jwt" and settings.private_key:
            with open(settings.private_key, encoding="ascii") as handle:
                self._private_key = handle.read()

    # ------------------------------------------------------------------------------- HTTP
    def _http(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override OIDC_CA_BUNDLE
        session.verify = self.settings.ca_bundle or True
        return session

    def _get_json(self, url: str) -> dict[str, t.Any]:
        if not url.startswith("https://"):
            raise LoginFailed(NOT_CONFIRMED)
        try:
            with self._http() as http:
                answer = http.get(url, timeout=self.settings.timeout)
        except requests.RequestException:
            raise LoginUnavailable(UNAVAILABLE) from None
        if answer.status_code != 200:
            raise LoginUnavailable(UNAVAILABLE)
        try:
            body = answer.json()
        except ValueError:
            raise LoginUnavailable(UNAVAILABLE) from None
        if not isinstance(body, dict):
            raise LoginUnavailable(UNAVAILABLE)
        return body

    def discovery(self) -> dict[str, t.Any]:
        """The provider's metadata (OIDC Discovery §4); its ``issuer`` must be ours exactly (§4.3)."""
        with self._lock:
            if self._discovery is not None and time.monotonic() - self._discovery_at < CACHE_SECONDS:
                return self._discovery
        document = self._get_json(self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != self.settings.issuer:
            raise LoginFailed(NOT_CONFIRMED)
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not str(document.get(key, "")).startswith("https://"):
                raise LoginFailed(NOT_CONFIRMED)
        with self._lock:
            self._discovery, self._discovery_at = document, time.monotonic()
        return document

    def _key_set(self, *, refresh: bool = False) -> t.Any:
        from joserfc.jwk import KeySet

        with self._lock:
            if not refresh and self._jwks is not None and time.monotonic() - self._jwks_at < CACHE_SECONDS:
                return self._jwks
        document = self._get_json(self.discovery()["jwks_uri"])
        try:
            keys = KeySet.import_key_set(t.cast(t.Any, document))
        except Exception:  # noqa: BLE001 (a JWKS we cannot read is a provider failure)
            raise LoginUnavailable(UNAVAILABLE) from None
        with self._lock:
            self._jwks, self._jwks_at = keys, time.monotonic()
        return keys

    # ------------------------------------------------------------------------------ start
    def start(self, *, csrf_token: str, finish_url: str) -> Response:
        """Send the browser to the provider's authorization endpoint (OIDC Core §3.1.2.1)."""
        from authlib.common.security import generate_token
        from authlib.integrations.requests_client import OAuth2Session

        endpoint = self.discovery()["authorization_endpoint"]
        nonce = generate_token(32)
        verifier = generate_token(64)  # RFC 7636 §4.1: 43-128 characters
        state = self.states.begin({"nonce": nonce, "code_verifier": verifier})
        client = OAuth2Session(self.settings.client_id, redirect_uri=self.settings.redirect_uri,
                               scope=self.settings.scope, code_challenge_method="S256")
        extra = {"acr_values": self.settings.acr_values} if self.settings.acr_values else {}
        url, _ = client.create_authorization_url(endpoint, state=state, nonce=nonce, code_verifier=verifier,
                                                 **extra)
        return redirect(url, code=303)

    # ----------------------------------------------------------------------------- finish
    def finish(self, request: Request) -> Person:
        stored = self.states.take(request.args.get("state"))
        if stored is None:
            raise LoginFailed("Deze inlogpoging is verlopen of al gebruikt. " + TRY_AGAIN)
        issuer = request.args.get("iss")
        if issuer is not None and issuer != self.settings.issuer:  # RFC 9207 §2.4 mix-up defence
            raise LoginFailed(NOT_CONFIRMED)
        error = request.args.get("error")
        if error == "access_denied":
            raise LoginCancelled()
        if error == "temporarily_unavailable":
            raise LoginUnavailable(UNAVAILABLE)
        code = request.args.get("code", "")
        if error or not code or len(code) > 2048:
            raise LoginFailed(NOT_CONFIRMED)
        tokens = self._exchange(code, stored["code_verifier"])
        claims = self._id_token_claims(tokens.get("id_token"), stored["nonce"])
        level = self.settings.acr_levels.get(str(claims.get("acr", "")))
        if not meets(level, self.settings.min_level):
            raise LoginFailed(too_low_message(level, self.settings.min_level))
        value = claims.get(self.settings.bsn_claim)
        bsn = value.rpartition(":")[2] if isinstance(value, str) else ""
        if isinstance(value, str) and ":" in value and not value.startswith("s00000000:"):
            bsn = ""  # a sector code other than BSN's
        if not is_valid_bsn(bsn):
            raise LoginFailed(NOT_CONFIRMED)
        return Person(bsn)

    def _exchange(self, code: str, verifier: str) -> dict[str, t.Any]:
        """The token request (OIDC Core §3.1.3.1) with PKCE and our client authentication."""
        from authlib.integrations.requests_client import OAuth2Session
        from authlib.integrations.requests_client import OAuthError
        from authlib.oauth2.rfc7523 import PrivateKeyJWT

        token_endpoint = self.discovery()["token_endpoint"]
        if self.settings.client_auth == "private_key_jwt":
            client = OAuth2Session(self.settings.client_id, self._private_key, redirect_uri=self.settings.redirect_uri,
                                   token_endpoint_auth_method=PrivateKeyJWT(token_endpoint))
        else:  # tls_client_auth: client_id in the body, the certificate on the connection
            client = OAuth2Session(self.settings.client_id, redirect_uri=self.settings.redirect_uri,
                                   token_endpoint_auth_method="none")
            client.cert = (self.settings.tls_cert, self.settings.tls_key)
        client.trust_env = False
        client.verify = self.settings.ca_bundle or True
        try:
            with client:
                token = client.fetch_token(token_endpoint, code=code, code_verifier=verifier,
                                           grant_type="authorization_code", timeout=self.settings.timeout)
        except requests.RequestException:
            raise LoginUnavailable(UNAVAILABLE) from None
        except OAuthError:  # invalid_grant (a replayed or expired code), invalid_client, …
            raise LoginFailed(NOT_CONFIRMED) from None
        except ValueError:
            raise LoginFailed(NOT_CONFIRMED) from None
        return dict(token)

    def _id_token_claims(self, id_token: t.Any, nonce: str) -> dict[str, t.Any]:
        """OIDC Core §3.1.3.7: signature (JWKS), iss, aud/azp, exp, iat, nonce.

        The audience (§3.1.3.7 items 3–5): ``aud`` must contain our ``client_id`` and no audience we do
        not trust (item 3) — we trust no other, so it must be us alone; more than one audience needs an
        ``azp`` (item 4); an ``azp``, when present, must be our ``client_id`` (item 5), also next to a
        single ``aud``: a token the provider issued to, or for, another party is never ours."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwt import JWTClaimsRegistry

        if not isinstance(id_token, str) or id_token.count(".") != 2:
            raise LoginFailed(NOT_CONFIRMED)
        try:
            token = jwt.decode(id_token, self._key_for, algorithms=list(ID_TOKEN_ALGORITHMS))
            JWTClaimsRegistry(
                leeway=self.settings.clock_skew,
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id},
                exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except LoginFailed:
            raise
        except (JoseError, ValueError, TypeError, KeyError):
            raise LoginFailed(NOT_CONFIRMED) from None
        claims = dict(token.claims)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if set(audiences) != {self.settings.client_id}:  # item 3: us, and no audience we do not trust
            raise LoginFailed(NOT_CONFIRMED)
        if len(audiences) > 1 and "azp" not in claims:  # item 4
            raise LoginFailed(NOT_CONFIRMED)
        if "azp" in claims and claims["azp"] != self.settings.client_id:  # item 5
            raise LoginFailed(NOT_CONFIRMED)
        return claims

    def _key_for(self, obj: t.Any) -> t.Any:
        """The provider's key named by the token's ``kid``; an unknown kid fetches the JWKS once more
        (key rotation, OIDC Core §10.1.1)."""
        kid = obj.headers().get("kid")
        for refresh in (False, True):
            keys = self._key_set(refresh=refresh)
            if kid is None and len(keys.keys) == 1:
                return keys.keys[0]
            for key in keys.keys:
                if key.kid == kid:
                    return key
        raise LoginFailed(NOT_CONFIRMED)
