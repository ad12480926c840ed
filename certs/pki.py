"""Development PKI for the DVZA: a root CA (optionally an intermediate), a server certificate and
PGO client certificates, written as PEM files and reused while they stay valid.

Stands in for PKIoverheid during development. What the certificates carry follows the MedMij rules
(medmij-protocol.md §4): the DVZA's server certificate names its hostname(s); a PGO node's client
certificate has CN = SAN dNSName = the node hostname, which is also its OAuth ``client_id`` and the
name checked against the Whitelist (§4.3, core.tls.314/315; RFC 8705 §2.1 ``tls_client_auth``).

Certificate profile (RFC 5280):

* CAs: BasicConstraints ``cA=TRUE`` critical with a pathLenConstraint (§4.2.1.9), KeyUsage
  ``keyCertSign`` + ``cRLSign`` critical (§4.2.1.3).
* End entities: BasicConstraints ``cA=FALSE`` critical, KeyUsage ``digitalSignature`` (plus
  ``keyEncipherment`` for RSA) critical, ExtendedKeyUsage ``serverAuth`` or ``clientAuth``
  (§4.2.1.12), SubjectAltName (§4.2.1.6).
* Every certificate: SubjectKeyIdentifier (§4.2.1.2) and AuthorityKeyIdentifier (§4.2.1.1), a random
  positive serial of at most 20 octets (§4.1.2.2), SHA-256 signatures.

Keys are EC P-256 by default (RSA 2048/3072 on request), PKCS#8 PEM without a password, mode 0600.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import ipaddress
import os
import re
import tempfile
import typing as t
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

KeyType = t.Literal["ec-p256", "rsa-2048", "rsa-3072"]
KEY_TYPES: tuple[str, ...] = ("ec-p256", "rsa-2048", "rsa-3072")
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

DEFAULT_SERVER_HOSTNAMES: tuple[str, ...] = ("localhost", "127.0.0.1")
#: Files whose certificate expires within this window are issued anew by :func:`ensure_dev_pki`.
RENEW_WITHIN = dt.timedelta(days=7)
ROOT_DAYS = 3650
INTERMEDIATE_DAYS = 1825
#: 397 days: the longest TLS server certificate lifetime browsers accept (CA/B Forum BR 6.3.2).
LEAF_DAYS = 397
#: Back-date notBefore a little so a peer whose clock is slightly behind still accepts the certificate.
CLOCK_SKEW = dt.timedelta(minutes=5)
ORGANIZATION = "medmij-dvza development PKI"

CA_NAME = "ca"
INTERMEDIATE_NAME = "intermediate"
SERVER_NAME = "server"
RESERVED_NAMES = frozenset({CA_NAME, INTERMEDIATE_NAME, SERVER_NAME})

# RFC 1123 host names (letters, digits, hyphens; labels of 1-63 octets; at most 253 octets). No
# wildcards: MedMij forbids wildcard certificates (medmij-protocol.md §4.2) and a file name is made from it.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


class PkiError(ValueError):
    """A request the development PKI cannot satisfy (bad host name, reserved name, missing CA)."""


# --------------------------------------------------------------------------------------------------
# Keys and certificates in memory


@dataclasses.dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    certificate: x509.Certificate
    key: PrivateKey

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return key_to_pem(self.key)


def generate_key(key_type: str = "ec-p256") -> PrivateKey:
    """A fresh private key: EC P-256 (``secp256r1``, RFC 5480) or RSA 2048/3072 with e = 65537."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa-2048", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise PkiError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def key_type_of(key: PrivateKey | t.Any) -> str | None:
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "ec-p256"
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size in (2048, 3072):
        return f"rsa-{key.key_size}"
    return None


def key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _utcnow(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


def _name(common_name: str, organization: str = ORGANIZATION) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _builder(subject: x509.Name, key: PrivateKey, issuer: Issued | None, *, days: int,
             now: dt.datetime) -> x509.CertificateBuilder:
    """Subject, issuer, validity, serial, SKI and AKI (RFC 5280 §4.1.2, §4.2.1.1, §4.2.1.2)."""
    not_before = now - CLOCK_SKEW
    not_after = now + dt.timedelta(days=days)
    if issuer is not None:
        # never outlive the issuer: path validation checks every certificate's validity (RFC 5280 §6.1.3)
        not_after = min(not_after, issuer.certificate.not_valid_after_utc)
    signer_public = (issuer.key if issuer else key).public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_public), critical=False)
    )


