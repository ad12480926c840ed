"""Schema migrations (Alembic): every change to the tables ships as a revision in ``dvza/migrations/versions``.

``dvza db upgrade`` (and ``dvza db init``, the same) brings a database to the newest revision; the app does so
at start-up unless ``DB_AUTO_UPGRADE`` is off (then it refuses to start on an older schema). Several instances
or workers starting at once are safe: an upgrade holds a lock for its whole transaction — PostgreSQL's
``pg_advisory_xact_lock``, SQLite's ``BEGIN IMMEDIATE`` (its one write lock) — so the second waits and then
finds nothing to do. Both databases have transactional DDL, so a failing revision leaves nothing half done.

A database made by ``dvza db init`` before migrations existed (tables, no ``alembic_version``) is recognised
when its tables and columns are those of revision 0001, the last release without migrations, and marked as
being there; anything else is refused rather than guessed at.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import text

from . import schema

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: the revision of a database created without migrations (main before issue 12, see versions/0001_baseline.py)
BASELINE = "0001"
#: any 64-bit number of our own: the PostgreSQL advisory lock all upgrades of one database take
_LOCK_KEY = 0x64_76_7A_61_6D_69_67  # "dvzamig"


class MigrationError(RuntimeError):
    """The database cannot be brought to the code's schema automatically; the message says why and what to do."""


def alembic_config(connection: Connection | None = None, *, directory: Path = MIGRATIONS) -> Config:
    """Alembic's configuration without an ini file: our script folder, and the connection env.py runs on."""
    config = Config()
    config.set_main_option("script_location", str(directory))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision in the code."""
    return t.cast(str, ScriptDirectory.from_config(alembic_config()).get_current_head())


def current(engine: Engine) -> str | None:
    """The revision the database is at (``None``: no ``alembic_version``, i.e. empty or pre-migration)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the database to ``revision`` under the migration lock; returns (revision before, revision after).
    A database already at the newest revision is seen without the lock (every start of every instance)."""
    if revision == "head":
        at = current(engine)
        if at is not None and at == head():
            return at, at
    with _locked(engine) as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config = alembic_config(connection)
        if before is None and _has_tables(connection):
            _check_baseline(connection)
            command.stamp(config, BASELINE)
            before = BASELINE
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
        connection.commit()
    return before, after


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision`` (for a release that has to be rolled back)."""
    with _locked(engine) as connection:
        command.downgrade(alembic_config(connection), revision)
        connection.commit()


def differences(engine: Engine) -> list[t.Any]:
    """What autogenerate would change between the database and the models: empty when they agree. Autogenerate
    does not compare the WHERE clause of a partial index; :func:`_predicate_differences` does."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, schema.metadatas())) + _predicate_differences(connection)


def _predicate_differences(connection: Connection) -> list[tuple[str, str, str | None, str | None]]:
    """``("index predicate", name, in the database, in the models)`` for each index whose WHERE clause differs."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        rows = connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    else:
        rows = connection.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                       "WHERE schemaname = current_schema()"))
    in_database = {name: _predicate(definition) for name, definition in rows}
    found = []
    for metadata in schema.metadatas():
        for table in metadata.tables.values():
            for index in table.indexes:
                where = index.dialect_options[dialect].get("where")
                model = _normal(str(where)) if where is not None else None
                if index.name in in_database and in_database[index.name] != model:
                    found.append(("index predicate", str(index.name), in_database[index.name], model))
    return found


def _predicate(definition: str) -> str | None:
    _, separator, predicate = definition.partition(" WHERE ")
    return _normal(predicate) if separator else None


def _normal(expression: str) -> str:
    """A WHERE clause without the parentheses, quotes, spacing and case each database writes it with."""
    return "".join(expression.replace("(", " ").replace(")", " ").replace('"', " ").lower().split())


def new_revision(engine: Engine, message: str, *, directory: Path = MIGRATIONS) -> Path:
    """Write the next revision (``0004_<message>.py``, …) from what autogenerate finds between the models and a
    database at the newest revision; the file is a draft to read and complete (data, SQLite batch mode)."""
    script = ScriptDirectory.from_config(alembic_config(directory=directory))
    newest = t.cast(str, script.get_current_head())
    if current(engine) != newest:
        raise MigrationError(f"the database must be at the newest revision ({newest}) first: dvza db upgrade")
    with engine.connect() as connection:
        written = command.revision(alembic_config(connection, directory=directory), message=message,
                                   autogenerate=True, rev_id=f"{int(newest) + 1:04d}")
    return Path(t.cast(t.Any, written).path)


def require_current(engine: Engine) -> None:
    """Refuse to run on a database that is not at the code's revision (``DB_AUTO_UPGRADE`` off)."""
    at, newest = current(engine), head()
    if at != newest:
        raise MigrationError(
            f"the database is at revision {at or 'none'}, this version of medmij-dvza needs {newest}: "
            "run `dvza db upgrade` (or set DVZA_DB_AUTO_UPGRADE=true)"
        )


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction holds the database's migration lock (module docstring)."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            yield connection
        elif connection.dialect.name == "sqlite":
            # pysqlite begins transactions only before INSERT/UPDATE/DELETE: with the driver in autocommit we
            # begin ourselves, so the DDL is inside the transaction too (SQLAlchemy "Serializable isolation /
            # Savepoints / Transactional DDL" for pysqlite); the driver's mode is restored afterwards.
            driver = t.cast(t.Any, connection.connection.driver_connection)
            previous = driver.isolation_level
            driver.isolation_level = None
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                yield connection
            finally:
                if driver.in_transaction:
                    driver.rollback()
                driver.isolation_level = previous
        else:
            yield connection


def _has_tables(connection: Connection) -> bool:
    return bool(inspect(connection).get_table_names())


def _check_baseline(connection: Connection) -> None:
    """A database without ``alembic_version`` may be stamped at 0001 only if it is that schema."""
    found = _columns(connection)
    reference = create_engine("sqlite://")
    with reference.connect() as scratch:
        command.upgrade(alembic_config(scratch), BASELINE)
        expected = _columns(scratch)
    reference.dispose()
    expected.pop("alembic_version", None)
    if found != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        changed = sorted(name for name in set(found) & set(expected) if found[name] != expected[name])
        raise MigrationError(
            "this database has tables but no migration history, and they are not those of the last release "
            f"without migrations (revision {BASELINE}): missing {missing}, unknown {extra}, different {changed}. "
            "Restore it from a backup made by that release, or start from an empty database."
        )


def _columns(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {name: {column["name"] for column in inspector.get_columns(name)} for name in inspector.get_table_names()}
