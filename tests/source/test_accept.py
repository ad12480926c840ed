"""The return queue's *accept* takes the same road as the hospital's own data (SourceWriter): the same checks,
all or nothing, kept by ``dvza:return-queue`` (so no source system overwrites what the patient sent), and
audit-logged with the resources that joined the record."""

from __future__ import annotations

import json
import typing as t

import pytest
from sqlalchemy import select

from dvza.models import AuditRecord
from dvza.returnqueue.queue import QueueError
from dvza.source.models import ResourceOwner
from fhir_api import fhirjson
from fhir_api.models import ResourceRow
from tests.source.conftest import Source
from tests.source.conftest import audit_records
from tests.source.conftest import source_config
from tests.support import CERT_SETS
from tests.support import bearer
from tests.support import fixture_text
from tests.support import load_cert_data
from tests.support import make_app
from tests.support import submit_headers

BERGZOON = "selfmeasurement-patient-kwalificatie2"
RECEIVE = CERT_SETS["selfmeasurements"] / "_reference" / "resources-serve-receive"


@pytest.fixture()
def receiving(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, **source_config(QUALIFICATION_MODE=True))
    load_cert_data(app, "selfmeasurements")
    yield app
    app.extensions["dvza.db"].dispose()


def submitted(app: t.Any) -> tuple[str, str]:
    """A self-measurement the patient's PGO sent: (queue item id, Observation id)."""
    body = fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-1-bundle.json")
    created = app.test_client().post("/fhir/", data=body, headers=submit_headers(BERGZOON))
    assert created.status_code == 200, created.get_data(as_text=True)[:500]
    observation = next(e["resource"]["id"] for e in created.get_json()["entry"]
                       if e["resource"]["resourceType"] == "Observation")
    [item] = app.extensions["dvza.queue"].claim("epd-koppeling")
    return item.id, observation


def test_accepted_data_joins_the_record_like_the_hospitals_own(receiving: t.Any) -> None:
    item_id, observation = submitted(receiving)
    queue = receiving.extensions["dvza.queue"]
    assert queue.accept(item_id, "epd-koppeling").status == "accepted"
    client = receiving.test_client()
    assert client.get(f"/fhir/Observation/{observation}", headers=bearer(BERGZOON)).status_code == 200
    with receiving.extensions["dvza.db"].sessionmaker() as session:
        assert session.get(ResourceOwner, ("Observation", observation)).source == "dvza:return-queue"
    [joined] = audit_records(receiving, AuditRecord.event_type == "queue.joined-record")
    assert joined.actor == "staff:epd-koppeling" and joined.patient_id == BERGZOON
    assert f"Observation/{observation}" in joined.resource_ids and joined.detail == item_id
    stored = fhirjson.loads(Source(receiving).call("GET", f"/Observation/{observation}").data)
    assert Source(receiving).put(stored).status_code == 200  # the same again: fine, unchanged
    stored["status"] = "entered-in-error"
    overwrite = Source(receiving).put(stored)
    assert overwrite.status_code == 409 and "dvza:return-queue" in json.dumps(overwrite.get_json())


def test_an_accept_that_no_longer_passes_the_rules_changes_nothing(receiving: t.Any) -> None:
    """Between submission and accept the stored data was damaged (here: a Coding lost its system): the accept
    refuses with the problem, nothing becomes visible and the item stays claimed by the same consumer."""
    item_id, observation = submitted(receiving)
    database = receiving.extensions["dvza.db"]
    with database.sessionmaker() as session:
        row = session.scalar(select(ResourceRow).where(ResourceRow.logical_id == observation))
        damaged = fhirjson.loads(row.json_text)
        damaged["code"]["coding"][0].pop("system")
        row.json_text = fhirjson.dumps(damaged)
        session.commit()
    queue = receiving.extensions["dvza.queue"]
    with pytest.raises(QueueError, match="system and code") as refused:
        queue.accept(item_id, "epd-koppeling")
    assert refused.value.status == 422
    [item] = queue.list()
    assert item.status == "claimed" and item.claimed_by == "epd-koppeling"
    with database.sessionmaker() as session:
        assert session.scalar(select(ResourceRow.hidden_by).where(ResourceRow.logical_id == observation)) == item_id
        assert session.get(ResourceOwner, ("Observation", observation)) is None
    client = receiving.test_client()
    assert client.get(f"/fhir/Observation/{observation}", headers=bearer(BERGZOON)).status_code == 404
