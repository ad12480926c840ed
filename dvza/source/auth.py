"""Who is calling the source API: one of the hospital's own systems, never a PGO.

* **Mutual TLS** (production): the client certificate must be one of ``SOURCE_CERTIFICATES`` (source name →
  SHA-256 fingerprint of the certificate, as ``dvza source certificate FILE`` prints it) and within its
  validity period. The certificate comes from the TLS layer exactly as for the token endpoint
  (:func:`oauth.mtls.client_certificate`): the WSGI server's ``SSL_CLIENT_CERT``, or the proxy's header, which is
  believed only from ``TRUSTED_PROXIES`` (design-references.md §1.7 item 4). A certificate is pinned by its
  fingerprint, not trusted for its issuer: a PGO's certificate, issued by the same MedMij CAs, is never a source.
* **API key** (development only, switched on with ``SOURCE_API_KEYS_ALLOWED=true``): ``X-Api-Key: <key>``; the
  configuration holds only SHA-256 digests (``SOURCE_API_KEYS``, ``dvza source apikey NAME``).
* A request with ``Authorization: Bearer …`` is refused whatever else it carries: OAuth access tokens are for
  the PGO-facing API only, and this API never accepts a PGO's request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import typing as t
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fhir_api.errors import Forbidden
from fhir_api.errors import Unauthorized
from oauth import mtls

if t.TYPE_CHECKING:
    from flask import Request

API_KEY_HEADER = "X-Api-Key"
#: names of configured sources: no ``:`` (the DVZA's own writers are ``dvza:…``), fit for audit records
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
REALM = 'DVZA-Source realm="medmij-dvza-source"'


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated source: its configured name and how it proved it (``mtls`` or ``api-key``)."""

    name: str
    method: str


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lower-case hex (``openssl x509 -fingerprint -sha256`` without colons)."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def normalise_fingerprint(value: str) -> str:
    return value.replace(":", "").strip().lower()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_config(config: t.Mapping[str, t.Any]) -> str | None:
    """The problem with the source settings, or None (``dvza.config.validate`` raises it)."""
    certificates = config.get("SOURCE_CERTIFICATES") or {}
    keys = config.get("SOURCE_API_KEYS") or {}
    if not isinstance(certificates, dict) or not isinstance(keys, dict):
        return "SOURCE_CERTIFICATES and SOURCE_API_KEYS must map source names to SHA-256 hex digests"
    for name, value in [*certificates.items(), *keys.items()]:
        if not NAME.fullmatch(str(name)):
            return f"source name {name!r}: letters, digits, '.', '_' and '-' only (at most 64)"
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", normalise_fingerprint(value)):
            return f"source {name!r}: the value must be a SHA-256 hex digest (dvza source certificate / apikey)"
    if not isinstance(config.get("SOURCE_API_KEYS_ALLOWED"), bool):
        return "SOURCE_API_KEYS_ALLOWED must be true or false"
    if keys and not config["SOURCE_API_KEYS_ALLOWED"]:
        return ("SOURCE_API_KEYS are for development only: switch them on explicitly with "
                "DVZA_SOURCE_API_KEYS_ALLOWED=true, or give the source a client certificate (SOURCE_CERTIFICATES)")
    return None


class SourceAuthenticator:
    def __init__(self, config: t.Mapping[str, t.Any]):
        certificates = config.get("SOURCE_CERTIFICATES") or {}
        self.certificates = {normalise_fingerprint(v): str(k) for k, v in certificates.items()}
        self.keys = dict(config.get("SOURCE_API_KEYS") or {}) if config.get("SOURCE_API_KEYS_ALLOWED") else {}
        self.trusted_proxies = tuple(config.get("TRUSTED_PROXIES") or ())
        self.header = str(config.get("CLIENT_CERT_HEADER") or "X-SSL-Client-Cert")

    @property
    def enabled(self) -> bool:
        return bool(self.certificates or self.keys)

    def authenticate(self, request: Request, *, now: datetime | None = None) -> Caller:
        """The calling source, or :class:`Unauthorized` (nothing usable) / :class:`Forbidden` (a certificate
        that is not a source's, or a PGO's OAuth token)."""
        challenge = {"WWW-Authenticate": REALM}
        scheme = request.headers.get("Authorization", "").partition(" ")[0].lower()
        if scheme == "bearer":
            raise Forbidden("The source API does not accept OAuth access tokens: it is for the hospital's own "
                            "systems, which authenticate with their client certificate")
        certificate = mtls.client_certificate(request.environ, remote_addr=request.remote_addr,
                                              trusted_proxies=self.trusted_proxies, header_name=self.header)
        if certificate is not None:
            name = self.certificates.get(fingerprint(certificate))
            if name is not None:
                moment = now or datetime.now(UTC)
                if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
                    raise Forbidden(f"The client certificate of source {name!r} is not valid now")
                return Caller(name, "mtls")
        key = request.headers.get(API_KEY_HEADER, "").strip()
        if key and self.keys:
            digest = hash_key(key)
            for name, expected in self.keys.items():
                if hmac.compare_digest(str(expected).lower(), digest):
                    return Caller(str(name), "api-key")
            raise Unauthorized("Unknown API key", headers=challenge)
        if certificate is not None:
            raise Forbidden("This client certificate is not one of the configured source systems "
                            "(SOURCE_CERTIFICATES)")
        raise Unauthorized("The source API needs the client certificate of a configured source system"
                           + (" (or, in development, an X-Api-Key)" if self.keys else ""), headers=challenge)
