"""The hospital's queue page (/ziekenhuis): sign-in, list, detail, claim, accept and reject, in Dutch,
audit-logged; the measurement comes in through the FHIR API as the PGO simulator sends it."""

from __future__ import annotations

import json
import re
import typing as t
from datetime import UTC
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from dvza.models import AuditRecord
from dvza.pgo.content import blood_pressure_bundle
from oauth.directory import StaticDirectory
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
    assert "Ontvangen gegevens" in listing and "Zelfmeting" in listing and "Marieke XXX_Bergzoon" in listing
    assert "Nieuw" in listing
    detail = client.get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True)
    assert "Systolische bloeddruk: 132 mmHg" in detail and "Diastolische bloeddruk: 84 mmHg" in detail
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
    assert "Opgenomen in dossier" in client.get("/ziekenhuis/wachtrij?status=accepted").get_data(as_text=True)
    decided = client.get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True)
    assert "Opgenomen in dossier door anna op " in decided and "web:anna" not in decided
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


# ------------------------------------------------------------------- issue 17: what staff can read
MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
          "november", "december"]


def dutch(moment: str) -> str:
    """An ISO instant as the pages show it: Europe/Amsterdam, "28 november 2026, 14:05"."""
    local = datetime.fromisoformat(moment).astimezone(ZoneInfo("Europe/Amsterdam"))
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"


def test_staff_see_patient_pgo_local_times_and_dutch_names(happ: t.Any) -> None:
    bundle = blood_pressure_bundle(132, 84, when=datetime(2026, 11, 28, 13, 5, tzinfo=UTC))
    response = happ.test_client().post("/fhir", data=json.dumps(bundle), headers=submit_headers(BERGZOON))
    assert response.status_code in (200, 201)
    item = happ.extensions["dvza.queue"].list()[0]
    happ.extensions["oauth"].directory = StaticDirectory(clients={item.client_id: "Demo-PGO"})
    client = sign_in(happ)
    listing = client.get("/ziekenhuis/wachtrij").get_data(as_text=True)
    assert "Marieke XXX_Bergzoon" in listing and "geboren 1 augustus 1964, BSN 999911259" in listing
    assert "<td>Demo-PGO</td>" in listing and dutch(item.received_at) in listing
    detail = client.get(f"/ziekenhuis/wachtrij/{item.id}").get_data(as_text=True)
    assert "<dt>BSN</dt><dd>999911259</dd>" in detail and "<dt>Geboren</dt><dd>1 augustus 1964</dd>" in detail
    assert "<h3>Bloeddruk</h3>" in detail and "132/84 mmHg" in detail
    assert "Gemeten op 28 november 2026, 14:05" in detail  # measurement time, local (UTC+1 in November)
    assert f"<dt>Ontvangen</dt><dd>{dutch(item.received_at)}</dd>" in detail
    assert "Demo-PGO" in detail and "Blood pressure" not in detail and "Systolic" not in detail
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", detail), "raw ISO time on the page"
    assert "style=" not in detail and "<style" not in detail  # strict CSP: styles come from files
    client.post(f"/ziekenhuis/wachtrij/{item.id}", data={"csrf_token": csrf(detail), "action": "claim"})
    claimed = client.get(f"/ziekenhuis/wachtrij/{item.id}").get_data(as_text=True)
    assert re.search(r"In behandeling bij anna \(tot \d+ \w+ \d{4}, \d\d:\d\d\)", claimed)
    assert "web:anna" not in claimed


def test_the_bsn_is_stored_encrypted_and_only_shown_to_staff(happ: t.Any, caplog: pytest.LogCaptureFixture) -> None:
    from cryptography.fernet import Fernet

    from dvza import identity
    from dvza.models import PatientBsn

    with happ.extensions["dvza.db"].sessionmaker() as session:
        stored = session.get(PatientBsn, BERGZOON)
        assert stored is not None and "999911259" not in stored.bsn_encrypted
        cipher = identity.cipher_from_config(happ.config)
        assert cipher is not None and cipher.decrypt(stored.bsn_encrypted) == "999911259"
        # another key (another host, a lost key) does not open it
        new_key = Fernet.generate_key().decode()
        assert identity.BsnCipher([new_key]).decrypt(stored.bsn_encrypted) is None
        assert identity.bsn_for(session, None, BERGZOON) is None
        # key rotation: the new key first, the old one still decrypts
        rotated = identity.BsnCipher([new_key, happ.config["BSN_ENCRYPTION_KEY"]])
        assert rotated.decrypt(stored.bsn_encrypted) == "999911259"
    with caplog.at_level("DEBUG"):
        item_id = send_measurement(happ)
        client = sign_in(happ)
        page = client.get(f"/ziekenhuis/wachtrij/{item_id}")
    assert "999911259" in page.get_data(as_text=True)
    assert "999911259" not in caplog.text
    with happ.extensions["dvza.db"].sessionmaker() as session:
        records = session.scalars(select(AuditRecord)).all()
    assert not any("999911259" in " ".join(str(v) for v in vars(r).values()) for r in records)


def test_an_unknown_bsn_key_shows_no_bsn(databases: t.Any, tmp_path_factory: t.Any) -> None:
    from cryptography.fernet import Fernet

    app = make_app(databases, tmp_path_factory, HOSPITAL_USERS={"anna": generate_password_hash(PASSWORD)})
    load_cert_data(app, "selfmeasurements")
    app.config["BSN_ENCRYPTION_KEY"] = Fernet.generate_key().decode()  # e.g. a host with another key
    item_id = send_measurement(app)
    page = sign_in(app).get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True)
    assert "<dt>BSN</dt><dd>niet bekend</dd>" in page
    app.extensions["dvza.db"].dispose()


