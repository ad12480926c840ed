"""Shared fixtures (Flask tutorial style): apps on a fresh or a pre-loaded database.

The suite runs on SQLite by default; with ``DVZA_TEST_DATABASE_URL`` pointing at PostgreSQL every
database the tests use is a fresh database on that server (see ``tests/support.py``).
"""

from __future__ import annotations

import typing as t

import pytest

from tests.support import CERT_SETS
from tests.support import DatabaseFactory
from tests.support import load_cert_data
from tests.support import make_app
from tests.support import needs_shared


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory)
    yield factory
    factory.drop_all()


@pytest.fixture()
def app(databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    """An app on a fresh, empty database (qualification mode on)."""
    application = make_app(databases, tmp_path_factory)
    yield application
    application.extensions["dvza.db"].dispose()


@pytest.fixture()
def client(app: t.Any) -> t.Any:
    return app.test_client()


@pytest.fixture()
def runner(app: t.Any) -> t.Any:
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def cert_app(databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    """One app per test session with all four Cert sets loaded. Read-only: tests must not write."""
    needs_shared()
    application = make_app(databases, tmp_path_factory)
    application.config["LOAD_REPORT"] = load_cert_data(application, *CERT_SETS)
    yield application
    application.extensions["dvza.db"].dispose()


@pytest.fixture()
def cert_client(cert_app: t.Any) -> t.Any:
    return cert_app.test_client()

