"""Client qualification sessions in the app (issue 15): recording, steps, evaluation, test-server data."""

from __future__ import annotations

import json
import typing as t
from datetime import timedelta

import pytest
from sqlalchemy import select

from dvza.qualification.models import RecordedRequest
from dvza.qualification.sessions import SessionError
from oauth.tokens import ACCESS
from oauth.tokens import store_token
from tests.qualification.conftest import http_into
from tests.qualification.conftest import perfect_client
from tests.support import TOKENS
from tests.support import bearer

pytestmark = pytest.mark.slow


def service(app: t.Any) -> t.Any:
    return app.extensions["dvza.qualification"]


def run_all_steps(app: t.Any, session: t.Any, **kwargs: t.Any) -> t.Any:
    while True:
        perfect_client(app, session, **kwargs)
        if session.step + 1 >= len(json.loads(session.steps)):
            return service(app).end(session.id, actor="test")
        session = service(app).advance(session.id, actor="test")


def test_a_client_doing_what_the_scripts_ask_passes_every_cert_client_script(qual_app: t.Any) -> None:
    session = service(qual_app).start(["bgz", "pdfa", "questionnaires", "selfmeasurements"], actor="test")
    # the questionnaire scripts each create their own Task: Vink (1.1, 1.2) and Boumann (1.5, 1.6) twice
    assert len(json.loads(session.steps)) == 3
    ended = run_all_steps(qual_app, session)
    results, unmatched = service(qual_app).results(ended)
    failed = [(r.label, a.title, a.detail) for r in results for a in r.asserts if a.status == "FAIL"]
    assert failed == [] and ended.failed == 0
    assert len(results) == 2 + 8 + 5 + 10 and ended.passed > 700
    assert unmatched == []


def test_real_access_tokens_of_one_pgo_are_recorded_and_judged(qual_app: t.Any) -> None:
    """A PGO that went through the OAuth flow presents its own access tokens, not the Nictiz ones."""
    database = qual_app.extensions["dvza.db"]
    access = {"medmij-bgz-patient-ts-01": "access-helleman-" + "1" * 20, "medmij-bgz-patient-ts-02":
              "access-mesker-" + "2" * 22}
    with database.sessionmaker() as db:
        for patient, value in access.items():
            store_token(db, value, kind=ACCESS, patient_id=patient, gegevensdiensten=["48"], client_id="pgo.test",
                        lifetime=timedelta(minutes=15))
        db.commit()
    session = service(qual_app).start(["bgz"], actor="test", client_id="PGO.test")
    assert session.client_id == "pgo.test"
    replace = {f"Bearer {TOKENS[p]}": f"Bearer {v}" for p, v in access.items()}
    perfect_client(qual_app, session, tokens=replace)
    # the Nictiz qualification tokens belong to no PGO: with a PGO named they are not this session's traffic
    http_into(qual_app).get("https://dvza.test/fhir/Patient", headers=bearer("medmij-bgz-patient-ts-01"))
    requests_ = service(qual_app).requests(session.id)
    assert len(requests_) == 56 and {r.client_id for r in requests_} == {"pgo.test"}
    ended = service(qual_app).end(session.id, actor="test")
    assert ended.failed == 0 and ended.passed == 344
    stored = " ".join(r.request_headers + (r.request_body or "") for r in requests_)
    assert not any(v in stored for v in access.values()) and "Bearer [access token " in stored


def test_missing_and_wrong_requests_fail_with_what_was_expected(qual_app: t.Any) -> None:
    session = service(qual_app).start(["selfmeasurements"], actor="test")
    perfect_client(qual_app, session, skip={"scenario1-2-retrieve-latest-bodyweight"})
    http = http_into(qual_app)
    headers = bearer("selfmeasurement-patient-kwalificatie1") | {"Accept": "application/fhir+json"}
    # the body weight asked with a patient parameter in the URL (MedMij: never) and without $lastn
    http.get("https://dvza.test/fhir/Observation?code=http://loinc.org|29463-7&patient=x", headers=headers)
    ended = service(qual_app).end(session.id, actor="test")
    results, unmatched = service(qual_app).results(ended)
    weight = next(r for r in results if "latest bodyweight" in r.label)
    assert {a.status for a in weight.asserts} == {"FAIL"}
    detail = weight.asserts[0].detail
    assert detail.startswith("never requested: search Observation/$lastn?code=http://loinc.org|29463-7 with a token "
                             "of patient selfmeasurement-patient-kwalificatie1")
    assert "closest request made:" in detail and "patient=x" in detail
    assert ended.failed == len(weight.asserts)
    assert len(unmatched) == 1


