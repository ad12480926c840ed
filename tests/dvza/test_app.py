"""Application factory, configuration, health endpoints and the command line."""

from __future__ import annotations

import json
import typing as t

import pytest

from dvza import config as config_module
from dvza import create_app
from tests.support import CERT_SETS
from tests.support import TOKENS_FILE
from tests.support import needs_shared


def test_environment_configures_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    monkeypatch.setenv("DVZA_QUALIFICATION_MODE", "true")
    monkeypatch.setenv("DVZA_DEFAULT_PAGE_SIZE", "25")
    monkeypatch.setenv("DVZA_GEGEVENSDIENSTEN", json.dumps({"148": "bgz"}))
    app = create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert app.config["QUALIFICATION_MODE"] is True
    assert app.config["DEFAULT_PAGE_SIZE"] == 25
    assert app.extensions["fhir_api"].gegevensdiensten == {"148": "bgz"}
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    app.extensions["dvza.db"].dispose()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"GEGEVENSDIENSTEN": {"48": "nonsense"}}, "not a known profile"),
        ({"FHIR_BASE_PATH": "fhir"}, "start with"),
        ({"DEFAULT_PAGE_SIZE": 0}, "positive"),
        ({"MAX_BUNDLE_ENTRIES": True}, "MAX_BUNDLE_ENTRIES must be a positive integer"),
        ({"SOURCE_MAX_BODY_BYTES": "50MB"}, "SOURCE_MAX_BODY_BYTES must be a positive integer"),
        ({"DEFAULT_PAGE_SIZE": 5000}, "may not exceed"),
        ({"DATABASE_URL": "mysql://x"}, "sqlite"),
        ({"LOG_FORMAT": "xml"}, "json or console"),
        ({"SQLITE_SYNCHRONOUS": "OFF"}, "NORMAL or FULL"),
        ({"DB_PING_AFTER_IDLE": -1}, "DB_PING_AFTER_IDLE"),
        ({"DB_PING_AFTER_IDLE": "soon"}, "DB_PING_AFTER_IDLE"),
    ],
)
def test_bad_configuration_fails_fast(tmp_path: t.Any, override: dict[str, t.Any], message: str) -> None:
    with pytest.raises(config_module.ConfigError, match=message):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **override})


@pytest.mark.parametrize(("setting", "pragma"), [(None, 1), ("NORMAL", 1), ("FULL", 2)])
def test_sqlite_durability_is_configurable(tmp_path: t.Any, setting: str | None, pragma: int) -> None:
    """``SQLITE_SYNCHRONOUS``: NORMAL by default (PRAGMA synchronous = 1), FULL (2) on request, on every
    connection of the pool (https://www.sqlite.org/pragma.html#pragma_synchronous)."""
    overrides = {"SQLITE_SYNCHRONOUS": setting} if setting else {}
    app = create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
                      "QUALIFICATION_MODE": True, **overrides})
    engine = app.extensions["dvza.db"].engine
    with engine.connect() as first, engine.connect() as second:
        for connection in (first, second):
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == pragma
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_health_endpoints(client: t.Any) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz", environ_base={"dvza.internal": True})  # details: operators only
    assert ready.status_code == 200 and ready.get_json()["checks"]["database"]["ok"] is True


def test_readiness_fails_without_database(app: t.Any) -> None:
    app.extensions["dvza.db"].engine.dispose()
    app.extensions["dvza.db"].engine = __import__("sqlalchemy").create_engine("sqlite:////nonexistent/dir/x.db")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503


def test_cli_loads_test_data_and_tokens(app: t.Any, runner: t.Any) -> None:
    needs_shared()
    result = runner.invoke(args=["testdata", "load", str(CERT_SETS["pdfa"]), "--external-documents", "placeholder"])
    assert result.exit_code == 0, result.output
    assert "refused  DocumentReference/pdfa-documentreference3" in result.output
    assert "loaded, 1 refused" in result.output
    strict = runner.invoke(args=["testdata", "load", str(CERT_SETS["pdfa"]), "--external-documents", "placeholder",
                                 "--strict"])
    assert strict.exit_code == 1
    result = runner.invoke(args=["testdata", "tokens", str(TOKENS_FILE), "--gegevensdiensten", "51",
                                 "--script", "MedMij PDF/A"])
    assert result.exit_code == 0 and result.output.startswith("3 qualification tokens imported")
    response = app.test_client().get("/fhir/DocumentReference?status=current",
                                     headers={"Authorization": "Bearer f92b6141-55db-46d5-a3ae-874b69907d22"})
    assert response.get_json()["total"] == 2
    response = app.test_client().get("/fhir/Condition",
                                     headers={"Authorization": "Bearer f92b6141-55db-46d5-a3ae-874b69907d22"})
    assert response.status_code == 403
