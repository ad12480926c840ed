"""certs.pki: chain verification, certificate profile, x5t#S256 and the idempotent ensure_dev_pki."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder
from cryptography.x509.verification import Store
from cryptography.x509.verification import VerificationError

from certs import pki
from oauth import mtls

PGO = "pgo.localhost"

# Self-signed P-256 certificate made with `openssl req -x509`; thumbprint computed independently with
# `openssl x509 -outform DER | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='`.
KNOWN_PEM = """-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIURESKtdp1nRioyBJ+ABMRidC8EfkwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLeDV0LmV4YW1wbGUwHhcNMjYxMTIzMDkzMDMwWhcNMzYxMTIw
MDkzMDMwWjAWMRQwEgYDVQQDDAt4NXQuZXhhbXBsZTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABEhj9wPSlV2OIs/05eCctQWe5Uq7Amat4RT6kskqa6USkQYKri1t
cBFjQgTr12XjvpjgxdfjSdOcEL2QJLeJypOjUzBRMB0GA1UdDgQWBBRoCV7jA6tI
0C9YdxXMxCBRbpq/ZTAfBgNVHSMEGDAWgBRoCV7jA6tI0C9YdxXMxCBRbpq/ZTAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDKIEJMz58zeOeWS8N1
UX98Nodlw/P8CFBW0EQBlDhcHAIgfG+rhC0SpOx5EhBBjtP62y6cgwuH1YyK6G2T
SCHmdVs=
-----END CERTIFICATE-----
"""
KNOWN_X5T = "Qbp_7MnIPrq8NXUSVE6kRmplCyWNdcKnAUMnE1peHZM"


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def chain_of(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


@pytest.fixture()
def dev(tmp_path: Path) -> pki.DevPki:
    return pki.ensure_dev_pki(tmp_path / "pki", ["localhost", "dvza.localhost", "127.0.0.1"], [PGO],
                              intermediate=True)


@pytest.mark.parametrize("with_intermediate", [False, True])
def test_chains_verify_with_the_x509_verifier(tmp_path: Path, with_intermediate: bool) -> None:
    dev = pki.ensure_dev_pki(tmp_path, ["localhost", "dvza.localhost", "127.0.0.1"], [PGO],
                             intermediate=with_intermediate)
    store = Store([load(dev.ca_cert)])
    builder = PolicyBuilder().store(store)
    server_leaf, *server_rest = chain_of(dev.server_chain)
    assert len(server_rest) == (1 if with_intermediate else 0)
    for name in (x509.DNSName("localhost"), x509.DNSName("dvza.localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        chain = builder.build_server_verifier(name).verify(server_leaf, server_rest)
        assert chain[-1] == load(dev.ca_cert)
    with pytest.raises(VerificationError):
        builder.build_server_verifier(x509.DNSName("elsewhere.localhost")).verify(server_leaf, server_rest)

    client_leaf, *client_rest = chain_of(dev.client_chain(PGO))
    verified = builder.build_client_verifier().verify(client_leaf, client_rest)
    assert verified.subjects == [x509.DNSName(PGO)]
    # the server certificate is not a client certificate (EKU serverAuth only) and vice versa
    with pytest.raises(VerificationError):
        builder.build_client_verifier().verify(server_leaf, server_rest)
    with pytest.raises(VerificationError):
        builder.build_server_verifier(x509.DNSName(PGO)).verify(client_leaf, client_rest)


def test_a_foreign_ca_does_not_verify(tmp_path: Path, dev: pki.DevPki) -> None:
    other = pki.ensure_dev_pki(tmp_path / "other")
    leaf, *rest = chain_of(dev.client_chain(PGO))
    with pytest.raises(VerificationError):
        PolicyBuilder().store(Store([load(other.ca_cert)])).build_client_verifier().verify(leaf, rest)


def test_ca_extensions(dev: pki.DevPki) -> None:
    for path, path_length in ((dev.ca_cert, 1), (dev.intermediate_cert, 0)):
        assert path is not None
        cert = load(path)
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert basic.critical and basic.value.ca and basic.value.path_length == path_length
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
        assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    root, inter = load(dev.ca_cert), load(dev.intermediate_cert)  # type: ignore[arg-type]
    assert root.subject == root.issuer
    inter_aki = inter.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert inter_aki.key_identifier == root_ski.digest


def test_leaf_extensions_and_names(dev: pki.DevPki) -> None:
    inter = load(dev.intermediate_cert)  # type: ignore[arg-type]
    inter_ski = inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    server, client = load(dev.server_cert), load(dev.client_cert(PGO))
    for cert, eku in ((server, ExtendedKeyUsageOID.SERVER_AUTH), (client, ExtendedKeyUsageOID.CLIENT_AUTH)):
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert basic.critical and not basic.value.ca
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
        assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == inter_ski
        assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        assert cert.issuer == inter.subject
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=pki.LEAF_DAYS, minutes=10)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "dvza.localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    # MedMij: the PGO client certificate carries its hostname (= client_id) as CN and as SAN
    assert [a.value for a in client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [PGO]
    assert client.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [PGO]
    assert mtls.certificate_hostnames(client) == {PGO}


def test_rsa_keys_on_request() -> None:
    root = pki.create_root_ca(key_type="rsa-2048")
    leaf = pki.create_client_certificate(root, PGO, key_type="rsa-2048")
    assert isinstance(leaf.key, rsa.RSAPrivateKey) and leaf.key.key_size == 2048
    usage = leaf.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    leaf.certificate.verify_directly_issued_by(root.certificate)
    with pytest.raises(pki.PkiError):
        pki.generate_key("dsa-1024")


@pytest.mark.parametrize("bad", ["*.pgo.localhost", "pgo_localhost", "../etc", "", "a" * 64 + ".example"])
def test_bad_host_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(pki.PkiError):
        pki.ensure_dev_pki(tmp_path, clients=[bad])


def test_reserved_file_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(pki.PkiError):
        pki.ensure_dev_pki(tmp_path, clients=["server"])


def test_x5t_s256_known_value_and_all_input_forms() -> None:
    cert = x509.load_pem_x509_certificate(KNOWN_PEM.encode())
    der = cert.public_bytes(serialization.Encoding.DER)
    assert pki.x5t_s256(KNOWN_PEM) == KNOWN_X5T
    assert pki.x5t_s256(KNOWN_PEM.encode()) == KNOWN_X5T
    assert pki.x5t_s256(der) == KNOWN_X5T
    assert pki.x5t_s256(cert) == KNOWN_X5T
    assert KNOWN_X5T == base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert "=" not in KNOWN_X5T and len(KNOWN_X5T) == 43
    # the same value the token endpoint binds tokens to
    assert mtls.thumbprint_s256(cert) == KNOWN_X5T


def test_x5t_of_a_chain_file_is_the_leaf(dev: pki.DevPki) -> None:
    assert pki.x5t_s256(dev.client_chain(PGO).read_bytes()) == pki.x5t_s256(dev.client_cert(PGO).read_text())


def test_key_files_are_owner_only_even_with_umask_0(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        dev = pki.ensure_dev_pki(tmp_path, clients=[PGO], intermediate=True)
    finally:
        os.umask(old)
    for key in (dev.ca_key, dev.intermediate_key, dev.server_key, dev.client_key(PGO)):
        assert key is not None
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(dev.ca_cert.stat().st_mode) == 0o644
    # a reused key that was loosened by hand is tightened again
    dev.server_key.chmod(0o644)
    pki.ensure_dev_pki(tmp_path, clients=[PGO], intermediate=True)
    assert stat.S_IMODE(dev.server_key.stat().st_mode) == 0o600


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_second_run_reuses_everything(tmp_path: Path) -> None:
    first = pki.ensure_dev_pki(tmp_path, ["localhost"], [PGO, "pgo2.localhost"], intermediate=True)
    assert first.written
    before = snapshot(tmp_path)
    assert set(before) == {"ca.pem", "ca-key.pem", "intermediate.pem", "intermediate-key.pem",
                           "server.pem", "server-key.pem", "server-chain.pem",
                           "pgo.localhost.pem", "pgo.localhost-key.pem", "pgo.localhost-chain.pem",
                           "pgo2.localhost.pem", "pgo2.localhost-key.pem", "pgo2.localhost-chain.pem"}
    second = pki.ensure_dev_pki(tmp_path, ["localhost"], [PGO, "pgo2.localhost"], intermediate=True)
    assert second.written == ()
    assert snapshot(tmp_path) == before
    assert second == pki.DevPki(**{**first.__dict__, "written": ()})


def test_near_expiry_is_reissued_and_the_ca_kept(tmp_path: Path) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    dev = pki.ensure_dev_pki(tmp_path, clients=[PGO], leaf_days=10, now=start)
    ca_serial, leaf_serial = load(dev.ca_cert).serial_number, load(dev.client_cert(PGO)).serial_number
    # 8 days left: still reused
    again = pki.ensure_dev_pki(tmp_path, clients=[PGO], leaf_days=10, now=start + dt.timedelta(days=2))
    assert again.written == ()
    # 6 days left (< 7): server and client reissued, the CA (10 years) kept
    later = pki.ensure_dev_pki(tmp_path, clients=[PGO], leaf_days=10, now=start + dt.timedelta(days=4))
    assert set(later.written) == {dev.server_cert, dev.server_key, dev.server_chain,
                                  dev.client_cert(PGO), dev.client_key(PGO), dev.client_chain(PGO)}
    assert load(dev.ca_cert).serial_number == ca_serial
    new_leaf = load(dev.client_cert(PGO))
    assert new_leaf.serial_number != leaf_serial
    assert new_leaf.not_valid_after_utc == start + dt.timedelta(days=14)


def test_missing_or_mismatched_files_are_repaired(tmp_path: Path) -> None:
    dev = pki.ensure_dev_pki(tmp_path, clients=[PGO])
    dev.client_key(PGO).unlink()
    repaired = pki.ensure_dev_pki(tmp_path, clients=[PGO])
    assert dev.client_key(PGO) in repaired.written and dev.server_cert not in repaired.written
    # a new CA re-issues everything signed by the old one
    dev.ca_key.unlink()
    renewed = pki.ensure_dev_pki(tmp_path, clients=[PGO])
    assert {dev.ca_cert, dev.server_cert, dev.client_cert(PGO)} <= set(renewed.written)
    load(dev.client_cert(PGO)).verify_directly_issued_by(load(dev.ca_cert))


def test_changed_server_names_reissue_only_the_server(tmp_path: Path) -> None:
    dev = pki.ensure_dev_pki(tmp_path, ["localhost"], [PGO])
    changed = pki.ensure_dev_pki(tmp_path, ["localhost", "dvza.example"], [PGO])
    assert set(changed.written) == {dev.server_cert, dev.server_key, dev.server_chain}
    assert pki.subject_alt_names(load(dev.server_cert)) == ["localhost", "dvza.example"]


def test_switching_to_an_intermediate_reissues_the_leaves(tmp_path: Path) -> None:
    dev = pki.ensure_dev_pki(tmp_path, clients=[PGO])
    with_inter = pki.ensure_dev_pki(tmp_path, clients=[PGO], intermediate=True)
    assert dev.ca_cert not in with_inter.written and dev.client_cert(PGO) in with_inter.written
    assert len(chain_of(dev.client_chain(PGO))) == 2


def test_ensure_client_certificate_uses_the_existing_intermediate(dev: pki.DevPki) -> None:
    files, written = pki.ensure_client_certificate(dev.directory, "other.localhost")
    assert set(written) == {files.cert, files.key, files.chain}
    leaf, inter = chain_of(files.chain)
    assert inter == load(dev.intermediate_cert)  # type: ignore[arg-type]
    leaf.verify_directly_issued_by(inter)
    assert pki.ensure_client_certificate(dev.directory, "other.localhost")[1] == ()
