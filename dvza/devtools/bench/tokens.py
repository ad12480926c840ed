"""Token exchange over mutual TLS (MedMij core.tknint): ``POST /oauth/token`` with the PGO's client
certificate, each request on a new TLS connection — alternated with ``/healthz`` on the same listener,
so the difference is the token endpoint's own work."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import requests

from .load import pct
from .servers import environment
from .servers import gunicorn
from .servers import stop

PGO = "pgo.localhost"
REDIRECT = f"https://{PGO}/callback"

_CODES = """
import json, sys, uuid
from datetime import timedelta
from dvza import create_app
from oauth import codes
from oauth.models import Consent
from oauth.tokens import utcnow
app = create_app()
with app.app_context(), app.extensions["dvza.db"].sessionmaker() as session:
    values = []
    for _ in range(int(sys.argv[1])):
        consent = Consent(id=str(uuid.uuid4()), patient_id="medmij-bgz-patient-ts-01", client_id="pgo.localhost",
                          client_name="Demo-PGO", usecase="verzamelen", gegevensdiensten="48", long_term=False,
                          granted_at=utcnow())
        session.add(consent)
        values.append(codes.issue_code(session, flow_id=str(uuid.uuid4()), consent_id=consent.id,
                                       client_id="pgo.localhost", redirect_uri=sys.argv[2], scope="umcdemo",
                                       patient_id="medmij-bgz-patient-ts-01", gegevensdiensten=["48"],
                                       correlation_id=None, lifetime=timedelta(seconds=900)))
    session.commit()
print(json.dumps(values))
"""


def token_exchange(root: Path, database_url: str, port: int, workers: int, rounds: int = 200) -> dict[str, t.Any]:
    from ..devnet import DevNetwork

    net = DevNetwork(root / "net", back_port=port, workers=workers)
    net.prepare(load_data=False)
    dev = net.dvza_env()
    env = environment(root / "instance", database_url, DVZA_LISTS_DIR=dev["DVZA_LISTS_DIR"],
                      DVZA_LISTS_DEVELOPMENT="true", DVZA_AANBIEDER_NAAM=dev["DVZA_AANBIEDER_NAAM"],
                      DVZA_PUBLIC_HOSTNAME=net.host)
    codes = json.loads(subprocess.run([sys.executable, "-c", _CODES, str(rounds + 20), REDIRECT], env=env,
                                      capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    client = net.pki.clients[PGO]
    cert, ca = (str(client.cert), str(client.key)), str(net.pki.ca_cert)
    tls = {"cert": str(net.pki.server_cert), "key": str(net.pki.server_key), "ca": ca, "client": "required"}
    server = gunicorn("dvza:create_app()", env, port, workers, tls=tls, cert=cert, verify=ca)
    base = f"https://127.0.0.1:{port}"
    token_times: list[float] = []
    health_times: list[float] = []
    try:
        for index, code in enumerate(codes):
            t0 = time.perf_counter()
            response = requests.post(f"{base}/oauth/token", cert=cert, verify=ca, timeout=30, data={
                "grant_type": "authorization_code", "code": code, "client_id": PGO, "redirect_uri": REDIRECT})
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                raise SystemExit(f"token exchange failed: {response.status_code} {response.text[:300]}")
            t1 = time.perf_counter()
            requests.get(f"{base}/healthz", cert=cert, verify=ca, timeout=30).raise_for_status()
            health = time.perf_counter() - t1
            if index >= 20:  # the first exchanges warm the workers up
                token_times.append(elapsed)
                health_times.append(health)
    finally:
        stop(server)
    return {"token_p50": pct(token_times, .5), "token_p99": pct(token_times, .99),
            "health_p50": pct(health_times, .5), "health_p99": pct(health_times, .99), "n": len(token_times)}
