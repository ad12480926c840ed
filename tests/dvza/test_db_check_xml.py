"""``dvza db check-xml``: stored resources whose XML rendering is not XML (what was stored before control
characters and unchecked narratives were refused) are listed by type and id, never by content."""

from __future__ import annotations

import typing as t

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from dvza.cli import main
from fhir_api.models import ResourceRow
from fhir_api.store import ResourceStore
from tests.support import make_app


def test_check_xml_lists_what_cannot_be_served_as_xml(databases: t.Any, tmp_path_factory: pytest.TempPathFactory,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(databases, tmp_path_factory)
    url = app.config["DATABASE_URL"]
    database = app.extensions["dvza.db"]
    with app.app_context(), database.sessionmaker() as session:
        store = ResourceStore(session)
        for name in ("clean", "old"):
            store.put({"resourceType": "Organization", "id": name, "name": f"Ziekenhuis {name}"}, prepared=True)
        session.commit()
    for key, value in {"DVZA_DATABASE_URL": url, "DVZA_INSTANCE_PATH": app.config["INSTANCE_PATH"],
                       "DVZA_SECRET_KEY": "cli-secret", "DVZA_QUALIFICATION_MODE": "true",
                       "DVZA_LOG_FORMAT": "console", "DVZA_LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    result = runner.invoke(main, ["db", "check-xml"])
    assert result.exit_code == 0 and "every stored resource renders" in result.output, result.output

    with database.engine.begin() as connection:  # as an earlier version stored it: a raw control character
        connection.execute(update(ResourceRow).where(ResourceRow.logical_id == "old").values(
            xml_text='<Organization xmlns="http://hl7.org/fhir"><name value="secret\x01name"/></Organization>'))
    result = runner.invoke(main, ["db", "check-xml"])
    assert result.exit_code == 1, result.output
    assert "Organization/old" in result.output and "Organization/clean" not in result.output
    assert "secret" not in result.output
    database.dispose()
