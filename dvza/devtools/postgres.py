"""Throw-away databases on a PostgreSQL server, for ``make bench`` and the tests (each run gets its own)."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url


def create_database(server_url: str, name: str, *, template: str | None = None, replace: bool = False) -> str:
    """Create database ``name`` on the server of ``server_url`` (a copy of ``template`` if given; dropped first with
    ``replace``) and return its URL."""
    url = make_url(server_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if replace:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_databases(server_url: str, *names: str) -> None:
    """Drop the databases ``names`` on the server of ``server_url``, whoever is still connected."""
    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
