"""The PGO server's side of the MedMij protocol: authorization request, token request, FHIR calls.

* Authorization request (RFC 6749 §4.1.1; medmij-protocol.md §3.2): ``response_type=code``,
  ``client_id`` = the PGO's hostname, ``redirect_uri`` on that hostname, ``scope`` =
  ``<aanbieder>~<id>`` (R1 form, accepted in both dialects for Delen and Verzamelen), ``state``.
* Token request (RFC 6749 §4.1.3) over mutual TLS with the PGO's client certificate (RFC 8705 §2,
  ``tls_client_auth``; core.tls rules): the certificate is the client authentication.
* FHIR STU3 calls with ``Authorization: Bearer`` (RFC 6750 §2.1) on the same TLS client certificate,
  so certificate-bound tokens (RFC 8705 §3) are accepted.
"""

from __future__ import annotations

import secrets
import typing as t
import uuid
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import urlencode

import requests

FHIR_JSON = "application/fhir+json"


class PgoError(Exception):
    """A step of the flow failed; ``message`` is fit to show a developer."""


@dataclass(frozen=True, slots=True)
class Aanbieder:
    """One zorgaanbieder as the ZAL describes it, with the endpoints of its DVA."""

    naam: str
    weergavenaam: str
    authorize_url: str
    token_url: str
    fhir_base: str
    diensten: tuple[str, ...]

    @property
    def short_name(self) -> str:
        return self.naam[: -len("@medmij")] if self.naam.endswith("@medmij") else self.naam


@dataclass(slots=True)
class TokenGrant:
    access_token: str
    expires_in: int | None
    scope: str
    raw: dict[str, t.Any] = field(default_factory=dict)
    #: R2 langdurige toestemming: present when the person consented for an unlimited time
    refresh_token: str | None = None

    def granted(self, asked: t.Iterable[str]) -> list[str]:
        """The gegevensdiensten this token covers, from the token response's ``scope`` (RFC 6749 §5.1:
        the scope granted, which may be narrower than asked: a DVZA drops gegevensdiensten it holds no
        data for). Both forms are read: ids (``48 51``) and the request form (``umcdemo~48``). Without a
        scope the token covers what was asked (RFC 6749 §5.1: scope is then "identical")."""
        asked = list(asked)
        if not self.scope.strip():
            return asked
        given: set[str] = set()
        for part in self.scope.split():
            if "~" in part:
                given.add(part.rsplit("~", 1)[1])
            elif part.isdigit():
                given.add(part)
            else:
                return asked  # the R2 form: the aanbieder's name alone stands for what was asked
        return [d for d in asked if d in given]