def _sign(builder: x509.CertificateBuilder, signer: PrivateKey) -> x509.Certificate:
    return builder.sign(signer, hashes.SHA256())


def _ca_extensions(builder: x509.CertificateBuilder, path_length: int | None) -> x509.CertificateBuilder:
    """RFC 5280 §4.2.1.9 (cA=TRUE, critical) and §4.2.1.3 (keyCertSign, cRLSign; critical)."""
    return (
        builder
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    )


def create_root_ca(common_name: str = "medmij-dvza Development Root CA", *, key_type: str = "ec-p256",
                   days: int = ROOT_DAYS, path_length: int | None = 1, now: dt.datetime | None = None) -> Issued:
    """A self-signed root CA (RFC 5280 §3.2, §4.2.1.9). ``path_length=1`` allows one intermediate."""
    now = _utcnow(now)
    key = generate_key(key_type)
    builder = _ca_extensions(_builder(_name(common_name), key, None, days=days, now=now), path_length)
    return Issued(_sign(builder, key), key)


def create_intermediate_ca(issuer: Issued, common_name: str = "medmij-dvza Development Intermediate CA", *,
                           key_type: str = "ec-p256", days: int = INTERMEDIATE_DAYS,
                           now: dt.datetime | None = None) -> Issued:
    """An intermediate CA signed by ``issuer``; pathLenConstraint 0: it signs end entities only (RFC 5280 §4.2.1.9)."""
    now = _utcnow(now)
    key = generate_key(key_type)
    builder = _ca_extensions(_builder(_name(common_name), key, issuer, days=days, now=now), 0)
    return Issued(_sign(builder, issuer.key), key)


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    """RFC 5280 §4.2.1.3: signatures for (EC)DHE handshakes; RSA keys may also do RSA key transport (TLS 1.2)."""
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def split_names(names: Iterable[str]) -> list[x509.GeneralName]:
    """dNSName and iPAddress SubjectAltName entries (RFC 5280 §4.2.1.6) for host names and IP literals."""
    result: list[x509.GeneralName] = []
    seen: set[str] = set()
    for raw in names:
        name = raw.strip().lower().rstrip(".")
        if name in seen:
            continue
        seen.add(name)
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        result.append(x509.DNSName(check_hostname(name)))
    if not result:
        raise PkiError("at least one host name or IP address is needed")
    return result


def check_hostname(hostname: str) -> str:
    """The host name in lower case, or :class:`PkiError` when it is not an RFC 1123 name (no wildcards)."""
    name = hostname.strip().lower().rstrip(".")
    if not _HOSTNAME.match(name):
        raise PkiError(f"not a valid host name: {hostname!r}")
    return name


def create_server_certificate(issuer: Issued, hostnames: Sequence[str] = DEFAULT_SERVER_HOSTNAMES, *,
                              key_type: str = "ec-p256", days: int = LEAF_DAYS,
                              now: dt.datetime | None = None) -> Issued:
    """A TLS server certificate for the DVZA node: SAN = every host name / IP address given, EKU serverAuth.

    The DVZA's certificate names its hostname (medmij-protocol.md §4.2); clients match it against the
    SubjectAltName (RFC 6125 §6.4, RFC 5280 §4.2.1.6). The CN repeats the first DNS name for old tools.
    """
    now = _utcnow(now)
    sans = split_names(hostnames)
    dns = [n.value for n in sans if isinstance(n, x509.DNSName)]
    common_name = dns[0] if dns else str(sans[0].value)
    return _leaf(issuer, common_name, sans, ExtendedKeyUsageOID.SERVER_AUTH, key_type=key_type, days=days, now=now)


