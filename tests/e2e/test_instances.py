"""Several instances, one database (issue 12): two ``dvza serve`` instances (gunicorn, two workers each, TLS
with optional client certificates) on one PostgreSQL database, as behind a load balancer.

The person authorizes and consents on instance A; the PGO exchanges the code on instance B; FHIR reads work
on both; the person withdraws the consent on A and the token is refused at once on every worker of both.
Nothing per process (caches, sessions, codes) may break that. Needs ``DVZA_TEST_POSTGRES_URL`` (``.ci/run``
starts a server); the pass on SQLite has it set, the e2e tests do not run in the PostgreSQL pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import typing as t
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from sqlalchemy.engine import make_url

from dvza.devtools.postgres import create_database
from dvza.devtools.postgres import drop_databases
from dvza.devtools.processes import CHECKOUT
from dvza.devtools.processes import checkout_environment
from dvza.devtools.processes import dvza_command
from dvza.devtools.processes import free_port
from dvza.devtools.processes import wait_until_answers
from dvza.pgo.frontchannel import DevBrowser
from dvza.pgo.frontchannel import authorize_with_dev_login
from tests.e2e.conftest import person
from tests.support import needs_shared

pytestmark = [pytest.mark.e2e, pytest.mark.slow]



class Instance:
    def __init__(self, name: str, port: int, process: subprocess.Popen[bytes], log: Path):
        self.name, self.port, self.process, self.log = name, port, process, log

    @property
    def base(self) -> str:
        return f"https://dvza.localhost:{self.port}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    server = os.environ.get("DVZA_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("DVZA_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server)")
    needs_shared()
    from dvza.devtools.devnet import DevNetwork
    from dvza.pgo import localnames

    name = f"{make_url(server).database}_instances_{uuid.uuid4().hex[:8]}"
    database_url = create_database(server, name)

    root = tmp_path_factory.mktemp("instances")
    net = DevNetwork(root, front_port=free_port(), back_port=free_port(), pgo_port=free_port(),
                     digid_port=free_port(), digid_back_port=free_port(),
                     extra_env={"DVZA_LOG_LEVEL": "WARNING", "DVZA_DATABASE_URL": database_url})
    net.prepare(shared=Path(os.environ["DVZA_SHARED_DIR"]) if os.environ.get("DVZA_SHARED_DIR") else None)
    localnames.install()
    instances: list[Instance] = []
    try:
        for label in ("a", "b"):
            port = free_port()
            log = root / f"instance-{label}.log"
            process = subprocess.Popen(
                dvza_command("serve", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--certfile",
                             str(net.pki.server_cert), "--keyfile", str(net.pki.server_key), "--ca-certs",
                             str(net.pki.ca_cert), "--client-cert", "optional"),
                env=checkout_environment(net.dvza_env()), cwd=CHECKOUT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
            instances.append(Instance(label, port, process, log))
        for instance in instances:
            wait_until_answers(f"{instance.base}/healthz", instance.process, timeout=90, log=instance.log,
                               verify=str(net.pki.ca_cert))
        yield net, instances
    finally:
        for instance in instances:
            instance.process.terminate()
        for instance in instances:
            instance.process.wait(timeout=30)
        drop_databases(server, name)


def _on(aanbieder: t.Any, instance: Instance) -> t.Any:
    """The aanbieder's endpoints, all on one instance (as a load balancer might route them)."""
    return replace(aanbieder, authorize_url=f"{instance.base}/oauth/authorize",
                   token_url=f"{instance.base}/oauth/token", fhir_base=f"{instance.base}/fhir")


def _fhir(net: t.Any, instance: Instance, token: str, path: str) -> requests.Response:
    """A FHIR read on a new TLS connection (so the instance's workers take turns), with the PGO's certificate."""
    client = net.pki.clients[net.pgo_hostname]
    return requests.get(f"{instance.base}/fhir/{path}", verify=str(net.pki.ca_cert), timeout=10,
                        cert=(str(client.cert), str(client.key)),
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json",
                                 "Connection": "close"})


def _withdraw_consents(net: t.Any, instance: Instance, bsn: str) -> int:
    """The person logs in on "Mijn toestemmingen" of ``instance`` and withdraws every consent line there."""
    browser = DevBrowser(verify=str(net.pki.ca_cert))
    page = browser.log_in(t.cast(requests.Response, browser.get(f"{instance.base}/oauth/toestemmingen")), bsn=bsn)
    withdrawn = 0
    while True:
        assert isinstance(page, requests.Response)
        lines = re.findall(r'action="([^"]*/oauth/toestemmingen/[0-9a-f-]{36}/intrekken)"', page.text)
        if not lines:
            return withdrawn
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        answer = browser.post(urljoin(page.url, lines[0]), {"csrf_token": csrf.group(1)})
        assert isinstance(answer, requests.Response) and answer.status_code == 200, answer
        withdrawn += 1
        page = browser.get(f"{instance.base}/oauth/toestemmingen")


def _code(net: t.Any, instance: Instance, bsn: str) -> str:
    client = net.pgo_client()
    answer = authorize_with_dev_login(client.authorize_url(_on(net.aanbieder(), instance), ["48"], state="instances"),
                                      bsn=bsn, verify=str(net.pki.ca_cert), redirect_prefix=client.redirect_uri)
    assert answer.get("state") == "instances" and "code" in answer, answer
    return answer["code"]


def _assert_refused_everywhere(net: t.Any, token: str, *instances: Instance) -> None:
    for instance in instances:
        for _ in range(8):  # new connections: both workers of the instance take some
            response = _fhir(net, instance, token, "Patient")
            assert response.status_code == 401, (instance.name, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"


def test_authorize_on_one_token_on_the_other_reads_on_both_revoke_everywhere(cluster: t.Any) -> None:
    net, (a, b) = cluster
    client, aanbieder = net.pgo_client(), net.aanbieder()
    bsn = person(net)

    # authorize and consent on A (login state, browser session and code live in the database); token on B
    grant = client.exchange_code(_on(aanbieder, b), _code(net, a, bsn))

    # reads on both instances, on fresh connections so that every worker serves some
    for instance in (a, b):
        for _ in range(6):
            response = _fhir(net, instance, grant.access_token, "Patient")
            assert response.status_code == 200, response.text
            assert response.json()["total"] == 1
        assert _fhir(net, instance, grant.access_token, "DocumentReference").status_code == 403  # not consented

    # the person withdraws the consent on A: the very next request on any worker of A or B is refused
    assert _withdraw_consents(net, a, bsn) >= 1
    _assert_refused_everywhere(net, grant.access_token, b, a)


def test_a_code_replayed_on_the_other_instance_is_refused_and_revokes_its_token(cluster: t.Any) -> None:
    """RFC 6749 §4.1.2: a code used twice is refused, and the tokens issued for it are revoked — whichever
    instance sees the replay."""
    net, (a, b) = cluster
    client, aanbieder = net.pgo_client(), net.aanbieder()
    code = _code(net, b, person(net))
    grant = client.exchange_code(_on(aanbieder, b), code)
    assert _fhir(net, a, grant.access_token, "Patient").status_code == 200
    pgo = net.pki.clients[net.pgo_hostname]
    replay = requests.post(f"{a.base}/oauth/token", verify=str(net.pki.ca_cert), timeout=10,
                           cert=(str(pgo.cert), str(pgo.key)),
                           data={"grant_type": "authorization_code", "code": code, "client_id": net.pgo_hostname,
                                 "redirect_uri": client.redirect_uri})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    _assert_refused_everywhere(net, grant.access_token, b, a)
