"""The staff pages (/ziekenhuis/kwalificatie) and ``dvza conformance client`` for qualification sessions."""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from dvza.models import AuditRecord
from dvza.qualification.cli import client_group
from tests.qualification.conftest import http_into
from tests.qualification.conftest import perfect_client
from tests.support import TOKENS
from tests.support import bearer

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


@pytest.fixture()
def staff(qual_app: t.Any) -> t.Iterator[t.Any]:
    qual_app.config["HOSPITAL_USERS"] = {"anna": generate_password_hash(PASSWORD)}
    client = qual_app.test_client()
    page = client.get("/ziekenhuis/inloggen").get_data(as_text=True)
    answer = client.post("/ziekenhuis/inloggen", data={"csrf_token": csrf(page), "name": "anna",
                                                      "password": PASSWORD})
    assert answer.status_code == 303
    yield client
    for session in qual_app.extensions["dvza.qualification"].list():
        if session.status == "active":
            qual_app.extensions["dvza.qualification"].end(session.id, actor="test")
    qual_app.config["HOSPITAL_USERS"] = {}


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_the_pages_need_a_staff_sign_in(qual_app: t.Any) -> None:
    client = qual_app.test_client()
    for path in ("/ziekenhuis/kwalificatie/", "/ziekenhuis/kwalificatie/abc/rapport"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"].endswith("/ziekenhuis/inloggen")
    assert client.post("/ziekenhuis/kwalificatie/", data={"set": "bgz"}).status_code == 303


def test_staff_run_a_session_from_start_to_report(qual_app: t.Any, staff: t.Any) -> None:
    page = staff.get("/ziekenhuis/kwalificatie/").get_data(as_text=True)
    assert '<html lang="nl">' in page and page.count("<h1>") == 1 and "Nieuwe sessie" in page
    assert staff.post("/ziekenhuis/kwalificatie/", data={"set": "selfmeasurements"}).status_code == 400  # no CSRF
    started = staff.post("/ziekenhuis/kwalificatie/", data={"csrf_token": csrf(page), "set": "selfmeasurements"})
    assert started.status_code == 303
    session_url = started.headers["Location"]
    html = staff.get(session_url).get_data(as_text=True)
    assert "Stap 1 van 1" in html and "XXX_Bourgonjee (BSN 999911302)" in html and "XXX_Bergzoon" in html
    session = qual_app.extensions["dvza.qualification"].list()[0]
    perfect_client(qual_app, session, skip={"scenario1-7-retrieve-all-vitalsign-observation"})
    html = staff.get(session_url).get_data(as_text=True)
    assert "Opgeslagen verzoeken (9)" in html and "kwalificatietoken" in html
    assert TOKENS["selfmeasurement-patient-kwalificatie1"] not in html
    detail = staff.get(f"{session_url}/verzoek/1").get_data(as_text=True)
    with qual_app.extensions["dvza.db"].sessionmaker() as db:
        viewed = db.scalars(select(AuditRecord).where(AuditRecord.event_type == "qualification.request-viewed")).all()
    assert viewed and viewed[-1].actor == "staff:anna" and viewed[-1].patient_id.startswith("selfmeasurement-patient")
    assert "Bearer [qualification token" in detail and TOKENS["selfmeasurement-patient-kwalificatie1"] not in detail
    ended = staff.post(session_url, data={"csrf_token": csrf(html), "action": "end"})
    assert ended.status_code == 303 and ended.headers["Location"].endswith("/rapport")
    report = staff.get(ended.headers["Location"]).get_data(as_text=True)
    assert "6 fout" in report and "never requested: search Observation?category=vital-signs" in report
    assert "Bekeken verzoek" not in report  # nothing failed on a request that was made
    junit = staff.get(ended.headers["Location"] + ".xml")
    assert junit.status_code == 200 and b"<testsuites" in junit.data and b'failures="6"' in junit.data
    text = staff.get(ended.headers["Location"] + ".txt").get_data(as_text=True)
    assert text.rstrip().endswith("101 passed, 6 failed")
    assert staff.get("/ziekenhuis/kwalificatie/onbekend").status_code == 404


def test_a_refused_start_is_explained_in_dutch(qual_app: t.Any, staff: t.Any) -> None:
    page = staff.get("/ziekenhuis/kwalificatie/").get_data(as_text=True)
    assert staff.post("/ziekenhuis/kwalificatie/", data={"csrf_token": csrf(page), "set": "bgz"}).status_code == 303
    again = staff.post("/ziekenhuis/kwalificatie/", data={"csrf_token": csrf(page), "set": "bgz"})
    assert again.status_code == 409 and "Er loopt al een sessie" in again.get_data(as_text=True)
    nothing = staff.post("/ziekenhuis/kwalificatie/", data={"csrf_token": csrf(page)})
    assert nothing.status_code == 400 and "Kies minstens één onderdeel." in nothing.get_data(as_text=True)


def test_the_cli_starts_steps_and_ends_a_session(qual_app: t.Any, tmp_path: Path) -> None:
    runner = qual_app.test_cli_runner()
    started = runner.invoke(client_group, ["start", "--set", "questionnaires"])
    assert started.exit_code == 0, started.output
    session_id = started.output.split()[1]
    assert "step 1 of 3" in started.output and "XXX_Vink" in started.output
    session = qual_app.extensions["dvza.qualification"].find(session_id)
    perfect_client(qual_app, session)
    status = runner.invoke(client_group, ["status", session_id[:8]])
    assert "4 requests recorded so far" in status.output and f"next (then end) {session_id[:8]}" in status.output
    stepped = runner.invoke(client_group, ["next", session_id[:8]])
    assert stepped.exit_code == 0 and "step 2 of 3" in stepped.output and "XXX_Repscher" in stepped.output
    # step 2 is left undone: its scripts fail with "never requested"
    junit = tmp_path / "client.xml"
    ended = runner.invoke(client_group, ["end", session_id[:8], "--junit", str(junit)])
    assert ended.exit_code == 1
    assert "never requested: search Task?code=http://loinc.org|74468-0,status=requested" not in ended.output
    assert "never requested: search Task?code=http://loinc.org|74468-0&status=requested with a token of patient " \
           "XXXREPSCHER" in ended.output
    assert re.fullmatch(r"\d+ passed, [1-9]\d* failed", ended.output.rstrip().splitlines()[-1])
    assert junit.read_bytes().startswith(b"<?xml")
    again = runner.invoke(client_group, ["report", session_id])
    assert again.exit_code == 1 and "PASS Scenario 1.1, 2.1, 3.1" in again.output
    listed = runner.invoke(client_group, ["list"])
    assert session_id in listed.output and "ended" in listed.output


def test_cli_errors_are_clear(qual_app: t.Any) -> None:
    runner = qual_app.test_cli_runner()
    assert "No session" in runner.invoke(client_group, ["status", "nothing-like-this"]).output
    http_into(qual_app).get("https://dvza.test/fhir/Patient", headers=bearer("XXXVINK"))
    bad = runner.invoke(client_group, ["start", "--set", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output
