"""The source API over real mutual TLS (``dvza serve`` under gunicorn, certificates from ``certs/``), as README
"Connecting your EHR" sets it up: the source's certificate configured with ``dvza source certificate``; a
PGO's certificate from the same CA is refused, no certificate gets no connection; an NDJSON import streamed as
a chunked upload."""

from __future__ import annotations

import json
import re
import subprocess
import typing as t

import pytest
import requests

from certs.pki import ensure_dev_pki
from dvza.devtools.processes import CHECKOUT
from dvza.devtools.processes import dvza_command
from dvza.devtools.processes import free_port
from dvza.devtools.processes import wait_until_answers
from dvza.devtools.synthetic import records
from tests.e2e.test_serve_operations import environment

pytestmark = pytest.mark.e2e

EPD, PGO = "epd.localhost", "pgo.localhost"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, t.Any]]:
    instance = tmp_path_factory.mktemp("source-tls")
    pki = ensure_dev_pki(instance / "pki", clients=[EPD, PGO])
    printed = subprocess.run(dvza_command("source", "certificate", str(pki.clients[EPD].cert), "--name", "epd"),
                             env=environment(instance), cwd=CHECKOUT, capture_output=True, text=True, check=True).stdout
    setting = re.search(r"DVZA_SOURCE_CERTIFICATES='([^']+)'", printed)
    assert setting, printed
    port = free_port()
    log = (instance / "server.log").open("wb")
    env = environment(instance, DVZA_QUALIFICATION_MODE="true", DVZA_SOURCE_CERTIFICATES=setting.group(1))
    process = subprocess.Popen(
        dvza_command("serve", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--certfile", str(pki.server.cert),
             "--keyfile", str(pki.server.key), "--ca-certs", str(pki.ca_cert), "--client-cert", "required"),
        env=env, cwd=CHECKOUT, stdout=log, stderr=subprocess.STDOUT)
    base = f"https://localhost:{port}"
    epd = requests.Session()
    epd.cert, epd.verify = (str(pki.clients[EPD].cert), str(pki.clients[EPD].key)), str(pki.ca_cert)
    epd.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over the session's CA
    wait_until_answers(f"{base}/healthz", process, get=epd.get, log=instance / "server.log")
    try:
        yield {"base": base, "epd": epd, "pki": pki}
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


FHIR_JSON = {"Content-Type": "application/fhir+json"}


def test_the_configured_source_writes_over_mutual_tls(tls_server: dict[str, t.Any]) -> None:
    base, epd = tls_server["base"], tls_server["epd"]
    patient = next(records(1, 0, prefix="tls"))
    created = epd.put(f"{base}/source/fhir/Patient/{patient['id']}", data=json.dumps(patient), headers=FHIR_JSON,
                      timeout=30)
    assert created.status_code == 201, created.text
    assert patient["identifier"][0]["value"] not in created.text
    assert epd.get(f"{base}/fhir/Patient/{patient['id']}", timeout=30).status_code == 401  # no token: no FHIR


def test_a_pgo_certificate_from_the_same_ca_is_not_a_source(tls_server: dict[str, t.Any]) -> None:
    pki = tls_server["pki"]
    response = requests.get(f"{tls_server['base']}/source/fhir/Patient/tls-0", timeout=30, verify=str(pki.ca_cert),
                            cert=(str(pki.clients[PGO].cert), str(pki.clients[PGO].key)))
    assert response.status_code == 403
    with pytest.raises(requests.exceptions.SSLError):  # the TLS layer itself asks for a certificate
        requests.get(f"{tls_server['base']}/source/fhir/Patient/tls-0", timeout=30, verify=str(pki.ca_cert))


def test_an_ndjson_import_streams_through_gunicorn(tls_server: dict[str, t.Any]) -> None:
    base, epd = tls_server["base"], tls_server["epd"]

    def upload() -> t.Iterator[bytes]:  # a chunked upload: produced while the server reads it
        for record in records(40, 9, prefix="stream", bsn_offset=7_000_000):
            yield (json.dumps(record) + "\n").encode()

    response = epd.post(f"{base}/source/fhir/$import?job=tls-stream", data=upload(), timeout=120,
                        headers={"Content-Type": "application/fhir+ndjson"})
    assert response.status_code == 200, response.text
    assert response.json()["issue"][0]["diagnostics"] == "400 lines: 400 loaded (400 created, 0 updated, " \
                                                         "0 unchanged), 0 refused"