def create_client_certificate(issuer: Issued, hostname: str, *, key_type: str = "ec-p256", days: int = LEAF_DAYS,
                              now: dt.datetime | None = None) -> Issued:
    """A PGO node's TLS client certificate: CN = SAN dNSName = ``hostname``, EKU clientAuth.

    MedMij: the hostname is the PGO's OAuth ``client_id`` on the OCL and its Whitelist entry; the DVZA
    accepts the certificate when its CN or a SAN matches (medmij-protocol.md §4.3; RFC 8705 §2.1).
    """
    now = _utcnow(now)
    name = check_hostname(hostname)
    return _leaf(issuer, name, [x509.DNSName(name)], ExtendedKeyUsageOID.CLIENT_AUTH, key_type=key_type, days=days,
                 now=now)


def _leaf(issuer: Issued, common_name: str, sans: Sequence[x509.GeneralName], usage: x509.ObjectIdentifier, *,
          key_type: str, days: int, now: dt.datetime) -> Issued:
    """An end-entity certificate: not a CA, key usage for its key type, one extended key usage."""
    key = generate_key(key_type)
    builder = (
        _builder(_name(common_name), key, issuer, days=days, now=now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    )
    return Issued(_sign(builder, issuer.key), key)


# --------------------------------------------------------------------------------------------------
# Thumbprints and inspection


def load_certificates(data: str | bytes) -> list[x509.Certificate]:
    """Every certificate in PEM text (one or a chain) or a single DER certificate."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    if b"-----BEGIN CERTIFICATE-----" in raw:
        return x509.load_pem_x509_certificates(raw)
    return [x509.load_der_x509_certificate(raw)]


def x5t_s256(certificate: x509.Certificate | str | bytes) -> str:
    """The ``x5t#S256`` confirmation value of RFC 8705 §3.1: base64url (RFC 4648 §5, no padding) of the
    SHA-256 digest of the DER encoding of the certificate. PEM input uses its first certificate."""
    cert = certificate if isinstance(certificate, x509.Certificate) else load_certificates(certificate)[0]
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def subject_alt_names(certificate: x509.Certificate) -> list[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


_EKU_NAMES = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}


def describe(certificate: x509.Certificate) -> dict[str, t.Any]:
    """Subject, issuer, SANs, validity, CA flag, EKUs and ``x5t#S256`` of one certificate."""
    try:
        basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = basic.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        eku = [_EKU_NAMES.get(oid, oid.dotted_string)
               for oid in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        eku = []
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": format(certificate.serial_number, "x"),
        "subject_alt_names": subject_alt_names(certificate),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "ca": is_ca,
        "extended_key_usage": eku,
        "key_type": key_type_of_public(certificate.public_key()),
        "x5t#S256": x5t_s256(certificate),
    }


def key_type_of_public(public_key: t.Any) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"ec-{public_key.curve.name}"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    return type(public_key).__name__


# --------------------------------------------------------------------------------------------------
# Files


@dataclasses.dataclass(frozen=True)
class CertFiles:
    """``<name>.pem`` (certificate), ``<name>-key.pem`` (key, 0600) and ``<name>-chain.pem``
    (certificate followed by the intermediate, if any: what a TLS peer sends, RFC 8446 §4.4.2)."""

    cert: Path
    key: Path
    chain: Path

    @classmethod
    def named(cls, directory: Path, name: str) -> CertFiles:
        return cls(directory / f"{name}.pem", directory / f"{name}-key.pem", directory / f"{name}-chain.pem")


@dataclasses.dataclass(frozen=True)
class DevPki:
    """Paths of a development PKI made by :func:`ensure_dev_pki`; ``ca_cert`` is the trust anchor."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server: CertFiles
    clients: Mapping[str, CertFiles]
    intermediate_cert: Path | None = None
    intermediate_key: Path | None = None
    #: files (re)written by this call; empty when everything was reused
    written: tuple[Path, ...] = ()

    @property
    def server_cert(self) -> Path:
        return self.server.cert

    @property
    def server_key(self) -> Path:
        return self.server.key

    @property
    def server_chain(self) -> Path:
        return self.server.chain

    def client_cert(self, hostname: str) -> Path:
        return self.clients[check_hostname(hostname)].cert

    def client_key(self, hostname: str) -> Path:
        return self.clients[check_hostname(hostname)].key

    def client_chain(self, hostname: str) -> Path:
        return self.clients[check_hostname(hostname)].chain


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see half a file.
    The temporary file is created with ``mode`` already (mkstemp makes it 0600), never wider."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_key(path: Path, key: PrivateKey) -> None:
    """The private key as unencrypted PKCS#8 PEM, mode 0600 (owner read/write only)."""
    _write_atomic(path, key_to_pem(key), 0o600)


def write_cert(path: Path, *certificates: x509.Certificate) -> None:
    _write_atomic(path, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates), 0o644)


