"""gunicorn settings of ``dvza serve`` (Warehouse's production settings, design-references.md §4.3).

Bind address, workers and TLS files come from the command line / ``DVZA_*`` variables.
"""

from dvza.serving import tls_context

worker_class = "dvza.serving.PeerCertificateWorker"
preload_app = True
max_requests = 2048
max_requests_jitter = 128
timeout = 60
keepalive = 2
accesslog = "-"
errorlog = "-"
control_socket_disable = True
ssl_context = tls_context
