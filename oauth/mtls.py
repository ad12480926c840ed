"""The TLS client certificate of a backchannel request, and what it proves.

MedMij: the token request is authenticated with mutual TLS, RFC 8705 §2 (``tls_client_auth``):
the certificate's Common Name or a Subject Alternative Name must equal the ``client_id`` (the PGO
node hostname on the OCL), and that hostname must be on the Whitelist (medmij-protocol.md §3.7,
§4.3). Tokens are bound to the certificate by its ``x5t#S256`` thumbprint (RFC 8705 §3.1).

TLS ends either at this server (the WSGI server puts the PEM in ``SSL_CLIENT_CERT``: Werkzeug does,
and ``dvza.serving`` does for gunicorn) or at a proxy that forwards it in a header (nginx
``$ssl_client_escaped_cert``). The header is only believed from configured proxy addresses
(design-references.md §1.7 item 4); from anyone else it is ignored.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import typing as t
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

ENVIRON_KEYS = ("SSL_CLIENT_CERT", "dvza.peer_certificate")


def load_certificate(value: str | bytes) -> x509.Certificate | None:
    """A certificate from PEM (also URL-escaped PEM, as nginx forwards it) or base64 DER."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = unquote(value.strip()) if "%" in value else value.strip()
    try:
        if "-----BEGIN CERTIFICATE-----" in text:
            # some proxies fold the PEM onto one line with spaces instead of newlines
            body = text.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
            der = base64.b64decode("".join(body.split()))
        else:
            der = base64.b64decode("".join(text.split()))
        return x509.load_der_x509_certificate(der)
    except (ValueError, IndexError):
        return None


def is_trusted_proxy(remote_addr: str | None, trusted: t.Iterable[str]) -> bool:
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    for entry in trusted:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_certificate(
    environ: t.Mapping[str, t.Any],
    *,
    remote_addr: str | None,
    trusted_proxies: t.Iterable[str] = (),
    header_name: str = "X-SSL-Client-Cert",
) -> x509.Certificate | None:
    """The client certificate of this request, or None when none was presented.

    The header is trusted by the address of the TCP peer: when Werkzeug's ``ProxyFix`` has already
    replaced ``REMOTE_ADDR`` by the forwarded client address, the original peer is used instead.
    """
    original = environ.get("werkzeug.proxy_fix.orig")
    if isinstance(original, dict) and original.get("REMOTE_ADDR"):
        remote_addr = original["REMOTE_ADDR"]
    for key in ENVIRON_KEYS:
        if environ.get(key):
            return load_certificate(environ[key])
    header_key = "HTTP_" + header_name.upper().replace("-", "_")
    forwarded = environ.get(header_key)
    if forwarded and is_trusted_proxy(remote_addr, trusted_proxies):
        return load_certificate(forwarded)
    return None


def thumbprint_s256(certificate: x509.Certificate) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: base64url (no padding) SHA-256 of the DER certificate."""
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def certificate_hostnames(certificate: x509.Certificate) -> set[str]:
    """Lower-cased Common Name(s) and DNS Subject Alternative Names (protocol §4.3)."""
    names = {a.value.lower() for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
             if isinstance(a.value, str)}
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names |= {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        pass
    return names