def _load_pair(files: CertFiles) -> Issued | None:
    """The certificate and key in ``files`` when both parse and belong together, else None."""
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        return None
    return Issued(cert, key)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _fresh(cert: x509.Certificate, now: dt.datetime, renew_within: dt.timedelta) -> bool:
    return cert.not_valid_before_utc <= now + CLOCK_SKEW and cert.not_valid_after_utc - renew_within > now


def _extended_key_usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


class _Ensurer:
    """Reuses or (re)issues the files of one directory and records what it wrote."""

    def __init__(self, directory: Path, *, key_type: str, renew_within: dt.timedelta, now: dt.datetime | None,
                 leaf_days: int) -> None:
        if key_type not in KEY_TYPES:
            raise PkiError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
        self.directory = directory
        self.key_type = key_type
        self.renew_within = renew_within
        self.now = _utcnow(now)
        self.leaf_days = leaf_days
        self.written: list[Path] = []
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _usable(self, pair: Issued | None, issuer: x509.Certificate | None, *,
                leaf: bool = False) -> t.TypeGuard[Issued]:
        """Parsed, matching key, not expiring soon, signed by ``issuer``; leaves also of the requested key
        type (a CA of another key type keeps signing: mixed chains are fine)."""
        if pair is None or (leaf and key_type_of(pair.key) != self.key_type):
            return False
        if not _fresh(pair.certificate, self.now, self.renew_within):
            return False
        return _issued_by(pair.certificate, issuer if issuer is not None else pair.certificate)

    def _store(self, files: CertFiles, issued: Issued, chain: Sequence[x509.Certificate] | None) -> None:
        """Key first, then certificate: a crash in between leaves a mismatch that the next run repairs.
        CAs (``chain`` None) get no chain file: peers send only end-entity chains."""
        write_key(files.key, issued.key)
        write_cert(files.cert, issued.certificate)
        self.written += [files.key, files.cert]
        if chain is not None:
            write_cert(files.chain, issued.certificate, *chain)
            self.written.append(files.chain)

    def _reuse(self, files: CertFiles, issued: Issued, chain: Sequence[x509.Certificate] | None) -> None:
        """Tighten a reused key file to 0600; rewrite the chain file only when it differs."""
        if files.key.stat().st_mode & 0o077:
            files.key.chmod(0o600)
        if chain is None:
            return
        expected = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (issued.certificate, *chain))
        try:
            current = files.chain.read_bytes()
        except OSError:
            current = None
        if current != expected:
            _write_atomic(files.chain, expected, 0o644)
            self.written.append(files.chain)

    def root(self) -> Issued:
        files = CertFiles.named(self.directory, CA_NAME)
        pair = _load_pair(files)
        if self._usable(pair, None) and _is_ca(pair.certificate):
            self._reuse(files, pair, None)
            return pair
        issued = create_root_ca(key_type=self.key_type, now=self.now)
        self._store(files, issued, None)
        return issued

    def intermediate(self, root: Issued) -> Issued:
        files = CertFiles.named(self.directory, INTERMEDIATE_NAME)
        pair = _load_pair(files)
        if self._usable(pair, root.certificate) and _is_ca(pair.certificate):
            self._reuse(files, pair, None)
            return pair
        issued = create_intermediate_ca(root, key_type=self.key_type, now=self.now)
        self._store(files, issued, None)
        return issued

    def existing_intermediate(self, root: Issued) -> Issued | None:
        pair = _load_pair(CertFiles.named(self.directory, INTERMEDIATE_NAME))
        if self._usable(pair, root.certificate) and _is_ca(pair.certificate):
            return pair
        return None

    def server(self, signer: Issued, chain: Sequence[x509.Certificate], hostnames: Sequence[str]) -> CertFiles:
        files = CertFiles.named(self.directory, SERVER_NAME)
        wanted = {str(n.value) for n in split_names(hostnames)}
        pair = _load_pair(files)
        if (self._usable(pair, signer.certificate, leaf=True) and set(subject_alt_names(pair.certificate)) == wanted
                and ExtendedKeyUsageOID.SERVER_AUTH in _extended_key_usages(pair.certificate)):
            self._reuse(files, pair, chain)
            return files
        issued = create_server_certificate(signer, hostnames, key_type=self.key_type, days=self.leaf_days,
                                           now=self.now)
        self._store(files, issued, chain)
        return files

    def client(self, signer: Issued, chain: Sequence[x509.Certificate], hostname: str) -> CertFiles:
        name = check_hostname(hostname)
        if name in RESERVED_NAMES:
            raise PkiError(f"{name!r} names a file of the PKI itself; use a fully qualified host name")
        files = CertFiles.named(self.directory, name)
        pair = _load_pair(files)
        if self._usable(pair, signer.certificate, leaf=True):
            cert = pair.certificate
            common_names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
            if (common_names == [name] and subject_alt_names(cert) == [name]
                    and ExtendedKeyUsageOID.CLIENT_AUTH in _extended_key_usages(cert)):
                self._reuse(files, pair, chain)
                return files
        issued = create_client_certificate(signer, name, key_type=self.key_type, days=self.leaf_days, now=self.now)
        self._store(files, issued, chain)
        return files


