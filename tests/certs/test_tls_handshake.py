"""A real mutual-TLS handshake with the generated files: stdlib ``ssl`` server requiring client certificates
(TLS 1.2+, medmij-protocol.md §4.1), PGO client with and without its certificate."""

from __future__ import annotations

import socket
import ssl
import threading
import typing as t
from pathlib import Path

import pytest

from certs import pki

PGO = "pgo.localhost"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> pki.DevPki:
    return pki.ensure_dev_pki(tmp_path_factory.mktemp("pki"), ["localhost", "127.0.0.1"], [PGO], intermediate=True)


class OneShotServer:
    """Accepts one connection, completes the handshake and answers the peer certificate's CN."""

    def __init__(self, dev: pki.DevPki) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_cert_chain(dev.server_chain, dev.server_key)
        self.context.load_verify_locations(cafile=dev.ca_cert)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.result: dict[str, t.Any] = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(5)
            with self.context.wrap_socket(conn, server_side=True) as tls:
                peer = tls.getpeercert()
                subject = dict(item for rdn in peer["subject"] for item in rdn)
                self.result.update(cn=subject["commonName"], version=tls.version())
                tls.sendall(subject["commonName"].encode())
        except (ssl.SSLError, OSError) as exc:
            self.result["error"] = exc
        finally:
            self.listener.close()

    def __enter__(self) -> OneShotServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=10)


def client_context(dev: pki.DevPki, *, with_cert: bool, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(dev.ca_cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if version:
        context.minimum_version = context.maximum_version = version
    if with_cert:
        context.load_cert_chain(dev.client_chain(PGO), dev.client_key(PGO))
    return context


def exchange(context: ssl.SSLContext, port: int) -> bytes | Exception:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.recv(1024)
    except (ssl.SSLError, OSError) as exc:
        return exc


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_with_certificate_is_seen_by_its_hostname(dev: pki.DevPki, version: ssl.TLSVersion) -> None:
    with OneShotServer(dev) as server:
        answer = exchange(client_context(dev, with_cert=True, version=version), server.port)
    assert answer == PGO.encode()
    assert server.result == {"cn": PGO, "version": {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                                    ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]}


def test_default_negotiation_picks_tls_1_3(dev: pki.DevPki) -> None:
    """core.tls.304: the highest version both sides support."""
    with OneShotServer(dev) as server:
        assert exchange(client_context(dev, with_cert=True), server.port) == PGO.encode()
    assert server.result["version"] == "TLSv1.3"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_without_certificate_is_refused(dev: pki.DevPki, version: ssl.TLSVersion) -> None:
    with OneShotServer(dev) as server:
        answer = exchange(client_context(dev, with_cert=False, version=version), server.port)
    # TLS 1.2 fails the client's handshake; TLS 1.3 the first read (certificate_required alert or EOF)
    assert isinstance(answer, Exception) or answer == b""
    assert "cn" not in server.result
    assert isinstance(server.result.get("error"), ssl.SSLError)


def test_server_certificate_is_checked_by_the_client(dev: pki.DevPki, tmp_path: Path) -> None:
    """A client trusting another CA does not accept the DVZA's server certificate."""
    other = pki.ensure_dev_pki(tmp_path / "other")
    context = ssl.create_default_context(cafile=str(other.ca_cert))
    context.load_cert_chain(dev.client_chain(PGO), dev.client_key(PGO))
    with OneShotServer(dev) as server:
        answer = exchange(context, server.port)
    assert isinstance(answer, ssl.SSLCertVerificationError)
    assert "cn" not in server.result