def test_only_the_session_s_persons_while_it_runs(qual_app: t.Any) -> None:
    http = http_into(qual_app)
    session = service(qual_app).start(["selfmeasurements"], actor="test")
    http.get("https://dvza.test/fhir/Patient", headers=bearer("medmij-bgz-patient-ts-01"))  # not a person of it
    http.get("https://dvza.test/fhir/Patient", headers={"Authorization": "Bearer unknown-token"})  # no valid token
    http.get("https://dvza.test/fhir/Patient", headers=bearer("selfmeasurement-patient-kwalificatie2"))
    assert [r.patient_id for r in service(qual_app).requests(session.id)] == ["selfmeasurement-patient-kwalificatie2"]
    service(qual_app).end(session.id, actor="test")
    http.get("https://dvza.test/fhir/Patient", headers=bearer("selfmeasurement-patient-kwalificatie2"))
    assert len(service(qual_app).requests(session.id)) == 1


def test_a_session_does_its_setup_itself_without_recording_it(qual_app: t.Any) -> None:
    session = service(qual_app).start(["questionnaires"], actor="test")
    try:
        work = json.loads(session.work)
        setup = next(v["setup"] for k, v in work.items() if "1-1_2-1_3-1" in k)
        assert [i["assert"]["status"] for i in setup["items"] if "assert" in i] == ["PASS"]
        assert service(qual_app).requests(session.id) == []
        tasks = http_into(qual_app).get("https://dvza.test/fhir/Task?code=http://loinc.org|74468-0&status=requested",
                                        headers=bearer("XXXVINK") | {"Accept": "application/fhir+json"}).json()
        task_id = json.loads(session.variables)[next(k for k in work if "1-1_2-1_3-1" in k)]["task-id"]
        assert [e["resource"]["id"] for e in tasks["entry"]] == [task_id]
    finally:
        service(qual_app).end(session.id, actor="test")
    # the teardown closed the Task the PGO never answered
    tasks = http_into(qual_app).get("https://dvza.test/fhir/Task?code=http://loinc.org|74468-0&status=requested",
                                    headers=bearer("XXXVINK") | {"Accept": "application/fhir+json"}).json()
    assert tasks.get("entry", []) == []


def test_two_sessions_cannot_record_the_same_person(qual_app: t.Any) -> None:
    first = service(qual_app).start(["bgz"], actor="test")
    try:
        with pytest.raises(SessionError, match="Another session"):
            service(qual_app).start(["bgz", "pdfa"], actor="test")
        with pytest.raises(SessionError, match="last step"):
            service(qual_app).advance(first.id, actor="test")
    finally:
        service(qual_app).end(first.id, actor="test")
    with pytest.raises(SessionError, match="has ended"):
        service(qual_app).end(first.id, actor="test")
    with pytest.raises(SessionError, match="unknown set"):
        service(qual_app).start(["nope"], actor="test")


def test_the_broken_document_of_nictiz_s_test_server_is_served_only_during_a_session(qual_app: t.Any) -> None:
    http = http_into(qual_app)

    def documents() -> set[str]:
        bundle = http.get("https://dvza.test/fhir/DocumentReference?status=current",
                          headers=bearer("example-pdfa-kwalificatie1") | {"Accept": "application/fhir+json"}).json()
        return {e["resource"]["id"] for e in bundle.get("entry", [])}

    assert "pdfa-documentreference3" not in documents()
    session = service(qual_app).start(["pdfa"], actor="test")
    assert "pdfa-documentreference3" in documents()
    service(qual_app).end(session.id, actor="test")
    assert "pdfa-documentreference3" not in documents()
    session = service(qual_app).start(["pdfa"], actor="test")  # and again
    assert "pdfa-documentreference3" in documents()
    service(qual_app).end(session.id, actor="test")


def test_recorded_requests_hold_no_token_no_cookie_no_certificate(qual_app: t.Any) -> None:
    session = service(qual_app).start(["selfmeasurements"], actor="test")
    token = TOKENS["selfmeasurement-patient-kwalificatie1"]
    http_into(qual_app).get("https://dvza.test/fhir/Patient", headers={
        "Authorization": f"Bearer {token}", "Cookie": "dvza_session=secret-cookie",
        "X-SSL-Client-Cert": "-----BEGIN CERTIFICATE-----"})
    service(qual_app).end(session.id, actor="test")
    with qual_app.extensions["dvza.db"].sessionmaker() as db:
        rows = list(db.scalars(select(RecordedRequest).where(RecordedRequest.session_id == session.id)))
    assert len(rows) == 1
    headers = json.loads(rows[0].request_headers)
    assert headers["Authorization"].startswith("Bearer [qualification token ") and token not in rows[0].request_headers
    assert "Cookie" not in headers and "X-Ssl-Client-Cert" not in headers
    assert rows[0].response_body and '"resourceType"' in rows[0].response_body


def test_without_qualification_mode_nothing_is_recorded_or_offered(databases: t.Any, tmp_path_factory: t.Any) -> None:
    from tests.support import make_app

    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False)
    try:
        assert "dvza.qualification" not in app.extensions
        assert app.test_client().get("/ziekenhuis/kwalificatie/").status_code == 404
        from dvza.qualification.cli import client_group

        result = app.test_cli_runner().invoke(client_group, ["start", "--set", "bgz"])
        assert result.exit_code != 0 and "qualification mode" in result.output
    finally:
        app.extensions["dvza.db"].dispose()
