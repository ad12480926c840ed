"""Operators can watch it (issue 13): ``/metrics`` in Prometheus format on the internal bind only."""

from __future__ import annotations

import json
import re
import typing as t
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.security import generate_password_hash

from dvza.pgo.content import blood_pressure_bundle
from tests.support import REPO
from tests.support import load_cert_data
from tests.support import make_app
from tests.support import submit_headers

INTERNAL = {"dvza.internal": True}


def scrape(app: t.Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.test_client().get("/metrics", environ_base=INTERNAL)
    assert response.status_code == 200
    assert response.mimetype == "text/plain" and "version=0.0.4" in response.headers["Content-Type"]
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: t.Mapping[tuple[str, t.Any], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture()
def mapp(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    from tests.dvza.test_lists_wiring import demo_lists

    lists = demo_lists(tmp_path_factory.mktemp("lists"))
    app = make_app(databases, tmp_path_factory, HOSPITAL_USERS={"anna": generate_password_hash("geheim")},
                   LISTS_DIR=str(lists), LISTS_DEVELOPMENT=True, LISTS_BACKGROUND_REFRESH=False)
    load_cert_data(app, "selfmeasurements")
    yield app
    app.extensions["dvza.db"].dispose()


def test_metrics_only_on_the_internal_bind(mapp: t.Any) -> None:
    client = mapp.test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1", "Dvza-Internal": "true"}
                      ).status_code == 404
    assert client.get("/metrics", environ_base=INTERNAL).status_code == 200


def test_requests_are_counted_per_endpoint_class_and_status(mapp: t.Any) -> None:
    before = scrape(mapp)
    client = mapp.test_client()
    client.get("/fhir/Patient")  # 401
    client.get("/fhir/Observation", headers=submit_headers("selfmeasurement-patient-kwalificatie1"))  # 200
    client.get("/ziekenhuis/inloggen")
    client.get("/does-not-exist")
    after = scrape(mapp)
    for endpoint, status in (("fhir", "401"), ("fhir", "200"), ("hospital", "200"), ("unmatched", "404")):
        assert value(after, "dvza_http_requests_total", endpoint=endpoint, status=status) == \
            value(before, "dvza_http_requests_total", endpoint=endpoint, status=status) + 1, (endpoint, status)
    assert value(after, "dvza_http_request_duration_seconds_count", endpoint="fhir") == \
        value(before, "dvza_http_request_duration_seconds_count", endpoint="fhir") + 2
    assert value(after, "dvza_http_request_duration_seconds_sum", endpoint="fhir") > \
        value(before, "dvza_http_request_duration_seconds_sum", endpoint="fhir")


def test_token_refusals_are_counted_by_reason(mapp: t.Any) -> None:
    before = scrape(mapp)
    client = mapp.test_client()
    client.post("/oauth/token", data={"grant_type": "authorization_code"})  # no client_id
    client.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": "pgo.localhost"})  # no cert
    client.post("/oauth/token", data={"grant_type": "password", "client_id": "pgo.localhost"})
    after = scrape(mapp)

    def grew(grant_type: str, result: str) -> float:
        return value(after, "dvza_oauth_token_responses_total", grant_type=grant_type, result=result) - \
            value(before, "dvza_oauth_token_responses_total", grant_type=grant_type, result=result)

    assert grew("authorization_code", "invalid_request") == 1
    assert grew("authorization_code", "invalid_client") == 1
    assert grew("other", "invalid_client") == 1  # the client is checked before the grant type


def test_staff_sign_in_failures_are_counted(mapp: t.Any) -> None:
    before = scrape(mapp)
    client = mapp.test_client()
    page = client.get("/ziekenhuis/inloggen").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    for _ in range(2):
        client.post("/ziekenhuis/inloggen", data={"csrf_token": token.group(1), "name": "anna", "password": "x"})
    after = scrape(mapp)
    assert value(after, "dvza_staff_sign_in_failures_total", reason="credentials") == \
        value(before, "dvza_staff_sign_in_failures_total", reason="credentials") + 2


def test_return_queue_and_lists_are_watched(mapp: t.Any) -> None:
    empty = scrape(mapp)
    assert value(empty, "dvza_return_queue_items", status="new") == 0
    assert value(empty, "dvza_return_queue_oldest_new_age_seconds") == 0
    response = mapp.test_client().post("/fhir", data=json.dumps(blood_pressure_bundle(130, 80)),
                                       headers=submit_headers("selfmeasurement-patient-kwalificatie2"))
    assert response.status_code in (200, 201)
    full = scrape(mapp)
    assert value(full, "dvza_return_queue_items", status="new") == 1
    assert 0 < value(full, "dvza_return_queue_oldest_new_age_seconds") < 60
    for kind in ("ZAL", "OCL", "GNL", "WHL"):
        assert ("dvza_medmij_list_age_seconds", (("list", kind),)) in full, kind
        assert 0 <= value(full, "dvza_medmij_list_age_seconds", list=kind) < 60
        assert value(full, "dvza_medmij_list_stale", list=kind) == 0


def test_the_scrape_adds_up_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prometheus-client multiprocess mode: counters written by other processes are in the scrape."""
    import subprocess
    import sys

    from dvza.metrics import scrape_registry

    folder = tmp_path / "metrics"
    folder.mkdir()
    code = ("from dvza import metrics; metrics.REQUESTS.labels(endpoint='fhir', status='200').inc(3); "
            "metrics.sign_in_failed('credentials')")
    for _ in range(2):  # two "workers"
        subprocess.run([sys.executable, "-c", code], check=True, env={"PROMETHEUS_MULTIPROC_DIR": str(folder),
                                                                      "PATH": "/usr/bin:/bin",
                                                                      "PYTHONPATH": str(REPO)})
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))

    class NoApp:
        extensions: dict[str, t.Any] = {}

    from prometheus_client import generate_latest

    text = generate_latest(scrape_registry(NoApp())).decode()  # type: ignore[arg-type]
    assert 'dvza_http_requests_total{endpoint="fhir",status="200"} 6.0' in text
    assert 'dvza_staff_sign_in_failures_total{reason="credentials"} 2.0' in text
