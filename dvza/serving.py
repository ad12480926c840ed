"""Running the DVZA under gunicorn: ``dvza serve``.

* Settings follow Warehouse's production gunicorn config (design-references.md §4.3): preloaded
  app, recycled workers (``max_requests`` with jitter), 60 s timeout, logs to stdout/stderr,
  control socket off.
* TLS can end here or at a proxy (medmij-protocol.md §8). When it ends here, TLS 1.2+ with only
  NCSC "goed" cipher suites for TLS 1.2 (core.tls.301, .304: the highest common version wins) and,
  for the backchannel, a required client certificate. Gunicorn does not hand the peer certificate
  to the application (benoitc/gunicorn #1930), so :class:`PeerCertificateWorker` puts it in the
  WSGI environ as ``dvza.peer_certificate`` (PEM); a client cannot set that key through headers.
"""

from __future__ import annotations

import os
import ssl
import sys
import typing as t

import click
from flask.cli import with_appcontext
from gunicorn.workers.sync import SyncWorker

#: TLS 1.2 suites rated "goed" by NCSC (ECDHE, AEAD); TLS 1.3 suites are all acceptable.
TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
])


class PeerCertificateWorker(SyncWorker):
    """A sync worker that exposes the TLS client certificate to the app (one request at a time)."""

    _peer_der: bytes | None = None

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi
        worker = self

        def with_peer_certificate(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
            environ.pop("dvza.peer_certificate", None)
            if worker._peer_der:
                environ["dvza.peer_certificate"] = ssl.DER_cert_to_PEM_cert(worker._peer_der)
            return app(environ, start_response)

        self.wsgi = with_peer_certificate

    def handle_request(self, listener: t.Any, req: t.Any, client: t.Any, addr: t.Any) -> t.Any:
        self._peer_der = client.getpeercert(binary_form=True) if isinstance(client, ssl.SSLSocket) else None
        try:
            return super().handle_request(listener, req, client, addr)
        finally:
            self._peer_der = None


def tls_context(config: t.Any, default_factory: t.Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """gunicorn ``ssl_context`` hook: the default context (certificates, client-cert mode) hardened
    to the MedMij TLS rules."""
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def gunicorn_args(*, bind: str, workers: int, certfile: str | None, keyfile: str | None,
                  ca_certs: str | None, client_cert: str, app: str = "dvza:create_app()") -> list[str]:
    args = [sys.executable, "-m", "gunicorn", "--config", "python:dvza.gunicorn_conf", "--bind", bind,
            "--workers", str(workers)]
    if certfile:
        args += ["--certfile", certfile, "--keyfile", keyfile or certfile]
        if ca_certs:
            args += ["--ca-certs", ca_certs]
        args += ["--cert-reqs", {"none": "0", "optional": "1", "required": "2"}[client_cert]]
    return [*args, app]


@click.command("serve", help="Run the DVZA under gunicorn (production server).")
@with_appcontext
@click.option("--bind", default=lambda: os.environ.get("DVZA_BIND", "127.0.0.1:8080"), show_default="$DVZA_BIND")
@click.option("--workers", type=int, default=lambda: int(os.environ.get("DVZA_WORKERS", "2")))
@click.option("--certfile", default=lambda: os.environ.get("DVZA_TLS_CERT"), help="Server certificate (PEM).")
@click.option("--keyfile", default=lambda: os.environ.get("DVZA_TLS_KEY"))
@click.option("--ca-certs", default=lambda: os.environ.get("DVZA_TLS_CLIENT_CA"),
              help="CA bundle that client certificates must chain to.")
@click.option("--client-cert", type=click.Choice(["none", "optional", "required"]),
              default=lambda: os.environ.get("DVZA_TLS_CLIENT_CERT", "none"))
def serve(bind: str, workers: int, certfile: str | None, keyfile: str | None, ca_certs: str | None,
          client_cert: str) -> None:
    args = gunicorn_args(bind=bind, workers=workers, certfile=certfile, keyfile=keyfile, ca_certs=ca_certs,
                         client_cert=client_cert)
    from flask import current_app

    from .lists import not_configured_warning

    warning = not_configured_warning(current_app.config)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    scheme = "https" if certfile else "http"
    click.echo(f"medmij-dvza on {scheme}://{bind}/ (FHIR base /fhir), {workers} workers", err=True)
    os.execv(sys.executable, args)
