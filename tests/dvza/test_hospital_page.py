"""The hospital's queue page (/ziekenhuis): sign-in, list, detail, claim, accept and reject, in Dutch,
audit-logged; the measurement comes in through the FHIR API as the PGO simulator sends it."""

from __future__ import annotations

import json
import re
import typing as t

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from dvza.models import AuditRecord
from dvza.pgo.content import blood_pressure_bundle
from tests.support import load_cert_data
from tests.support import make_app
from tests.support import submit_headers

BERGZOON = "selfmeasurement-patient-kwalificatie2"
PASSWORD = "correct horse battery"


@pytest.fixture()
def happ(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, HOSPITAL_USERS={"anna": generate_password_hash(PASSWORD),
                                                                "bram": generate_password_hash(PASSWORD)})
    load_cert_data(app, "selfmeasurements")
    yield app
    app.extensions["dvza.db"].dispose()


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def sign_in(app: t.Any, name: str = "anna") -> t.Any:
    client = app.test_client()
    page = client.get("/ziekenhuis/inloggen")
    answer = client.post("/ziekenhuis/inloggen", data={"csrf_token": csrf(page.get_data(as_text=True)),
                                                      "name": name, "password": PASSWORD})
    assert answer.status_code == 303
    return client


def send_measurement(app: t.Any, systolic: int = 132, diastolic: int = 84) -> str:
    response = app.test_client().post("/fhir", data=json.dumps(blood_pressure_bundle(systolic, diastolic)),
                                      headers=submit_headers(BERGZOON))
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return str(app.extensions["dvza.queue"].list()[0].id)


def test_the_page_needs_a_sign_in(happ: t.Any) -> None:
    client = happ.test_client()
    assert client.get("/ziekenhuis/wachtrij").headers["Location"].endswith("/ziekenhuis/inloggen")
    page = client.get("/ziekenhuis/inloggen")
    html = page.get_data(as_text=True)
    assert '<html lang="nl">' in html and "<h1>Inloggen voor medewerkers</h1>" in html
    assert '<label for="name">' in html and '<label for="password">' in html
    wrong = client.post("/ziekenhuis/inloggen", data={"csrf_token": csrf(html), "name": "anna", "password": "x"})
    assert wrong.status_code == 401 and "De naam of het wachtwoord klopt niet." in wrong.get_data(as_text=True)
    no_csrf = client.post("/ziekenhuis/inloggen", data={"name": "anna", "password": PASSWORD})
    assert no_csrf.status_code == 400
    with happ.extensions["dvza.db"].sessionmaker() as session:
        assert session.scalars(select(AuditRecord).where(AuditRecord.event_type == "hospital.sign-in")).all()


def test_a_sent_measurement_is_listed_claimed_and_accepted(happ: t.Any) -> None:
    item_id = send_measurement(happ)
    client = sign_in(happ)
    listing = client.get("/ziekenhuis/wachtrij").get_data(as_text=True)
    assert "Ontvangen gegevens" in listing and "Zelfmeting" in listing and BERGZOON in listing and "Nieuw" in listing
    detail = client.get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True)
    assert "Systolic blood pressure: 132 mmHg" in detail and "Diastolic blood pressure: 84 mmHg" in detail
    token = csrf(detail)
    assert client.post(f"/ziekenhuis/wachtrij/{item_id}", data={"action": "claim"}).status_code == 400  # no CSRF
    assert client.post(f"/ziekenhuis/wachtrij/{item_id}", data={"csrf_token": token, "action": "claim"}
                       ).status_code == 303
    claimed = client.get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True)
    assert "In behandeling" in claimed and "Opnemen in dossier" in claimed
    # a colleague cannot decide on it meanwhile
    other = sign_in(happ, "bram")
    page = other.get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True)
    refused = other.post(f"/ziekenhuis/wachtrij/{item_id}", data={"csrf_token": csrf(page), "action": "accept"})
    assert refused.status_code == 409 and "collega" in refused.get_data(as_text=True)
    assert client.post(f"/ziekenhuis/wachtrij/{item_id}", data={"csrf_token": token, "action": "accept"}
                       ).status_code == 303
    assert happ.extensions["dvza.queue"].list()[0].status == "accepted"
    assert "Geaccepteerd" in client.get("/ziekenhuis/wachtrij?status=accepted").get_data(as_text=True)
    with happ.extensions["dvza.db"].sessionmaker() as session:
        events = {r.event_type for r in session.scalars(select(AuditRecord).where(AuditRecord.patient_id == BERGZOON))}
    assert {"queue.show", "queue.claim", "queue.accepted"} <= events


def test_rejecting_needs_a_reason(happ: t.Any) -> None:
    item_id = send_measurement(happ)
    client = sign_in(happ)
    token = csrf(client.get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True))
    client.post(f"/ziekenhuis/wachtrij/{item_id}", data={"csrf_token": token, "action": "claim"})
    empty = client.post(f"/ziekenhuis/wachtrij/{item_id}", data={"csrf_token": token, "action": "reject",
                                                                 "reason": "  "})
    assert empty.status_code == 400 and "Vul een reden in." in empty.get_data(as_text=True)
    assert happ.extensions["dvza.queue"].list()[0].status == "claimed"
    done = client.post(f"/ziekenhuis/wachtrij/{item_id}", data={"csrf_token": token, "action": "reject",
                                                                "reason": "Meting hoort bij een ander"})
    assert done.status_code == 303
    item = happ.extensions["dvza.queue"].list()[0]
    assert item.status == "rejected" and item.reason == "Meting hoort bij een ander"


def test_signing_out_ends_access(happ: t.Any) -> None:
    client = sign_in(happ)
    token = csrf(client.get("/ziekenhuis/wachtrij").get_data(as_text=True))
    assert client.post("/ziekenhuis/uitloggen", data={"csrf_token": token}).status_code == 303
    assert client.get("/ziekenhuis/wachtrij").status_code == 303