@dataclass(slots=True)
class PgoClient:
    """One PGO server: its hostname (= OAuth ``client_id``), client certificate and CA bundle."""

    hostname: str
    redirect_uri: str
    certificate: tuple[str, str] | None = None
    ca_bundle: str | bool = True
    timeout: float = 30.0
    _http: requests.Session = field(init=False, repr=False)

    @classmethod
    def configured(cls, hostname: str, *, cert: str | None = None, key: str | None = None, ca: str | None = None,
                   redirect_uri: str | None = None) -> PgoClient:
        """From the simulator's settings (``PGO_*`` or CLI options): the key may sit in the certificate
        file, the redirect URI defaults to ``https://<hostname>/callback``, the CA bundle to the system's."""
        return cls(hostname=hostname, redirect_uri=redirect_uri or f"https://{hostname}/callback",
                   certificate=(cert, key or cert) if cert else None, ca_bundle=ca or True)

    def __post_init__(self) -> None:
        # *.localhost is loopback (RFC 6761 §6.3), as in Chromium: the development network's names
        from .localnames import install

        install()
        self._http = requests.Session()
        # the configured CA bundle decides, not REQUESTS_CA_BUNDLE (which would override a session's verify)
        self._http.trust_env = False
        self._http.cert = self.certificate
        self._http.verify = self.ca_bundle

    # --------------------------------------------------------------- authorization code flow
    def scope(self, aanbieder: Aanbieder, diensten: t.Iterable[str]) -> str:
        return " ".join(f"{aanbieder.short_name}~{d}" for d in diensten)

    def authorize_url(self, aanbieder: Aanbieder, diensten: t.Iterable[str], state: str | None = None) -> str:
        """The URL to send the person's browser to (RFC 6749 §4.1.1)."""
        params = {"response_type": "code", "client_id": self.hostname, "redirect_uri": self.redirect_uri,
                  "scope": self.scope(aanbieder, diensten), "state": state or secrets.token_urlsafe(16)}
        separator = "&" if "?" in aanbieder.authorize_url else "?"
        return aanbieder.authorize_url + separator + urlencode(params)

    def exchange_code(self, aanbieder: Aanbieder, code: str) -> TokenGrant:
        """POST the code to the token endpoint over mutual TLS (RFC 6749 §4.1.3, RFC 8705 §2)."""
        try:
            response = self._http.post(aanbieder.token_url, timeout=self.timeout, data={
                "grant_type": "authorization_code", "code": code, "client_id": self.hostname,
                "redirect_uri": self.redirect_uri})
        except requests.RequestException as exc:
            raise PgoError(_unreachable(aanbieder.token_url, exc)) from exc
        return self._token_response(response)

    def refresh(self, aanbieder: Aanbieder, refresh_token: str) -> TokenGrant:
        """A new access token with a refresh token (RFC 6749 §6; MedMij R2 langdurige toestemming),
        over the same mutual TLS."""
        try:
            response = self._http.post(aanbieder.token_url, timeout=self.timeout, data={
                "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.hostname})
        except requests.RequestException as exc:
            raise PgoError(_unreachable(aanbieder.token_url, exc)) from exc
        grant = self._token_response(response)
        grant.refresh_token = grant.refresh_token or refresh_token
        return grant

    @staticmethod
    def _token_response(response: requests.Response) -> TokenGrant:
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            raise PgoError(f"token request refused ({response.status_code}): "
                           f"{body.get('error', '')} {body.get('error_description', '')}".strip())
        return TokenGrant(str(body["access_token"]), body.get("expires_in"), str(body.get("scope", "")), body,
                          str(body["refresh_token"]) if body.get("refresh_token") else None)

    # ---------------------------------------------------------------------------- FHIR calls
    def _headers(self, token: str, accept: str = FHIR_JSON) -> dict[str, str]:
        """RFC 6750 §2.1 bearer token; MedMij-Request-ID and X-Correlation-ID on every request
        (fhir-content.md §1.1)."""
        return {"Authorization": f"Bearer {token}", "Accept": accept, "MedMij-Request-ID": str(uuid.uuid4()),
                "X-Correlation-ID": str(uuid.uuid4())}

    def get(self, aanbieder: Aanbieder, token: str, path: str) -> dict[str, t.Any]:
        url = aanbieder.fhir_base.rstrip("/") + "/" + path.lstrip("/")
        try:
            response = self._http.get(url, headers=self._headers(token), timeout=self.timeout)
        except requests.RequestException as exc:
            raise PgoError(_unreachable(url, exc)) from exc
        body = _json(response)
        if response.status_code != 200:
            raise PgoError(f"GET {path}: {response.status_code} {_outcome_text(body)}")
        return body

    def get_bytes(self, aanbieder: Aanbieder, token: str, path: str, accept: str) -> tuple[bytes, str]:
        url = aanbieder.fhir_base.rstrip("/") + "/" + path.lstrip("/")
        try:
            response = self._http.get(url, headers=self._headers(token, accept), timeout=self.timeout)
        except requests.RequestException as exc:
            raise PgoError(_unreachable(url, exc)) from exc
        if response.status_code != 200:
            raise PgoError(f"GET {path}: {response.status_code}")
        return response.content, response.headers.get("Content-Type", accept)

    def put(self, aanbieder: Aanbieder, token: str, path: str, resource: dict[str, t.Any]) -> dict[str, t.Any]:
        """FHIR update (``PUT [base]/<type>/<id>``, http.html#update), asking for the stored resource back."""
        url = aanbieder.fhir_base.rstrip("/") + "/" + path.lstrip("/")
        headers = self._headers(token) | {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        try:
            response = self._http.put(url, json=resource, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PgoError(_unreachable(url, exc)) from exc
        body = _json(response)
        if response.status_code not in (200, 201):
            raise PgoError(f"PUT {path} refused ({response.status_code}): {_outcome_text(body)}")
        return body

    def post_bundle(self, aanbieder: Aanbieder, token: str, bundle: dict[str, t.Any]) -> dict[str, t.Any]:
        """POST a batch/transaction to the base (FHIR STU3 http.html#transaction), asking for the
        created resources back (``Prefer: return=representation``)."""
        headers = self._headers(token) | {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        try:
            response = self._http.post(aanbieder.fhir_base.rstrip("/"), json=bundle, headers=headers,
                                       timeout=self.timeout)
        except requests.RequestException as exc:
            raise PgoError(_unreachable(aanbieder.fhir_base, exc)) from exc
        body = _json(response)
        if response.status_code not in (200, 201):
            raise PgoError(f"sending refused ({response.status_code}): {_outcome_text(body)}")
        return body


def _unreachable(url: str, exc: requests.RequestException) -> str:
    """What went wrong, in a line a developer can act on (no traceback)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return (f"{url}: the TLS connection failed ({exc.__class__.__name__}). Is the DVZA's CA in the CA bundle "
                "(--ca / PGO_CA_BUNDLE, for the development network var/pki/ca.pem) and is the client certificate "
                "(--cert/--key) one the DVZA trusts?")
    return f"{url} not reachable: {exc.__class__.__name__}: {exc}"


def _json(response: requests.Response) -> dict[str, t.Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _outcome_text(body: dict[str, t.Any]) -> str:
    if body.get("resourceType") != "OperationOutcome":
        return ""
    return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in body.get("issue", []))
