"""The database: one SQLAlchemy engine per process, one session per request.

SQLite is the embedded default (WAL journal, so several gunicorn workers can read while one
writes); PostgreSQL (``postgresql+psycopg://``) is for more than one host. Only SQL that works on
both is used (design-references.md §5.4): e.g. ``UPDATE … RETURNING`` for single-use codes and
queue claims; where the two differ, a construct compiles per dialect (``fhir_api.search.sql.InJsonArray``).

Each package owns its tables (``fhir_api.models``, ``oauth.models``, ``dvza.models``,
``dvza.returnqueue.models``, …; :mod:`dvza.schema` gathers them); the migrations in ``dvza/migrations``
create and change them (:mod:`dvza.migrate`).

A pooled PostgreSQL connection is pinged before use only when it has been idle for ``DB_PING_AFTER_IDLE``
seconds (a firewall or a server restart may have dropped it meanwhile); under load connections are
reused within milliseconds and the ping — a whole round trip, one of four on a FHIR read — is skipped.
A connection that breaks while in use fails that one request; at the end of that request the pool's other
connections are discarded too (SQLAlchemy "Dealing with Disconnects": pessimistic pinging vs. optimistic
invalidation; this is pessimistic for idle connections only), so a server restart costs one failed request
per worker, not one per pooled connection.

SQLite's durability is ``SQLITE_SYNCHRONOUS``: NORMAL by default (with WAL a commit survives the process
crashing; a power cut may lose the last commits, https://www.sqlite.org/wal.html#performance_considerations),
FULL for an fsync per commit. PostgreSQL keeps ``synchronous_commit=on``: a commit is on disk before it is
answered.
"""

from __future__ import annotations

import os
import time
import typing as t

from flask import Flask
from flask import g
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool


