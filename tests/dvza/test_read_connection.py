"""The read path's connection on SQLite (dvza.db.Database.connection, issue 12): in autocommit for good, so
its prepared statements survive from one request to the next.

SQLAlchemy puts a connection whose isolation level was switched for one use back with ``PRAGMA
read_uncommitted = 0``; after such a pragma SQLite expires every prepared statement of the connection, and
each statement of the next request was parsed and planned anew (py-spy ``--native``: ``sqlite3Reprepare``,
11 % of a worker's time under read load). Watched here with ``sqlite3.Connection.set_trace_callback``, which
sees every statement SQLite runs, the driver's own included.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from dvza.devtools.bench.urls import BGZ_URLS
from dvza.models import AuditRecord
from tests.support import load_cert_data
from tests.support import make_app

HELLEMAN = "medmij-bgz-patient-ts-01"


@pytest.fixture()
def traced(databases: t.Any, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[tuple[t.Any, list[str]]]:
    if databases.is_postgresql:
        pytest.skip("SQLite's prepared statements (PostgreSQL switches autocommit in the client only)")
    statements: list[str] = []

    def trace(dbapi_connection: t.Any, _record: t.Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    event.listen(Engine, "connect", trace)
    try:
        application = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False)
        load_cert_data(application, "bgz")
        from oauth.tokens import ACCESS
        from oauth.tokens import store_token

        with application.app_context(), application.extensions["dvza.db"].sessionmaker() as session:
            store_token(session, "read-path-token", kind=ACCESS, patient_id=HELLEMAN, gegevensdiensten=["48"],
                        client_id="pgo.test", lifetime=timedelta(hours=1))
            session.commit()
        yield application, statements
    finally:
        event.remove(Engine, "connect", trace)
    application.extensions["dvza.db"].dispose()


def test_reads_never_switch_the_connection_and_each_is_audited(traced: tuple[t.Any, list[str]]) -> None:
    app, statements = traced
    database = app.extensions["dvza.db"]
    with database.sessionmaker() as session:
        before = session.scalar(select(func.count()).select_from(AuditRecord))
    headers = {"Authorization": "Bearer read-path-token", "Accept": "application/fhir+json"}
    client = app.test_client()
    for url in BGZ_URLS:  # the pool connects (its pragmas, once per connection)
        assert client.get("/fhir/" + url, headers=headers).status_code == 200
    statements.clear()
    for url in BGZ_URLS:
        assert client.get("/fhir/" + url, headers=headers).status_code == 200
    assert [s for s in statements if "pragma" in s.lower()] == []
    assert any(s.startswith("INSERT INTO audit_event") for s in statements)
    with database.sessionmaker() as session:  # each read's record was committed by its own statement
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == before + 2 * len(BGZ_URLS)


def test_the_read_path_and_the_sessions_keep_their_own_modes(traced: tuple[t.Any, list[str]]) -> None:
    app, _ = traced
    database = app.extensions["dvza.db"]
    with app.app_context():
        read = database.connection()
        assert read.connection.driver_connection.isolation_level is None  # autocommit
        with database.sessionmaker() as session:
            raw = session.connection().connection.driver_connection
            assert raw is not read.connection.driver_connection
            assert raw.isolation_level == ""  # transactions as the ORM expects them


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite:///:memory:"])
def test_an_in_memory_database_is_one_database_for_both_paths(url: str) -> None:
    """A second pool on an in-memory database would open a second, empty database (found in review)."""
    from flask import Flask
    from sqlalchemy import text

    from dvza import db

    database = db.Database(url)
    app = Flask(__name__)
    db.init_app(app, database)
    try:
        with database.engine.begin() as connection:
            connection.execute(text("CREATE TABLE seen (x INTEGER)"))
            connection.execute(text("INSERT INTO seen VALUES (1)"))
        with app.app_context():
            assert database.connection().execute(text("SELECT x FROM seen")).scalar_one() == 1
    finally:
        database.dispose()
