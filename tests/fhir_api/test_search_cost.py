"""A search costs what it returns, not what the patient's record or the database holds (issue 12).

Measured without a clock, so the machine's load cannot make it pass or fail: the number of SQLite virtual
machine instructions the request's statements execute (``sqlite3.Connection.set_progress_handler``), first
on the Cert data alone, then after 1 500 submissions of another patient that await review (each a distinct
``hidden_by``, which once made SQLite's planner take ``hidden_by IS NULL`` for a selective lookup) and 1 500
more Observations in that patient's record, then
after 1 500 more weight Observations in the patient's own record (which once made ``$lastn`` read and sort
all of them). ``ANALYZE`` runs after each load, as a maintained database has statistics. PostgreSQL's planner
is measured by ``make bench`` (its growth table); this file needs SQLite.
"""

from __future__ import annotations

import copy
import typing as t
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy import select

from dvza.devtools.bench.urls import BGZ_URLS
from dvza.devtools.bench.urls import GROWTH_QUERIES
from fhir_api import fhirjson
from fhir_api import view
from fhir_api.models import ResourceRow
from fhir_api.store import ResourceStore
from tests.support import bearer
from tests.support import load_cert_data
from tests.support import make_app

HELLEMAN = "medmij-bgz-patient-ts-01"
MESKER = "medmij-bgz-patient-ts-02"
EXTRA = 1500
#: VM instructions between two calls of the progress handler
UNIT = 50


