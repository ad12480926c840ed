"""gunicorn settings of ``dvza serve`` (Warehouse's production settings, design-references.md §4.3).

Bind address, workers and TLS files come from the command line / ``DVZA_*`` variables. Loading this
module prepares prometheus-client's multiprocess folder before the app is imported (preload), and the
access log masks BSNs.
"""

import gc

from dvza.serving import prepare_metrics_dir
from dvza.serving import remove_metrics_dir
from dvza.serving import tls_context
from dvza.serving import worker_exited
from fhir_api.validation import load_models

worker_class = "dvza.serving.PeerCertificateWorker"
logger_class = "dvza.serving.RedactingLogger"
preload_app = True
max_requests = 2048
max_requests_jitter = 128
timeout = 60
keepalive = 2
accesslog = "-"
errorlog = "-"
control_socket_disable = True
ssl_context = tls_context

_metrics_dir = prepare_metrics_dir()


def pre_fork(server, worker):  # type: ignore[no-untyped-def]
    """Before each worker is forked: the FHIR model modules are imported (once; otherwise each worker imports
    them at its first write, fhir_api.validation.load_models), and everything the preloaded app made so far
    is kept out of the workers' garbage collections (``gc.freeze``, Python's advice for a process that forks
    without exec): a full collection no longer walks the app's modules, models and compiled statements, and
    does not write to their pages, which stay shared between the workers."""
    try:
        load_models()  # the first fork only: kept once done
    except Exception:  # noqa: BLE001 - the workers then import them as they need them
        server.log.exception("importing the FHIR models before forking failed")
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    worker_exited(worker.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    remove_metrics_dir(_metrics_dir)
