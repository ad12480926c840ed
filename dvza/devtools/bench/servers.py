"""Databases and servers for the benchmark: a DVZA instance in production mode with the Cert data, the
baseline app, both under ``dvza serve``'s gunicorn settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
import uuid
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from pathlib import Path

from ..postgres import create_database
from ..postgres import drop_databases
from ..processes import wait_until_answers

HELLEMAN = "medmij-bgz-patient-ts-01"
BERGZOON = "selfmeasurement-patient-kwalificatie2"
CERT = Path("conformance", "nictiz-testscripts", "output", "STU3")


def fresh_database(kind: str, folder: Path) -> tuple[str, t.Callable[[], None]]:
    """A new, empty database: a SQLite file, or a database on ``DVZA_TEST_POSTGRES_URL``'s server."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'bench.sqlite3'}", lambda: None
    server = os.environ["DVZA_TEST_POSTGRES_URL"]
    name = f"dvza_bench_{uuid.uuid4().hex[:8]}"
    return create_database(server, name), lambda: drop_databases(server, name)


def environment(instance: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The DVZA's settings: production mode (no qualification tokens), quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVZA_") or k == "DVZA_SHARED_DIR"}
    env.update(DVZA_INSTANCE_PATH=str(instance), DVZA_DATABASE_URL=database_url, DVZA_LOG_LEVEL="WARNING",
               DVZA_LOG_FORMAT="console", DVZA_QUALIFICATION_MODE="false", DVZA_DEVELOPMENT_LOGIN="true",
               DVZA_SECRET_KEY="bench-secret", DVZA_BSN_HMAC_KEY="bench-bsn-key", **extra)
    return env


@dataclass(slots=True)
class Instance:
    env: dict[str, str]
    tokens: dict[str, str]


def prepare(instance: Path, database_url: str, shared: Path, **extra: str) -> Instance:
    """Load the BgZ and Zelfmetingen Cert data and issue access tokens (no certificate binding)."""
    env = environment(instance, database_url, **extra)
    script = f"""
import json, sys
from datetime import date, timedelta
from dvza import create_app
from dvza.devtools import testdata
from oauth.tokens import ACCESS, store_token
app = create_app()
database = app.extensions["dvza.db"]
with app.app_context(), database.sessionmaker() as session:
    testdata.load(session, [{str(shared / CERT / "BgZ-3-0" / "MedMij" / "Cert")!r},
                            {str(shared / CERT / "SelfMeasurements-2-0" / "MedMij" / "Cert")!r}],
                  today=date.today(), bsn_key="bench-bsn-key", external_documents="placeholder")
    tokens = {{}}
    for patient, diensten in ((\"{HELLEMAN}\", ["48"]), (\"{BERGZOON}\", ["52", "53"])):
        value = f"bench-{{patient}}"
        store_token(session, value, kind=ACCESS, patient_id=patient, gegevensdiensten=diensten,
                    client_id="pgo.bench", lifetime=timedelta(hours=6))
        tokens[patient] = value
    session.commit()
    from sqlalchemy import text
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE bench_write (id VARCHAR(36) PRIMARY KEY, body TEXT)"))
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # planner statistics, as autovacuum keeps them in production; on PostgreSQL also the visibility map
        # (VACUUM), and the load's dirty pages written now (CHECKPOINT, superuser only) rather than by the
        # checkpointer while the figures are taken
        connection.execute(text("ANALYZE" if database.is_sqlite else "VACUUM ANALYZE"))
        if database.is_postgresql:
            try:
                connection.execute(text("CHECKPOINT"))
            except Exception:  # noqa: BLE001 - not a superuser: the checkpointer writes them in its own time
                pass
print(json.dumps(tokens))
"""
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"preparing the benchmark database failed:\n{done.stderr[-3000:]}")
    return Instance(env, json.loads(done.stdout.strip().splitlines()[-1]))


def gunicorn(app: str, env: dict[str, str], port: int, workers: int, *, tls: dict[str, str] | None = None,
             health: str = "/healthz", cert: tuple[str, str] | None = None, verify: str | bool = False
             ) -> subprocess.Popen[bytes]:
    """``dvza serve``'s gunicorn command line (dvza.serving.gunicorn_args) for ``app``, started and ready."""
    from ...serving import gunicorn_args

    tls = tls or {}
    args = gunicorn_args(bind=f"127.0.0.1:{port}", workers=workers, certfile=tls.get("cert"),
                         keyfile=tls.get("key"), ca_certs=tls.get("ca"), client_cert=tls.get("client", "none"),
                         app=app)
    args[-1:-1] = ["--log-level", "warning", "--access-logfile", "/dev/null"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    scheme = "https" if tls else "http"
    try:
        wait_until_answers(f"{scheme}://127.0.0.1:{port}{health}", process, timeout=90, cert=cert, verify=verify)
    except RuntimeError as exc:
        process.kill()
        raise SystemExit(f"{app} did not become ready: {exc}") from None
    return process


def stop(*processes: subprocess.Popen[bytes] | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
    for process in processes:
        if process is not None:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def today_minus(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()
