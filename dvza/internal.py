"""Requests that came in on the internal bind (``dvza serve --internal-bind``): operators' endpoints.

The gunicorn worker (:class:`dvza.serving.PeerCertificateWorker`) sets :data:`ENVIRON_KEY` in the WSGI
environ for a request that arrived on the internal listener; a client cannot set environ keys through
headers (those become ``HTTP_*``). ``/metrics`` answers only there; ``/readyz`` shows its details there
(or to a caller with the readiness key, :mod:`dvza.health`).
"""

from __future__ import annotations

from flask import Request

ENVIRON_KEY = "dvza.internal"


def is_internal(request: Request) -> bool:
    return request.environ.get(ENVIRON_KEY) is True
