"""The PostgreSQL pool pings a connection only after it sat idle (dvza/db.py, issue 12), and still recovers
from a connection the server dropped meanwhile. Needs ``DVZA_TEST_POSTGRES_URL``."""

from __future__ import annotations

import os
import typing as t
import uuid

import pytest
from sqlalchemy import text

from dvza.db import Database
from dvza.devtools.postgres import create_database
from dvza.devtools.postgres import drop_databases


@pytest.fixture()
def postgres() -> t.Iterator[tuple[str, str]]:
    server = os.environ.get("DVZA_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("DVZA_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server)")
    name = f"dvza_pool_{uuid.uuid4().hex[:8]}"
    url = create_database(server, name)
    yield server, url
    drop_databases(server, name)


def _backend(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _count_pings(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    real = database.engine.dialect.do_ping

    def counting(dbapi_connection: t.Any) -> bool:
        pings.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(database.engine.dialect, "do_ping", counting)
    return pings


def test_a_connection_in_steady_use_is_not_pinged(postgres: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(postgres[1], ping_after_idle=60)
    try:
        pings = _count_pings(database, monkeypatch)
        first = _backend(database)
        assert len(pings) == 0  # a connection just made answered its connect: no ping
        for _ in range(20):
            assert _backend(database) == first
        assert len(pings) == 0
    finally:
        database.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced(postgres: tuple[str, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = postgres
    database = Database(url, ping_after_idle=5)
    admin = Database(server)
    try:
        first = _backend(database)
        with admin.engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            connection.commit()
        clock = [1000.0]
        monkeypatch.setattr("dvza.db.time.monotonic", lambda: clock[0])
        for record in list(database.engine.pool._pool.queue):  # type: ignore[attr-defined]
            record.info["dvza.checked_in_at"] = clock[0]
        clock[0] += 6  # idle for longer than ping_after_idle: pinged, found dead, replaced
        second = _backend(database)
        assert second != first
    finally:
        database.dispose()
        admin.dispose()


def test_ping_after_idle_zero_pings_every_checkout(postgres: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(postgres[1], ping_after_idle=0)
    try:
        pings = _count_pings(database, monkeypatch)
        for _ in range(3):
            _backend(database)
        assert len(pings) == 3
    finally:
        database.dispose()



def test_a_broken_connection_on_the_read_path_replaces_the_pool(postgres: tuple[str, str]) -> None:
    """The read path runs on the driver's cursor, where SQLAlchemy does not see a lost connection: the request's
    teardown does (dvza.db), so after a server restart one request fails, not one per pooled connection."""
    from flask import Flask

    from dvza import db

    server, url = postgres
    database = Database(url, ping_after_idle=3600)
    admin = Database(server)
    app = Flask(__name__)
    db.init_app(app, database)

    def raw_query() -> int:
        with app.app_context():
            cursor = database.connection().connection.driver_connection.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            return int(cursor.fetchone()[0])

    try:
        held = [database.engine.connect() for _ in range(3)]
        pids = [int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in held]
        for connection in held:
            connection.close()
        with admin.engine.connect() as connection:
            for pid in pids:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            connection.commit()
        with pytest.raises(Exception):  # noqa: B017 - psycopg's OperationalError: the one failed request
            raw_query()
        at_once = [database.engine.connect() for _ in range(3)]  # e.g. a busy moment after the restart
        try:
            answered = []
            for connection in at_once:
                cursor = connection.connection.driver_connection.cursor()
                cursor.execute("SELECT pg_backend_pid()")
                answered.append(int(cursor.fetchone()[0]))
        finally:
            for connection in at_once:
                connection.close()
        assert not set(answered) & set(pids)
    finally:
        database.dispose()
        admin.dispose()
