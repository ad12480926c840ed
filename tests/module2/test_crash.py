"""Crash safety of the return queue: the server (gunicorn, real processes) is killed with SIGKILL
in the middle of a stream of submissions. After a restart, and after the PGO resends what it did not
get an answer for (same MedMij-Request-ID), every acknowledged submission is in the queue exactly
once, every submission is complete (its item and all its resources, or nothing), and no resource
is left behind without its queue item."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import typing as t
from collections import Counter

import pytest
from sqlalchemy import select

from dvza.devtools.processes import free_port
from dvza.returnqueue.models import QueueItem
from dvza.serving import gunicorn_args
from fhir_api.models import ResourceRow
from tests.support import CERT_SETS
from tests.support import TOKENS
from tests.support import fixture_text
from tests.support import load_cert_data
from tests.support import make_app

BERGZOON = "selfmeasurement-patient-kwalificatie2"
BUNDLE = CERT_SETS["selfmeasurements"] / "_reference" / "resources-serve-receive" / \
    "medmij-selfmeasurements-serve-receive-scenario-2-2-bundle.json"
pytestmark = pytest.mark.slow


class Server:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = gunicorn_args(bind=f"127.0.0.1:{self.port}", workers=2, certfile=None, keyfile=None, ca_certs=None,
                             client_cert="none")
        self.process = subprocess.Popen([*args[:-1], "--access-logfile", "/dev/null", args[-1]], env=self.env,
                                        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def test_kill_in_the_middle_of_submissions(databases: t.Any, tmp_path_factory: t.Any) -> None:
    app = make_app(databases, tmp_path_factory)
    load_cert_data(app, "selfmeasurements")
    database_url = app.config["DATABASE_URL"]
    env = dict(os.environ, DVZA_DATABASE_URL=database_url, DVZA_INSTANCE_PATH=app.instance_path,
               DVZA_SECRET_KEY="test-secret-key", DVZA_QUALIFICATION_MODE="true", DVZA_LOG_LEVEL="ERROR",
               DVZA_LOG_FORMAT="console")
    app.extensions["dvza.db"].dispose()
    body = fixture_text(BUNDLE)
    headers = {"Authorization": f"Bearer {TOKENS[BERGZOON]}", "Content-Type": "application/fhir+json",
               "Accept": "application/fhir+json"}
    server = Server(env)
    server.start()

    acknowledged: dict[str, bytes] = {}
    unanswered: list[str] = []
    refused: list[tuple[str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(prefix: str) -> None:
        index = 0
        while not stop.is_set():
            request_id = f"{prefix}-{index}"
            index += 1
            try:
                status, payload = server.request("POST", "/fhir/", body, headers | {"MedMij-Request-ID": request_id})
            except (OSError, http.client.HTTPException):  # the server is gone (before or while answering): this
                # request is unanswered, the PGO backs off
                with lock:
                    unanswered.append(request_id)
                return
            with lock:
                if status == 200:
                    acknowledged[request_id] = payload
                else:
                    refused.append((request_id, status))

    threads = [threading.Thread(target=client, args=(f"pgo{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 60
    while len(acknowledged) < 25 and time.time() < deadline:
        time.sleep(0.05)
    server.kill()
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert len(acknowledged) >= 25
    assert len(unanswered) == len(threads) and refused == []

    server.start()
    try:
        for request_id in unanswered:  # the PGO retries what it got no answer for
            status, payload = server.request("POST", "/fhir/", body, headers | {"MedMij-Request-ID": request_id})
            assert status == 200, payload[:300]
            acknowledged[request_id] = payload
        for request_id in list(acknowledged)[:5]:  # and a retry of an answered one changes nothing
            status, payload = server.request("POST", "/fhir/", body, headers | {"MedMij-Request-ID": request_id})
            assert status == 200 and json.loads(payload)["entry"] == json.loads(acknowledged[request_id])["entry"]
    finally:
        server.kill()

    check = make_app(databases, tmp_path_factory, DATABASE_URL=database_url)
    try:
        with check.extensions["dvza.db"].sessionmaker() as session:
            items = session.scalars(select(QueueItem)).all()
            hidden = Counter(session.scalars(select(ResourceRow.hidden_by).where(ResourceRow.hidden_by.is_not(None))))
    finally:
        check.extensions["dvza.db"].dispose()
    per_request = Counter(item.request_id for item in items)
    assert set(per_request) == set(acknowledged)
    assert all(n == 1 for n in per_request.values())
    observations_per_bundle = sum(1 for e in json.loads(body)["entry"] if e["request"]["url"] == "Observation")
    assert {item.id for item in items} == set(hidden)
    assert all(hidden[item.id] == observations_per_bundle for item in items)
    for item in items:
        expected = [e["fullUrl"] for e in json.loads(acknowledged[item.request_id])["entry"]]
        assert [e["fullUrl"] for e in json.loads(item.response_json)["entry"]] == expected