@pytest.mark.parametrize(("key", "message"), [("not-a-key", "Fernet key"), (["also", "bad"], "Fernet key")])
def test_a_bad_bsn_key_stops_the_start(databases: t.Any, tmp_path_factory: t.Any, key: t.Any, message: str) -> None:
    from dvza.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        make_app(databases, tmp_path_factory, BSN_ENCRYPTION_KEY=key)


@pytest.fixture()
def qhapp(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, HOSPITAL_USERS={"anna": generate_password_hash(PASSWORD)})
    load_cert_data(app, "questionnaires")
    yield app
    app.extensions["dvza.db"].dispose()


def test_questionnaire_answers_read_as_question_and_answer(qhapp: t.Any) -> None:
    """A Nictiz questionnaire transaction (PHQ-9 of XXX_Vink, Cert scenario 1.2/3.2) submitted through the
    FHIR API is read on the item page as the Questionnaire's questions with the patient's answers."""
    from tests.module2.test_questionnaires import new_task
    from tests.module2.test_questionnaires import phq9_transaction
    from tests.module2.test_questionnaires import serve_task

    client = qhapp.test_client()
    task_id = new_task(qhapp, "Vink-PHQ9")
    task, full_url, base = serve_task(client, "XXXVINK", "json")
    client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | {"status": "accepted"}),
               headers=submit_headers("XXXVINK"))
    bundle = phq9_transaction(task_id, full_url, base)
    authored = bundle["entry"][1]["resource"]["authored"]
    response = client.post("/fhir/", data=json.dumps(bundle), headers=submit_headers("XXXVINK"))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    item = next(i for i in qhapp.extensions["dvza.queue"].list() if i.kind == "questionnaire-answers")
    page = sign_in(qhapp).get(f"/ziekenhuis/wachtrij/{item.id}").get_data(as_text=True)
    assert "<h3>Vragenlijst: Patient Health Questionnaire (PHQ-9)</h3>" in page
    assert f"Ingevuld op {dutch(authored)}" in page
    assert "Eduard XXX_Vink" in page and "<dt>BSN</dt><dd>niet bekend</dd>" in page  # Vink has no BSN here
    pairs = dict(re.findall(r'<dt class="depth-\d">([^<]+)</dt><dd>([^<]*)</dd>', page))
    assert pairs["Weinig interesse of plezier in activiteiten."] == "Meerdere dagen"
    assert pairs["Moeilijk inslapen, moeilijk doorslapen of te veel slapen."] == "Helemaal niet"
    assert len(pairs) == 10
    assert re.search(r'<dt class="group depth-0">Hoe vaak hebt u in de afgelopen 2 weken', page)
    assert "Vragenlijsttaak" in page and "ingevuld" in page  # the Task, completed with the answers


def test_answers_without_a_known_questionnaire_still_show(qhapp: t.Any) -> None:
    from dvza.returnqueue import content

    response = {"resourceType": "QuestionnaireResponse", "questionnaire": {"reference": "http://x.test/Q/1",
                                                                           "display": "Vragenlijst: Onbekend"},
                "authored": "2026-03-03T08:30:00Z",
                "item": [{"linkId": "a", "text": "Rookt u?", "answer": [{"valueBoolean": False}]},
                         {"linkId": "b", "answer": [{"valueInteger": 3}],
                          "item": []},
                         {"linkId": "g", "text": "Groep", "item": [
                             {"linkId": "g1", "text": "Sinds wanneer?", "answer": [{"valueDate": "2020-05-01"}]}]}]}
    with qhapp.extensions["dvza.db"].sessionmaker() as session:
        [entry] = content.entries(session, [response], "Europe/Amsterdam")
    assert entry.title == "Vragenlijst: Onbekend" and entry.when == "3 maart 2026, 09:30"
    assert [(a.question, a.answer, a.depth, a.group) for a in entry.answers] == [
        ("Rookt u?", "Nee", 0, False), ("Vraag b", "3", 0, False), ("Groep", "", 0, True),
        ("Sinds wanneer?", "1 mei 2020", 1, False)]


def test_rejecting_a_questionnaire_item_says_the_task_opens_again(databases: t.Any, tmp_path_factory: t.Any) -> None:
    from tests.module2.test_questionnaires import declined_by_the_patient

    app = make_app(databases, tmp_path_factory, HOSPITAL_USERS={"anna": generate_password_hash(PASSWORD)})
    try:
        load_cert_data(app, "questionnaires", "selfmeasurements")
        declined_by_the_patient(app)
        measurement = send_measurement(app)
        [questionnaire] = [i.id for i in app.extensions["dvza.queue"].list() if i.kind == "task-status"]
        client = sign_in(app)
        for item_id, hinted in ((questionnaire, True), (measurement, False)):
            page = client.get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True)
            client.post(f"/ziekenhuis/wachtrij/{item_id}", data={"csrf_token": csrf(page), "action": "claim"})
            page = client.get(f"/ziekenhuis/wachtrij/{item_id}").get_data(as_text=True)
            assert ('id="reason-hint"' in page and 'aria-describedby="reason-hint"' in page) is hinted
            assert ("opnieuw invullen" in page) is hinted
    finally:
        app.extensions["dvza.db"].dispose()
