"""``dvza serve`` as an operator runs it (issue 13): gunicorn with two workers, a public and an internal
bind. Metrics of every worker on the internal bind only, readiness details only there, BSNs masked in
the access log, and no start at all without a real login outside qualification/development mode."""

from __future__ import annotations

import os
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
import requests

from dvza.devtools.processes import CHECKOUT
from dvza.devtools.processes import checkout_environment
from dvza.devtools.processes import dvza_command
from dvza.devtools.processes import free_port
from dvza.devtools.processes import wait_until_answers

pytestmark = pytest.mark.e2e

BSN = "999911120"
SEARCH = f"/fhir/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|{BSN}"


def environment(instance: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DVZA_", "PROMETHEUS_"))}
    return checkout_environment(base, DVZA_INSTANCE_PATH=str(instance), DVZA_LOG_LEVEL="WARNING", **extra)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, t.Any]]:
    instance = tmp_path_factory.mktemp("serve")
    public, internal = free_port(), free_port()
    log = (instance / "server.log").open("wb")
    process = subprocess.Popen(
        dvza_command("serve", "--bind", f"127.0.0.1:{public}", "--internal-bind", f"127.0.0.1:{internal}",
                     "--workers", "2"),
        env=environment(instance, DVZA_QUALIFICATION_MODE="true"), cwd=CHECKOUT, stdout=log, stderr=subprocess.STDOUT)
    wait_until_answers(f"http://127.0.0.1:{public}/healthz", process, log=instance / "server.log")
    try:
        yield {"public": f"http://127.0.0.1:{public}", "internal": f"http://127.0.0.1:{internal}",
               "log": instance / "server.log", "process": process}
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def fhir_401s(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('dvza_http_requests_total{endpoint="fhir",status="401"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_of_every_worker_on_the_internal_bind_only(server: dict[str, t.Any]) -> None:
    assert requests.get(server["public"] + "/metrics", timeout=5).status_code == 404
    before = fhir_401s(requests.get(server["internal"] + "/metrics", timeout=5).text)
    for _ in range(8):  # new connections: the two workers share them
        assert requests.get(server["public"] + SEARCH, timeout=5).status_code == 401
    scraped = requests.get(server["internal"] + "/metrics", timeout=5)
    assert scraped.status_code == 200 and scraped.headers["Content-Type"].startswith("text/plain")
    assert fhir_401s(scraped.text) == before + 8
    assert "dvza_return_queue_items" in scraped.text


def test_readiness_details_only_internally(server: dict[str, t.Any]) -> None:
    public = requests.get(server["public"] + "/readyz", timeout=5)
    assert public.json() == {"status": "ready"}
    internal = requests.get(server["internal"] + "/readyz", timeout=5).json()
    assert internal["status"] == "ready" and internal["checks"]["database"]["ok"] is True


def test_the_access_log_masks_bsns(server: dict[str, t.Any]) -> None:
    assert requests.get(server["public"] + SEARCH, timeout=5).status_code == 401
    deadline = time.monotonic() + 10
    while "GET /fhir/Patient?identifier=" not in server["log"].read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = server["log"].read_text()
    assert "GET /fhir/Patient?identifier=" in text and BSN not in text


def test_no_start_without_a_real_login(tmp_path: Path) -> None:
    result = subprocess.run(dvza_command("serve", "--bind", f"127.0.0.1:{free_port()}"), env=environment(tmp_path),
                            cwd=CHECKOUT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "LOGIN_ADAPTER" in result.stderr and "DVZA_DEVELOPMENT_LOGIN=true" in result.stderr
