"""The MedMij lists in the app (dvza/lists.py): the directory the authorization server asks, the
names on the consent page, and list freshness in ``/readyz``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from dvza import create_app
from medmij_lists import ListKind
from medmij_lists import write_demo_lists

DIENSTEN = {"48": "Basisgegevens zorg", "51": "Documenten"}


def demo_lists(folder: Path, volgnummer: int = 1, pgo: str = "pgo.localhost") -> Path:
    write_demo_lists(folder, dvza_hostname="dvza.localhost", aanbieder_naam="umctest@medmij",
                     aanbieder_weergavenaam="UMC Test", pgo_hostname=pgo, pgo_name="Test-PGO",
                     gegevensdiensten=DIENSTEN, authorize_url="https://dvza.localhost:8443/oauth/authorize",
                     token_url="https://dvza.localhost:9443/oauth/token",
                     fhir_base_url="https://dvza.localhost:9443/fhir", volgnummer=volgnummer)
    return folder


def lists_app(tmp_path: Path, **config: t.Any) -> t.Any:
    return create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
                       "LOG_FORMAT": "console", "LOG_LEVEL": "ERROR", "LISTS_BACKGROUND_REFRESH": False,
                       "DEVELOPMENT_LOGIN": True,
                       **config})


def test_directory_answers_from_the_lists(tmp_path: Path) -> None:
    app = lists_app(tmp_path, LISTS_DIR=str(demo_lists(tmp_path / "lists")), LISTS_DEVELOPMENT=True)
    directory = app.extensions["dvza.directory"]
    assert app.extensions["oauth"].directory is directory
    assert directory.client_name("pgo.localhost") == "Test-PGO"
    assert directory.client_name("PGO.localhost") == "Test-PGO"  # hostnames are case-insensitive
    assert directory.client_name("other.localhost") is None
    assert directory.is_whitelisted("pgo.localhost") and not directory.is_whitelisted("other.localhost")
    assert directory.dienst_name("51") == "Documenten" and directory.dienst_name("99") is None
    ready = app.test_client().get("/readyz", environ_base={"dvza.internal": True}).get_json()
    assert ready["status"] == "ready"
    assert ready["checks"]["lists"]["lists"]["OCL"]["volgnummer"] == 1
    app.extensions["dvza.db"].dispose()


def test_lists_that_are_not_medmij_valid_are_refused_outside_development(tmp_path: Path) -> None:
    """The demo lists carry a port in the frontchannel URL and .localhost names: strict mode
    refuses them, so no client is known and the app is not ready."""
    app = lists_app(tmp_path, LISTS_DIR=str(demo_lists(tmp_path / "lists")))
    assert app.extensions["dvza.directory"].client_name("pgo.localhost") is None
    response = app.test_client().get("/readyz", environ_base={"dvza.internal": True})
    assert response.status_code == 503
    status = response.get_json()["checks"]["lists"]["lists"]["OCL"]
    assert status["volgnummer"] is None and status["last_error"]
    app.extensions["dvza.db"].dispose()


def test_a_new_list_version_is_picked_up_and_a_broken_one_is_not(tmp_path: Path) -> None:
    folder = demo_lists(tmp_path / "lists")
    app = lists_app(tmp_path, LISTS_DIR=str(folder), LISTS_DEVELOPMENT=True)
    service, directory = app.extensions["dvza.lists"], app.extensions["dvza.directory"]
    demo_lists(folder, volgnummer=2, pgo="nieuwe-pgo.localhost")
    service.refresh()
    assert directory.client_name("nieuwe-pgo.localhost") == "Test-PGO"
    assert directory.client_name("pgo.localhost") is None
    (folder / ListKind.OCL.file_name).write_text("<kapot", encoding="utf-8")
    service.refresh()
    assert directory.client_name("nieuwe-pgo.localhost") == "Test-PGO"  # last good version kept
    assert service.status()[ListKind.OCL].last_error
    app.extensions["dvza.db"].dispose()


def test_the_cache_makes_a_restart_work_offline(tmp_path: Path) -> None:
    folder = demo_lists(tmp_path / "lists")
    first = lists_app(tmp_path, LISTS_DIR=str(folder), LISTS_DEVELOPMENT=True)
    first.extensions["dvza.db"].dispose()
    for kind in (ListKind.ZAL, ListKind.OCL, ListKind.GNL, ListKind.WHL):
        (folder / kind.file_name).unlink()
    second = lists_app(tmp_path, LISTS_DIR=str(folder), LISTS_DEVELOPMENT=True)
    assert second.extensions["dvza.directory"].is_whitelisted("pgo.localhost")
    second.extensions["dvza.db"].dispose()


def test_without_lists_only_qualification_mode_is_ready(tmp_path: Path) -> None:
    production = lists_app(tmp_path / "a")
    assert production.test_client().get("/readyz").status_code == 503
    production.extensions["dvza.db"].dispose()
    qualification = lists_app(tmp_path / "b", QUALIFICATION_MODE=True)
    assert qualification.test_client().get("/readyz").status_code == 200
    qualification.extensions["dvza.db"].dispose()


@pytest.mark.parametrize("interval", [0, 901, "15m"])
def test_refresh_interval_is_at_most_fifteen_minutes(tmp_path: Path, interval: t.Any) -> None:
    from dvza.config import ConfigError

    with pytest.raises(ConfigError, match="LISTS_INTERVAL"):
        lists_app(tmp_path, LISTS_INTERVAL=interval)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_without_lists_nothing_is_said_at_start_only_at_the_first_refusal(tmp_path: Path) -> None:
    """Issue 17: CLI commands, `make conformance` and the parent of `make run` load the app without
    lists; a WARNING then was misleading. The first refused authorization request says why, once."""
    handler = _Records()
    logger = logging.getLogger("dvza.lists")
    logger.addHandler(handler)
    try:
        app = lists_app(tmp_path, LOG_LEVEL="DEBUG")
        assert [r for r in handler.records if r.levelno >= logging.WARNING] == []
        client = app.test_client()
        for _ in range(2):
            page = client.get("/oauth/authorize?response_type=code&client_id=pgo.localhost&scope=umcdemo"
                              "&redirect_uri=https%3A%2F%2Fpgo.localhost%2Fcb&state=s")
            assert page.status_code == 400
        warnings = [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "no MedMij lists configured" in warnings[0]
        app.extensions["dvza.db"].dispose()
    finally:
        logger.removeHandler(handler)


def test_a_cli_command_loading_the_app_prints_no_lists_warning(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVZA_")} | {
        "DVZA_INSTANCE_PATH": str(tmp_path), "DVZA_LOG_FORMAT": "console", "DVZA_DEVELOPMENT_LOGIN": "true"}
    done = subprocess.run([sys.executable, "-m", "dvza.cli", "queue", "--help"], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    assert "WARNING" not in done.stderr and "no MedMij lists" not in done.stderr + done.stdout


def test_serve_warns_when_authorization_cannot_work() -> None:
    from dvza.lists import not_configured_warning

    assert "every authorization request will be refused" in str(not_configured_warning({}))
    assert not_configured_warning({"LISTS_DIR": "/srv/lists"}) is None
    assert not_configured_warning({"LISTS_OCL_URL": "https://x/MedMij_OAuthclientlist.xml"}) is None
    assert not_configured_warning({"QUALIFICATION_MODE": True}) is None