@pytest.fixture()
def sqlite_app(databases: t.Any, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    if databases.is_postgresql:
        pytest.skip("counts SQLite's virtual machine instructions; make bench measures PostgreSQL")
    application = make_app(databases, tmp_path_factory)
    load_cert_data(application, "bgz")
    yield application
    application.extensions["dvza.db"].dispose()


def _weights(app: t.Any, count: int, *, patient: str = HELLEMAN, hidden: bool = False) -> None:
    """``count`` more body weights, older than the Cert data's; ``hidden``: each one a submission awaiting review."""
    database = app.extensions["dvza.db"]
    with app.app_context(), database.sessionmaker() as session:
        store = ResourceStore(session)
        template = fhirjson.loads(session.scalar(select(ResourceRow.json_text).where(
            ResourceRow.resource_type == "Observation", ResourceRow.logical_id == "medmij-bgz-bodyweight-ts-01")))
        template.pop("text", None)
        template["meta"] = {"profile": template["meta"]["profile"]}
        template["subject"]["reference"] = f"Patient/{patient}"
        template, _ = store.prepare(template)
        start = datetime(2001, 1, 1, tzinfo=UTC)
        for number in range(count):
            resource = copy.deepcopy(template)
            resource["id"] = f"weight-{patient[-2:]}-{uuid.uuid4().hex[:12]}"
            resource["effectiveDateTime"] = (start + timedelta(hours=number)).isoformat()
            store.put(resource, prepared=True, hidden_by=str(uuid.uuid4()) if hidden else None)
        session.commit()
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")


def _instructions(app: t.Any, urls: t.Mapping[str, str], *, patient: str = HELLEMAN,
                  found: dict[str, str] | None = None) -> dict[str, int]:
    """VM instructions (in units of ``UNIT``) of each search, as ``patient``'s PGO; ``found``: each answer's
    resources (``Type/id``, sorted) are added to it."""
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0  # go on

    database = app.extensions["dvza.db"]
    listener = lambda dbapi, _record: dbapi.set_progress_handler(count, UNIT)  # noqa: E731
    event.listen(Engine, "connect", listener)  # every engine: the read path has a pool of its own (dvza.db)
    database.dispose()  # every connection from now on counts
    try:
        client = app.test_client()
        headers = {**bearer(patient), "Accept": "application/fhir+json"}
        counts = {}
        for name, url in urls.items():
            assert client.get("/fhir/" + url, headers=headers).status_code == 200, url  # compiles, warms caches
            counted[0] = 0
            response = client.get("/fhir/" + url, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            counts[name] = counted[0]
            assert counted[0] > 0, name  # the counter sees the statements of the read path
            if found is not None:
                body = response.get_json()
                bundle = body["resourceType"] == "Bundle"
                resources = [e["resource"] for e in body.get("entry", [])] if bundle else [body]
                found[name] = " ".join(sorted(f"{r['resourceType']}/{r['id']}" for r in resources))
        return counts
    finally:
        event.remove(Engine, "connect", listener)
        database.dispose()


#: every BgZ search, and the growth table's: none may slow down because of another patient's data
EVERY_SEARCH = {**{url: url for url in BGZ_URLS}, **GROWTH_QUERIES}
#: what does not depend on the number of weight Observations: the growth table's searches and a type without
ON_OWN_GROWTH = {**GROWTH_QUERIES, "Condition": "Condition", "NutritionOrder": "NutritionOrder"}


def test_search_cost_follows_what_it_returns(sqlite_app: t.Any) -> None:
    alone = _instructions(sqlite_app, EVERY_SEARCH)
    _weights(sqlite_app, EXTRA, patient=MESKER, hidden=True)  # another patient's submissions, awaiting review
    _weights(sqlite_app, EXTRA, patient=MESKER)  # and that patient's own record, larger than this one's
    with_others = _instructions(sqlite_app, EVERY_SEARCH)
    for name in EVERY_SEARCH:
        assert with_others[name] <= 2 * alone[name] + 20, (name, alone[name], with_others[name])
    _weights(sqlite_app, EXTRA)  # the patient's own record grows
    grown = _instructions(sqlite_app, ON_OWN_GROWTH)
    for name in ON_OWN_GROWTH:
        assert grown[name] <= 2 * alone[name] + 20, (name, alone[name], grown[name])


BALTUS = "example-pdfa-kwalificatie1"
#: (patient, search) whose visibility runs through references: shared types, documents, a reverse include
THROUGH_REFERENCES = {
    "Binary": (BALTUS, "Binary"),
    "DocumentReference include": (BALTUS, "DocumentReference?_include=DocumentReference:subject"),
    "Medication": (HELLEMAN, "Medication"),
    "Device": (HELLEMAN, "Device"),
    "Practitioner revinclude": (HELLEMAN, "Practitioner?_revinclude=Observation:performer"),
    "Binary read": (BALTUS, "Binary/pdfa-binary1"),
    "Medication read": (HELLEMAN, "Medication/229709-2-16-840-1-113883-2-4-4-7"),
    "Device read": (HELLEMAN, "Device/medmij-bgz-device-ts-01"),
    "Practitioner read": (HELLEMAN, "Practitioner/medmij-bgz-practitioner-ts-01"),
}


def _copies(app: t.Any, resource_type: str, logical_id: str, count: int,
            change: t.Callable[[dict[str, t.Any], int], None]) -> None:
    """``count`` copies of a stored resource under new ids, each changed by ``change(copy, number)``."""
    database = app.extensions["dvza.db"]
    with app.app_context(), database.sessionmaker() as session:
        store = ResourceStore(session)
        template = store.load(resource_type, logical_id)
        assert template is not None, (resource_type, logical_id)
        template.pop("text", None)
        template["meta"] = {k: v for k, v in template.get("meta", {}).items() if k == "profile"}
        for number in range(count):
            resource = copy.deepcopy(template)
            resource["id"] = f"copy-{uuid.uuid4().hex[:16]}"
            change(resource, number)
            store.put(resource)
        session.commit()
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")


def _with_both_bindings(app: t.Any, searches: t.Mapping[str, tuple[str, str]], monkeypatch: pytest.MonkeyPatch,
                        found: dict[str, str]) -> dict[str, int]:
    """:func:`_instructions` of each search (name → patient, url) with reached ids bound as usual, then again, under
    ``"<name> (one JSON bind)"``, with every list bound as one JSON array (``LONGEST_ID_LIST`` 0)."""
    counts = {}
    for longest in (view.LONGEST_ID_LIST, 0):
        monkeypatch.setattr(view, "LONGEST_ID_LIST", longest)
        for name, (patient, url) in searches.items():
            key = name if longest else f"{name} (one JSON bind)"
            counts[key] = _instructions(app, {key: url}, patient=patient, found=found)[key]
    monkeypatch.undo()
    return counts


def test_reference_visibility_does_not_grow_with_other_patients_data(databases: t.Any,
                                                                    tmp_path_factory: pytest.TempPathFactory,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with the reached ids bound as one JSON array (``LONGEST_ID_LIST`` 0), which a record referring to
    many shared resources of one type takes: written ``… IN (…) = 1`` it once scanned every row of the type."""
    if databases.is_postgresql:
        pytest.skip("counts SQLite's virtual machine instructions; make bench measures PostgreSQL")
    app = make_app(databases, tmp_path_factory)
    try:
        load_cert_data(app, "bgz", "pdfa")
        def measure(found: dict[str, str]) -> dict[str, int]:
            return _with_both_bindings(app, THROUGH_REFERENCES, monkeypatch, found)

        before: dict[str, str] = {}
        alone = measure(before)
        assert all(before.values()), before  # each finds something
        subject = lambda resource, _n: resource["subject"].update(reference=f"Patient/{MESKER}")  # noqa: E731
        owner = lambda resource, _n: resource["patient"].update(reference=f"Patient/{MESKER}")  # noqa: E731
        # another patient's data: Observations by the same performer, Devices of their own
        _copies(app, "Observation", "medmij-bgz-bodyweight-ts-01", EXTRA, subject)
        _copies(app, "Device", "medmij-bgz-device-ts-02", EXTRA, owner)
        # shared rows no one refers to: products and documents
        _copies(app, "Medication", "229709-2-16-840-1-113883-2-4-4-7", EXTRA, lambda _r, _n: None)
        _copies(app, "Binary", "pdfa-binary1", EXTRA // 5, lambda _r, _n: None)  # 100 kB each
        after: dict[str, str] = {}
        grown = measure(after)
        assert after == before  # none of it is this patient's, or reachable from their data
        for name in alone:
            assert grown[name] <= 2 * alone[name] + 20, (name, alone[name], grown[name])
    finally:
        app.extensions["dvza.db"].dispose()


def test_a_patients_devices_do_not_cost_more_with_other_patients_devices(databases: t.Any,
                                                                        tmp_path_factory: pytest.TempPathFactory,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Device may be the patient's own or shared: its search once ORed the two, and with the statistics of the
    Cert data plus another patient's Devices SQLite read every Device of every patient (71 → 290 units, with
    the IN list and with the JSON bind alike). Now the union of two indexed lookups."""
    if databases.is_postgresql:
        pytest.skip("counts SQLite's virtual machine instructions; make bench measures PostgreSQL")
    app = make_app(databases, tmp_path_factory)
    try:
        load_cert_data(app, "bgz")
        searches = {"Device": (HELLEMAN, "Device"),
                    "Device by type": (HELLEMAN, "Device?type=http://snomed.info/sct|6012004")}

        def measure(found: dict[str, str]) -> dict[str, int]:
            return _with_both_bindings(app, searches, monkeypatch, found)

        before: dict[str, str] = {}
        alone = measure(before)
        assert before["Device"], before
        owner = lambda resource, _n: resource["patient"].update(reference=f"Patient/{MESKER}")  # noqa: E731
        _copies(app, "Device", "medmij-bgz-device-ts-02", EXTRA, owner)
        after: dict[str, str] = {}
        grown = measure(after)
        assert after == before
        for name in alone:
            assert grown[name] <= 2 * alone[name] + 20, (name, alone[name], grown[name])
    finally:
        app.extensions["dvza.db"].dispose()
