"""Running the DVZA under gunicorn: ``dvza serve``.

* Settings follow Warehouse's production gunicorn config (design-references.md §4.3): preloaded
  app, recycled workers (``max_requests`` with jitter), 60 s timeout, logs to stdout/stderr,
  control socket off.
* TLS can end here or at a proxy (medmij-protocol.md §8). When it ends here, TLS 1.2+ with only
  NCSC "goed" cipher suites for TLS 1.2 (core.tls.301, .304: the highest common version wins) and,
  for the backchannel, a required client certificate. Gunicorn does not hand the peer certificate
  to the application (benoitc/gunicorn #1930), so :class:`PeerCertificateWorker` puts it in the
  WSGI environ as ``dvza.peer_certificate`` (PEM); a client cannot set that key through headers.
* An internal bind (``--internal-bind``, ``DVZA_INTERNAL_BIND``) for operators: the same workers
  listen there too, and the worker marks requests that came in on it (``dvza.internal`` in the WSGI
  environ, :mod:`dvza.internal`); only those get ``/metrics`` and the details of ``/readyz``.
* Metrics: prometheus-client's multiprocess mode (every worker writes its counters to files in
  ``PROMETHEUS_MULTIPROC_DIR``; a scrape adds them up). :func:`prepare_metrics_dir` runs when the
  gunicorn settings load, before the app (and so ``prometheus_client``) is imported.
* The access log masks BSNs (:class:`RedactingLogger`, :func:`dvza.redaction.redact`).
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import sys
import tempfile
import typing as t
from pathlib import Path

import click
from flask.cli import with_appcontext
from gunicorn.glogging import Logger
from gunicorn.util import parse_address
from gunicorn.workers.sync import SyncWorker

from .internal import ENVIRON_KEY
from .redaction import redact

#: TLS 1.2 suites rated "goed" by NCSC (ECDHE, AEAD); TLS 1.3 suites are all acceptable.
TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
])


#: environment variable naming the internal bind (set by ``dvza serve --internal-bind``)
INTERNAL_BIND_ENV = "DVZA_INTERNAL_BIND"


def internal_address() -> t.Any:
    """The internal bind as gunicorn parses it (``(host, port)`` or a unix socket path), or None."""
    bind = os.environ.get(INTERNAL_BIND_ENV)
    return parse_address(bind) if bind else None


class PeerCertificateWorker(SyncWorker):
    """A sync worker that exposes the TLS client certificate to the app (one request at a time) and
    marks the requests that came in on the internal bind."""

    _peer_der: bytes | None = None
    _internal: bool = False

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi
        worker = self
        internal = internal_address()

        def with_peer_certificate(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
            environ.pop("dvza.peer_certificate", None)
            environ.pop(ENVIRON_KEY, None)
            if worker._peer_der:
                environ["dvza.peer_certificate"] = ssl.DER_cert_to_PEM_cert(worker._peer_der)
            if worker._internal:
                environ[ENVIRON_KEY] = True
            return app(environ, start_response)

        self.wsgi = with_peer_certificate
        self._internal_address = internal

    def handle_request(self, listener: t.Any, req: t.Any, client: t.Any, addr: t.Any) -> t.Any:
        self._peer_der = client.getpeercert(binary_form=True) if isinstance(client, ssl.SSLSocket) else None
        internal = getattr(self, "_internal_address", None)
        self._internal = internal is not None and getattr(listener, "cfg_addr", None) == internal
        try:
            return super().handle_request(listener, req, client, addr)
        finally:
            self._peer_der = None
            self._internal = False


class _RedactLine(logging.Filter):
    """Each record of gunicorn's access and error logs leaves as its finished line with BSNs masked, and
    without its arguments: nothing unmasked remains on the record for a handler to print (logging's own
    error report prints a record's arguments when a line cannot be written)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            line = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed format must not put the raw values in the error report
            line = f"unformattable log line ({record.msg!r:.200})"
        record.msg, record.args = redact(line), ()
        return True


class RedactingLogger(Logger):
    """gunicorn's logger with BSNs masked in every access- and error-log line (request line, path, query,
    headers). The finished line is masked once, rather than each of the some forty atoms gunicorn makes per
    request (every header twice over) of which the format reads about ten — that was 7 % of a worker's time
    under read load (py-spy)."""

    def setup(self, cfg: t.Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, _RedactLine) for f in log.filters):
                log.addFilter(_RedactLine())


def prepare_metrics_dir() -> str | None:
    """Set up prometheus-client's multiprocess mode for a gunicorn run: an operator's
    ``PROMETHEUS_MULTIPROC_DIR`` is emptied (the client's rule: wipe it between runs); without one a
    fresh temporary folder is made and returned (removed again by :func:`remove_metrics_dir`)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return None
    made = tempfile.mkdtemp(prefix="dvza-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def remove_metrics_dir(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """gunicorn ``child_exit``: a dead worker's live gauges no longer count (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def tls_context(config: t.Any, default_factory: t.Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """gunicorn ``ssl_context`` hook: the default context (certificates, client-cert mode) hardened
    to the MedMij TLS rules."""
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def gunicorn_args(*, bind: str, workers: int, certfile: str | None, keyfile: str | None,
                  ca_certs: str | None, client_cert: str, app: str = "dvza:create_app()",
                  internal_bind: str | None = None) -> list[str]:
    args = [sys.executable, "-m", "gunicorn", "--config", "python:dvza.gunicorn_conf", "--bind", bind,
            "--workers", str(workers)]
    if internal_bind:
        args += ["--bind", internal_bind]
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
@click.option("--internal-bind", default=lambda: os.environ.get(INTERNAL_BIND_ENV) or None,
              show_default="$DVZA_INTERNAL_BIND",
              help="A second address for operators only: /metrics and the details of /readyz.")
def serve(bind: str, workers: int, certfile: str | None, keyfile: str | None, ca_certs: str | None,
          client_cert: str, internal_bind: str | None) -> None:
    if internal_bind and parse_address(internal_bind) == parse_address(bind):
        raise click.BadParameter("the internal bind must differ from --bind", param_hint="--internal-bind")
    args = gunicorn_args(bind=bind, workers=workers, certfile=certfile, keyfile=keyfile, ca_certs=ca_certs,
                         client_cert=client_cert, internal_bind=internal_bind)
    if internal_bind:
        os.environ[INTERNAL_BIND_ENV] = internal_bind
    else:
        os.environ.pop(INTERNAL_BIND_ENV, None)
    from flask import current_app

    from .lists import not_configured_warning

    warning = not_configured_warning(current_app.config)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    scheme = "https" if certfile else "http"
    click.echo(f"medmij-dvza on {scheme}://{bind}/ (FHIR base /fhir), {workers} workers"
               + (f"; internal bind {scheme}://{internal_bind}/metrics" if internal_bind else ""), err=True)
    os.execv(sys.executable, args)
