"""Shared resources a record refers to in any number (fhir_api.view: the reach of a search of a shared type).

A search of a shared type (``GET Medication``) is limited to the ids the patient's record reaches. Those
ids were bound one by one in an IN list padded to a power of two, so on PostgreSQL (65 535 parameters) a
record that referred to more than 32 768 distinct resources of one type made the search fail with a 500
(SQLite's default cap is 32 766 variables; the build here allows more). Past ``LONGEST_ID_LIST`` they now
go in one JSON array bind. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import typing as t

import pytest
from sqlalchemy import insert
from sqlalchemy import select

from fhir_api import view
from fhir_api.models import ReferenceIndex
from fhir_api.models import ResourceRow
from fhir_api.search.index import ALL_REFERENCES
from tests.support import bearer
from tests.support import load_cert_data
from tests.support import make_app

HELLEMAN = "medmij-bgz-patient-ts-01"
MESKER = "medmij-bgz-patient-ts-02"
MANY = 33_000  # padded to 65 536 binds: past PostgreSQL's limit
SHARED_TYPES = ("Medication", "Organization", "Practitioner", "PractitionerRole", "Location", "Device")


@pytest.fixture(scope="module")
def bgz_app(databases: t.Any, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    application = make_app(databases, tmp_path_factory)
    load_cert_data(application, "bgz")
    yield application
    application.extensions["dvza.db"].dispose()


def _everything(app: t.Any, patient: str, resource_type: str) -> list[str]:
    """All ids of ``resource_type`` the patient's token finds, following the pages."""
    client, found = app.test_client(), []
    url: str | None = f"/fhir/{resource_type}?_count=500"
    while url:
        response = client.get(url, headers=bearer(patient))
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        bundle = response.get_json()
        found += [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]
        url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
        if url:
            url = url[url.index("/fhir/"):]
    return sorted(found)


def test_one_bind_for_a_long_list_gives_the_same_answers(bgz_app: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shared type, as each of two patients: the JSON array form finds exactly what the IN list finds."""
    listed = {(p, rt): _everything(bgz_app, p, rt) for p in (HELLEMAN, MESKER) for rt in SHARED_TYPES}
    assert any(listed.values())
    monkeypatch.setattr(view, "LONGEST_ID_LIST", 0)
    assert {(p, rt): _everything(bgz_app, p, rt) for p in (HELLEMAN, MESKER) for rt in SHARED_TYPES} == listed


def test_a_record_may_refer_to_more_resources_than_a_driver_binds(bgz_app: t.Any) -> None:
    """33 000 Medications, each referred to by the patient's medication statement (written straight into the
    index, as a hospital's import could): the patient's search counts them all and pages through them (the
    pages themselves are compared with the IN list's by the test above); another patient finds none."""
    database = bgz_app.extensions["dvza.db"]
    others_before = _everything(bgz_app, MESKER, "Medication")
    own_before = _everything(bgz_app, HELLEMAN, "Medication")
    with database.engine.begin() as connection:
        statement = connection.execute(select(ResourceRow.pk).where(
            ResourceRow.resource_type == "MedicationStatement", ResourceRow.patient_id == HELLEMAN)).scalars().first()
        assert statement is not None
        ids = [f"many-medication-{number}" for number in range(MANY)]
        connection.execute(insert(ResourceRow), [
            {"resource_type": "Medication", "logical_id": logical_id, "patient_id": None, "version_id": 1,
             "last_updated": "2026-01-01T00:00:00Z", "hidden_by": None,
             "json_text": json.dumps({"resourceType": "Medication", "id": logical_id,
                                      "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00Z"}}),
             "xml_text": f'<Medication xmlns="http://hl7.org/fhir"><id value="{logical_id}"/></Medication>'}
            for logical_id in ids])
        connection.execute(insert(ReferenceIndex), [
            {"resource_pk": statement, "patient_id": HELLEMAN, "resource_type": "MedicationStatement",
             "param": ALL_REFERENCES, "target_type": "Medication", "target_id": logical_id} for logical_id in ids])
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")  # as autovacuum does after a bulk load
    client = bgz_app.test_client()
    first = client.get("/fhir/Medication?_count=500", headers=bearer(HELLEMAN))
    assert first.status_code == 200, first.get_data(as_text=True)[:500]
    bundle = first.get_json()
    assert bundle["total"] == MANY + len(own_before)
    page = {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"}
    assert len(page) == 500 and page <= set(ids) | set(own_before)
    following = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    second = client.get(following[following.index("/fhir/"):], headers=bearer(HELLEMAN)).get_json()
    assert {e["resource"]["id"] for e in second["entry"]} & page == set()
    assert _everything(bgz_app, MESKER, "Medication") == others_before
    read = bgz_app.test_client().get(f"/fhir/Medication/{ids[-1]}", headers=bearer(HELLEMAN))
    assert read.status_code == 200
    assert bgz_app.test_client().get(f"/fhir/Medication/{ids[-1]}", headers=bearer(MESKER)).status_code == 404