class Database:
    def __init__(self, url: str, *, echo: bool = False, sqlite_synchronous: str = "NORMAL",
                 ping_after_idle: float = 10.0):
        self.url = url
        kwargs: dict[str, t.Any] = {"echo": echo}
        sqlite = url.startswith("sqlite")
        if sqlite:
            if sqlite_synchronous not in ("NORMAL", "FULL"):
                raise ValueError("sqlite_synchronous must be NORMAL or FULL")
            self.sqlite_synchronous = sqlite_synchronous
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = StaticPool
        else:
            # last in, first out: the connection used last is used next (warm on the server, never idle), the
            # rest of the pool stays idle and is pinged (or closed by the server) only when it is needed again
            kwargs["pool_use_lifo"] = True
            self.ping_after_idle = ping_after_idle
        self.engine: Engine = create_engine(url, **kwargs)
        #: the read path's engine (:meth:`connection`): on a SQLite file its own pool, in autocommit for good
        self._autocommit_engine: Engine | None = None
        if sqlite:
            event.listen(self.engine, "connect", self._sqlite_pragmas)
            if not _in_memory(url):  # an in-memory database exists in its own connection only
                self._autocommit_engine = create_engine(url, isolation_level="AUTOCOMMIT", **kwargs)
                event.listen(self._autocommit_engine, "connect", self._sqlite_pragmas)
        else:
            event.listen(self.engine, "connect", _note_checkin)  # just connected: as good as a ping
            event.listen(self.engine, "checkin", _note_checkin)
            event.listen(self.engine, "checkout", self._ping_if_idle)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # gunicorn --preload forks after the app (and its pool) exists: a child must not reuse the
        # parent's connections (SQLAlchemy "Using Connection Pools with Multiprocessing").
        os.register_at_fork(after_in_child=lambda: self.dispose(close=False))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def session(self) -> Session:
        """The session of the current request (or CLI command), closed at teardown."""
        if "db_session" not in g:
            g.db_session = self.sessionmaker()
        return t.cast(Session, g.db_session)

    def connection(self) -> Connection:
        """The request's Core connection, apart from the ORM session: the read path (token check,
        search, audit record) runs on it without the unit of work (issue 12); writes keep the session.

        In autocommit mode: each statement is its own transaction, which for reads changes nothing
        (READ COMMITTED sees the latest committed data per statement anyway) and makes the audit record
        one durable round trip (no BEGIN, no COMMIT) — the PostgreSQL read path is three round trips:
        token, search, audit record.

        On a SQLite file these connections come from a second pool that is in autocommit for good. Switched
        per request, SQLAlchemy puts a connection back with ``PRAGMA read_uncommitted = 0``, and after any
        such flag pragma SQLite expires every prepared statement of the connection (pragma.c: "add an opcode
        to expire all compiled SQL statements after modifying a pragma value"): each statement of the next
        request was parsed and planned anew — 11 % of a gunicorn worker's time under read load (py-spy
        ``--native``: ``sqlite3Reprepare``). PostgreSQL's switch is client-side only (psycopg's
        ``autocommit``): one pool there."""
        connection = g.get("db_connection")
        if connection is None or connection.closed:
            if self._autocommit_engine is not None:
                connection = g.db_connection = self._autocommit_engine.connect()
            else:
                connection = g.db_connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return t.cast(Connection, connection)

    def check(self) -> None:
        """Raise if the database cannot be reached (readiness probe)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self, close: bool = True) -> None:
        """Close the pools' connections (``close=False``: forget them without closing, in a forked child)."""
        self.engine.dispose(close=close)
        if self._autocommit_engine is not None:
            self._autocommit_engine.dispose(close=close)

    def _ping_if_idle(self, dbapi_connection: t.Any, record: t.Any, _proxy: t.Any) -> None:
        """Ping a connection that has been idle for ``ping_after_idle`` seconds since it was connected or last
        returned; a failed ping makes the pool discard it and connect anew (``DisconnectionError``)."""
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is not None and time.monotonic() - checked_in < self.ping_after_idle:
            return
        try:
            alive = self.engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - any failure means the connection is unusable
            raise DisconnectionError(f"the pooled connection did not answer: {exc}") from exc
        if not alive:
            raise DisconnectionError("the pooled connection did not answer")

    def _sqlite_pragmas(self, dbapi_connection: t.Any, _record: t.Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except Exception:  # noqa: BLE001 - in-memory databases have no WAL; nothing to do
            pass
        cursor.execute(f"PRAGMA synchronous={self.sqlite_synchronous}")
        cursor.close()



_CHECKED_IN = "dvza.checked_in_at"


def _in_memory(url: str) -> bool:
    """A SQLite URL of an in-memory database (``sqlite://``, ``:memory:``, a ``mode=memory`` URI): a second engine
    would open a second, empty one."""
    parsed = make_url(url)
    return parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"


def savepoint(session: Session) -> t.Any:
    """``session.begin_nested()`` that undoes only its own work on every database.

    On SQLite the enclosing transaction is begun first: pysqlite starts a transaction only before a data
    change, and a SAVEPOINT outside a transaction *is* one — whose RELEASE commits (SQLite "SAVEPOINT",
    SQLAlchemy "Serializable isolation / Savepoints / Transactional DDL" for pysqlite). Without this, a unit
    would be committed on its own, and what the enclosing request or import chunk later refuses not undone.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            connection.exec_driver_sql("BEGIN")
    return session.begin_nested()


def _broken(connection: Connection) -> bool:
    """Whether the driver found the connection to the server lost (psycopg's ``broken``; never for SQLite)."""
    try:
        return bool(getattr(connection.connection.driver_connection, "broken", False))
    except Exception:  # noqa: BLE001 - an already invalidated connection has no driver connection
        return False


def _note_checkin(_dbapi_connection: t.Any, record: t.Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def init_app(app: Flask, database: Database) -> None:
    app.extensions["dvza.db"] = database

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        connection = g.pop("db_connection", None)
        if connection is not None:
            if _broken(connection):  # the read path runs on the driver's cursor, out of SQLAlchemy's sight
                connection.invalidate()
                database.dispose()  # the others are likely gone too (a server restart): connect anew
            connection.close()  # rolls back what is not committed
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def get_database(app: Flask) -> Database:
    return t.cast(Database, app.extensions["dvza.db"])