def ensure_dev_pki(directory: str | os.PathLike[str], server_hostnames: Sequence[str] = DEFAULT_SERVER_HOSTNAMES,
                   clients: Iterable[str] = (), *, intermediate: bool = False, key_type: str = "ec-p256",
                   renew_within: dt.timedelta = RENEW_WITHIN, leaf_days: int = LEAF_DAYS,
                   now: dt.datetime | None = None) -> DevPki:
    """Make sure ``directory`` holds a usable development PKI and return its paths.

    Files: ``ca.pem``/``ca-key.pem`` (root, the trust anchor), with ``intermediate=True`` also
    ``intermediate.pem``/``intermediate-key.pem``, ``server.pem``/``server-key.pem``/``server-chain.pem``
    and per client hostname ``<host>.pem``/``<host>-key.pem``/``<host>-chain.pem``.

    Idempotent: a certificate is reused while its key matches, it is of ``key_type``, it was signed by
    the current issuer, its SANs/EKU still fit the request and it does not expire within
    ``renew_within`` (7 days). Anything else is issued anew; a new CA re-issues everything under it.
    """
    ensurer = _Ensurer(Path(directory), key_type=key_type, renew_within=renew_within, now=now, leaf_days=leaf_days)
    root = ensurer.root()
    signer, chain, inter_files = root, [], None
    if intermediate:
        signer = ensurer.intermediate(root)
        chain = [signer.certificate]
        inter_files = CertFiles.named(ensurer.directory, INTERMEDIATE_NAME)
    server = ensurer.server(signer, chain, server_hostnames)
    client_files = {check_hostname(h): ensurer.client(signer, chain, h) for h in clients}
    ca_files = CertFiles.named(ensurer.directory, CA_NAME)
    return DevPki(directory=ensurer.directory, ca_cert=ca_files.cert, ca_key=ca_files.key, server=server,
                  clients=client_files, intermediate_cert=inter_files.cert if inter_files else None,
                  intermediate_key=inter_files.key if inter_files else None, written=tuple(ensurer.written))


def ensure_client_certificate(directory: str | os.PathLike[str], hostname: str, *, key_type: str = "ec-p256",
                              renew_within: dt.timedelta = RENEW_WITHIN, leaf_days: int = LEAF_DAYS,
                              now: dt.datetime | None = None) -> tuple[CertFiles, tuple[Path, ...]]:
    """Issue (or reuse) one PGO client certificate in an existing development PKI directory.

    Signed by the directory's intermediate when a valid one is there, else by the root CA (created
    when missing). Returns the client's files and the paths written.
    """
    ensurer = _Ensurer(Path(directory), key_type=key_type, renew_within=renew_within, now=now, leaf_days=leaf_days)
    root = ensurer.root()
    inter = ensurer.existing_intermediate(root)
    signer, chain = (inter, [inter.certificate]) if inter else (root, [])
    files = ensurer.client(signer, chain, hostname)
    return files, tuple(ensurer.written)
