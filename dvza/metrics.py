"""Prometheus metrics for operators (``/metrics``, text exposition format, internal bind only).

Counted per request, in every worker (prometheus-client; under gunicorn in multiprocess mode, the
folder set up by :func:`dvza.serving.prepare_metrics_dir`, added up at scrape time):

* ``dvza_http_requests_total{endpoint,status}`` and ``dvza_http_request_duration_seconds{endpoint}``
  — per endpoint class (:func:`endpoint_class`: fhir, token, frontchannel, hospital, queue-api, source-api,
  health, metrics, unmatched, other);
* ``dvza_oauth_token_responses_total{grant_type,result}`` — ``issued`` or the refusal's OAuth error
  code (RFC 6749 §5.2), read from the token endpoint's answer;
* ``dvza_staff_sign_in_failures_total{reason}`` — ``credentials`` or ``throttled``.

Read from the database and the lists at scrape time (:class:`StateCollector`):

* ``dvza_return_queue_items{status}`` and ``dvza_return_queue_oldest_new_age_seconds``;
* ``dvza_medmij_list_age_seconds{list}`` (since the list was last confirmed from its source) and
  ``dvza_medmij_list_stale{list}``.
"""

from __future__ import annotations

import os
import time
import typing as t
from datetime import UTC
from datetime import datetime

from flask import Flask
from flask import Response
from flask import abort
from flask import g
from flask import request
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .internal import is_internal

REQUESTS = Counter("dvza_http_requests", "HTTP requests answered, per endpoint class and status code",
                   ["endpoint", "status"], registry=None)
DURATION = Histogram("dvza_http_request_duration_seconds", "Time to answer a request, per endpoint class",
                     ["endpoint"], registry=None,
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
TOKEN_RESPONSES = Counter("dvza_oauth_token_responses", "Token endpoint answers: issued, or the OAuth error code",
                          ["grant_type", "result"], registry=None)
SIGN_IN_FAILURES = Counter("dvza_staff_sign_in_failures", "Failed staff sign-ins (hospital pages), per reason",
                           ["reason"], registry=None)
METRICS = (REQUESTS, DURATION, TOKEN_RESPONSES, SIGN_IN_FAILURES)

#: the error codes of RFC 6749 §5.2 (anything else is counted as ``other``: labels stay few)
TOKEN_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                          "unsupported_grant_type", "invalid_scope"})
GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})
_BLUEPRINT_CLASSES = {"fhir": "fhir", "hospital": "hospital", "queue_api": "queue-api", "source_api": "source-api"}
_ENDPOINT_CLASSES = {"oauth.token": "token", "healthz": "health", "readyz": "health", "metrics": "metrics"}


def endpoint_class(endpoint: str | None) -> str:
    """A small, fixed set of labels for the app's endpoints (never the raw path: it holds ids)."""
    if endpoint is None:
        return "unmatched"
    if endpoint in _ENDPOINT_CLASSES:
        return _ENDPOINT_CLASSES[endpoint]
    blueprint = endpoint.split(".", 1)[0] if "." in endpoint else ""
    if blueprint == "oauth":
        return "frontchannel"
    return _BLUEPRINT_CLASSES.get(blueprint, "other")


def sign_in_failed(reason: str) -> None:
    SIGN_IN_FAILURES.labels(reason=reason).inc()


def _token_response(response: Response) -> None:
    form = request.form if request.form else request.args
    grant_type = form.get("grant_type", "")
    if grant_type not in GRANT_TYPES:
        grant_type = "other"
    if response.status_code == 200:
        result = "issued"
    else:
        body = response.get_json(silent=True) if response.is_json else None
        error = body.get("error") if isinstance(body, dict) else None
        result = error if error in TOKEN_ERRORS else "other"
    TOKEN_RESPONSES.labels(grant_type=grant_type, result=result).inc()


class StateCollector(Collector):
    """Gauges read at scrape time: the return queue and the MedMij lists of this app."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> t.Iterator[GaugeMetricFamily]:
        yield from self._queue()
        yield from self._lists()

    def _queue(self) -> t.Iterator[GaugeMetricFamily]:
        queue = self.app.extensions.get("dvza.queue")
        if queue is None:
            return
        items = GaugeMetricFamily("dvza_return_queue_items", "Return-queue items, per status", labels=["status"])
        for status, count in sorted(queue.counts().items()):
            items.add_metric([status], count)
        yield items
        oldest = queue.oldest_new()
        age = max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily("dvza_return_queue_oldest_new_age_seconds",
                                "Age of the oldest item still new in the return queue (0 when none)", value=age)

    def _lists(self) -> t.Iterator[GaugeMetricFamily]:
        service = self.app.extensions.get("dvza.lists")
        if service is None:
            return
        age = GaugeMetricFamily("dvza_medmij_list_age_seconds",
                                "Seconds since the MedMij list was last confirmed from its source", labels=["list"])
        stale = GaugeMetricFamily("dvza_medmij_list_stale", "1 when the MedMij list is missing or stale",
                                  labels=["list"])
        for kind, status in sorted(service.status_dict().items()):
            if status["age_seconds"] is not None:
                age.add_metric([kind], float(status["age_seconds"]))
            stale.add_metric([kind], 1.0 if status["stale"] else 0.0)
        yield age
        yield stale


def scrape_registry(app: Flask) -> CollectorRegistry:
    """The registry one scrape reads: every worker's counters (multiprocess mode) or this process's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in METRICS:
            registry.register(metric)
    registry.register(StateCollector(app))
    return registry


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_clock() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        endpoint = endpoint_class(request.endpoint)
        REQUESTS.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        if started is not None:
            DURATION.labels(endpoint=endpoint).observe(time.perf_counter() - started)
        if request.endpoint == "oauth.token":
            _token_response(response)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format (or OpenMetrics, as the scraper's ``Accept`` asks), only on the internal
        bind (:mod:`dvza.internal`); 404 elsewhere."""
        if not is_internal(request):
            abort(404)
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        response = Response(encoder(scrape_registry(app)), content_type=content_type)
        response.headers["Cache-Control"] = "no-store"
        return response
