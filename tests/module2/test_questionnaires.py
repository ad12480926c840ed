"""Vragenlijsten 2.x (fhir-content.md §4): serve the requested Task, accept/reject/fail it, receive the
answers in a transaction, and refuse what does not fit — for all six Cert scenarios, JSON and XML."""

from __future__ import annotations

import json
import typing as t
from datetime import date

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from dvza.devtools import testdata
from dvza.returnqueue.models import QueueItem
from fhir_api import fhirjson
from fhir_api import fhirxml
from fhir_api.models import ResourceRow
from tests.fhir_api.searchset_rules import violations
from tests.support import CERT_SETS
from tests.support import bearer
from tests.support import fixture_text
from tests.support import load_cert_data
from tests.support import submit_headers

SPECIFIC = CERT_SETS["questionnaires"] / "_reference" / "resources" / "resources-specific"
TASKS = "medmij-questionnaires-vl-QuestionnaireProvisioningTask-XXX_{}-REQUESTED.xml"
TRANSACTIONS = "medmij-questionnaires-vl-Transaction-XXX_{}.{}"

#: scenario -> (patient, task template, PUT status, transaction fixture or None) — per the Cert scripts
SCENARIOS = {
    "1.1/3.1": ("XXXVINK", "Vink-Intake", "accepted", "Vink-Intake"),
    "1.2/3.2": ("XXXVINK", "Vink-PHQ9", "accepted", "Vink-PHQ9"),
    "1.3/3.3": ("XXXREPSCHER", "Repscher-Intake", "accepted", "Repscher-Intake"),
    "1.4/3.4": ("XXXREPSCHER", "Repscher-PHQ9", None, "Repscher-PHQ9-noQR"),
    "1.5/2.5": ("XXXBOUMANN", "Boumann-invalid", "failed", None),
    "1.6/2.6": ("XXXBOUMANN", "Boumann-PHQ9E", "rejected", None),
}
MIME = {"json": "application/fhir+json", "xml": "application/fhir+xml"}


@pytest.fixture()
def qapp(app: t.Any) -> t.Any:
    load_cert_data(app, "questionnaires")
    return app


def new_task(app: t.Any, template: str) -> str:
    with app.extensions["dvza.db"].sessionmaker() as session:
        [reference] = testdata.create_tasks(session, [SPECIFIC / TASKS.format(template)], today=date.today())
    return reference.split("/")[1]


def declined_by_the_patient(app: t.Any) -> str:
    """A new Boumann Task the PGO then sets to ``rejected`` (the patient declines it: a task-status item)."""
    client = app.test_client()
    task_id = new_task(app, "Boumann-PHQ9E")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXBOUMANN")).get_json()
    response = client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | {"status": "rejected"}),
                          headers=submit_headers("XXXBOUMANN"))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return task_id


def parse(response: t.Any, fmt: str) -> dict[str, t.Any]:
    return fhirxml.parse_xml(response.data) if fmt == "xml" else response.get_json()


def serialise(resource: dict[str, t.Any], fmt: str) -> str:
    return fhirxml.render_xml(resource) if fmt == "xml" else fhirjson.dumps(resource)


def serve_task(client: t.Any, patient: str, fmt: str) -> tuple[dict[str, t.Any], str, str]:
    url = "/fhir/Task?code=http%3A%2F%2Floinc.org%7C74468-0&status=requested"
    response = client.get(url, headers=bearer(patient) | {"Accept": MIME[fmt]})
    assert response.status_code == 200
    bundle = parse(response, fmt)
    assert violations(bundle, "code=http://loinc.org|74468-0&status=requested") == []
    [entry] = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    server_base = bundle["link"][0]["url"].split("Task")[0]
    return entry["resource"], entry["fullUrl"], server_base


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_cert_scenarios(qapp: t.Any, scenario: str, fmt: str) -> None:
    patient, template, new_status, transaction = SCENARIOS[scenario]
    client = qapp.test_client()
    task_id = new_task(qapp, template)
    task, full_url, server_base = serve_task(client, patient, fmt)
    assert task["id"] == task_id and task["status"] == "requested"
    if new_status:
        changed = {k: v for k, v in task.items() if k != "text"} | {"status": new_status}
        response = client.put(f"/fhir/Task/{task_id}", data=serialise(changed, fmt),
                              headers=submit_headers(patient, fmt))
        assert response.status_code in (200, 201), response.get_data(as_text=True)[:600]
        assert parse(response, fmt)["status"] == new_status
    if transaction is None:
        return
    body = fixture_text(SPECIFIC / TRANSACTIONS.format(transaction, fmt), **{
        "task-id": task_id, "task-fullurl": full_url, "server-base": server_base})
    response = client.post("/fhir/", data=body, headers=submit_headers(patient, fmt))
    if transaction.endswith("noQR"):
        assert response.status_code not in (200, 201)
        assert parse(response, fmt)["resourceType"] == "OperationOutcome"
        assert client.get(f"/fhir/Task/{task_id}", headers=bearer(patient)).get_json()["status"] == "requested"
        return
    assert response.status_code == 200, response.get_data(as_text=True)[:1500]
    result = parse(response, fmt)
    assert result["type"] == "transaction-response"
    statuses = {e["response"]["location"].split("/")[0]: e["response"]["status"] for e in result["entry"]}
    assert statuses["Task"].startswith("200") and statuses["QuestionnaireResponse"].startswith("201")
    stored_task = client.get(f"/fhir/Task/{task_id}", headers=bearer(patient)).get_json()
    answers_ref = next(e["response"]["location"] for e in result["entry"]
                       if e["response"]["location"].startswith("QuestionnaireResponse"))
    assert stored_task["status"] == "completed"
    assert stored_task["output"][0]["valueReference"]["reference"] == "/".join(answers_ref.split("/")[:2])
    answers = next(e["resource"] for e in result["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse")
    assert answers["subject"]["reference"] == f"Patient/{patient}"


@pytest.fixture()
def accepted_vink(qapp: t.Any) -> tuple[t.Any, str, str, str]:
    client = qapp.test_client()
    task_id = new_task(qapp, "Vink-PHQ9")
    task, full_url, base = serve_task(client, "XXXVINK", "json")
    client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | {"status": "accepted"}),
               headers=submit_headers("XXXVINK"))
    return qapp, task_id, full_url, base


def counts(app: t.Any) -> tuple[int, int]:
    with app.extensions["dvza.db"].sessionmaker() as session:
        return (session.scalar(select(func.count()).select_from(ResourceRow)),
                session.scalar(select(func.count()).select_from(QueueItem)))


def phq9_transaction(task_id: str, full_url: str, base: str) -> dict[str, t.Any]:
    return json.loads(fixture_text(SPECIFIC / TRANSACTIONS.format("Vink-PHQ9", "json"), **{
        "task-id": task_id, "task-fullurl": full_url, "server-base": base}))


def answers_of(bundle: dict[str, t.Any]) -> dict[str, t.Any]:
    return bundle["entry"][1]["resource"]


REFUSALS: dict[str, tuple[t.Callable[[dict[str, t.Any]], None], str]] = {
    "unknown linkId": (lambda b: answers_of(b)["item"][0]["item"][0].update(linkId="99"), "not a question"),
    "answer not an option": (lambda b: answers_of(b)["item"][0]["item"][0]["answer"][0]["valueCoding"].update(
        code="XYZ"), "not one of the options"),
    "wrong answer type": (lambda b: answers_of(b)["item"][0]["item"][0]["answer"][0].update(
        valueString="x") or answers_of(b)["item"][0]["item"][0]["answer"][0].pop("valueCoding"), "choice question"),
    "required question missing": (lambda b: answers_of(b)["item"][0]["item"].pop(0), "required question"),
    "another questionnaire": (lambda b: answers_of(b)["questionnaire"].update(
        reference="http://examplerepository.nl/Questionnaire/intake-nieuwe-patient--20200327"),
        "not the Questionnaire"),
    "unknown questionnaire": (lambda b: answers_of(b)["questionnaire"].update(reference="http://x.test/Q/1"),
                              "known here"),
    "task owner changed": (lambda b: b["entry"][0]["resource"]["owner"].update(reference="Patient/XXXREPSCHER"),
                           "owner"),
    "answers not completed": (lambda b: answers_of(b).update(status="in-progress"), "completed"),
    "task not referring to the answers": (lambda b: b["entry"][0]["resource"].pop("output"), "output"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_answers_change_nothing(accepted_vink: t.Any, case: str) -> None:
    app, task_id, full_url, base = accepted_vink
    bundle = phq9_transaction(task_id, full_url, base)
    mutate, message = REFUSALS[case]
    mutate(bundle)
    before = counts(app)
    response = app.test_client().post("/fhir/", data=json.dumps(bundle), headers=submit_headers("XXXVINK"))
    assert response.status_code in (400, 403, 404, 422), response.get_data(as_text=True)[:400]
    assert message in response.get_data(as_text=True)
    assert counts(app) == before
    task = app.test_client().get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    assert task["status"] == "accepted"


def test_answers_to_another_patients_task_are_refused(accepted_vink: t.Any) -> None:
    app, task_id, full_url, base = accepted_vink
    bundle = phq9_transaction(task_id, full_url, base)
    before = counts(app)
    response = app.test_client().post("/fhir/", data=json.dumps(bundle), headers=submit_headers("XXXREPSCHER"))
    assert response.status_code in (404, 422)
    assert counts(app) == before
    assert app.test_client().get(f"/fhir/Task/{task_id}", headers=bearer("XXXREPSCHER")).status_code == 404


@pytest.mark.parametrize(("start", "new", "allowed"), [
    ("requested", "accepted", True), ("requested", "rejected", True), ("requested", "failed", True),
    ("requested", "completed", False), ("requested", "cancelled", False), ("requested", "draft", False),
])
def test_task_status_transitions(qapp: t.Any, start: str, new: str, allowed: bool) -> None:
    client = qapp.test_client()
    task_id = new_task(qapp, "Vink-Intake")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    response = client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | {"status": new}),
                          headers=submit_headers("XXXVINK"))
    assert (response.status_code == 200) is allowed, response.get_data(as_text=True)[:300]
    if not allowed:
        assert response.status_code == 422
        assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()["status"] == start


def test_task_changes_other_than_status_are_refused_or_ignored(qapp: t.Any) -> None:
    client = qapp.test_client()
    task_id = new_task(qapp, "Vink-Intake")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    tampered = task | {"status": "accepted", "code": {"coding": [{"system": "http://loinc.org", "code": "1-8",
                                                                 "display": "x"}]}}
    assert client.put(f"/fhir/Task/{task_id}", data=json.dumps(tampered),
                      headers=submit_headers("XXXVINK")).status_code == 422
    reworded = task | {"status": "accepted", "description": "iets anders"}
    response = client.put(f"/fhir/Task/{task_id}", data=json.dumps(reworded), headers=submit_headers("XXXVINK"))
    assert response.status_code == 200
    assert response.get_json()["description"] == task["description"]


def test_a_task_update_may_refer_only_to_the_patients_own_data(qapp: t.Any) -> None:
    """What the PGO may set on a Task (output, note) may not point at another patient's data, nor at a shared
    resource the Task does not already name: no display of it comes back, nothing is stored, and no other
    patient's document changes hands (a Binary claimed by two patients would be served to neither)."""
    load_cert_data(qapp, "pdfa")
    client = qapp.test_client()
    task_id = new_task(qapp, "Vink-Intake")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    other = client.get("/fhir/Patient", headers=bearer("XXXREPSCHER")).get_json()["entry"][0]["resource"]
    document_owner = "example-pdfa-kwalificatie1"
    raw = {"Accept": "application/pdf"}
    assert client.get("/fhir/Binary/pdfa-binary1", headers=bearer(document_owner) | raw).status_code == 200
    for target in (f"Patient/{other['id']}", "Binary/pdfa-binary1"):
        for change in ({"output": [{"type": {"text": "uitkomst"}, "valueReference": {"reference": target}}]},
                       {"note": [{"authorReference": {"reference": target}, "text": "notitie"}]}):
            response = client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | {"status": "accepted"} | change),
                                  headers=submit_headers("XXXVINK"))
            assert response.status_code == 422, (target, response.get_data(as_text=True)[:300])
            assert other["name"][0]["family"] not in response.get_data(as_text=True)
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()["status"] == "requested"
    assert client.get("/fhir/Binary/pdfa-binary1", headers=bearer(document_owner) | raw).status_code == 200
    own_patient = client.get("/fhir/Patient", headers=bearer("XXXVINK")).get_json()["entry"][0]["resource"]["id"]
    own = {"output": [{"type": {"text": "uitkomst"}, "valueReference": {"reference": f"Patient/{own_patient}"}}]}
    assert client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | {"status": "accepted"} | own),
                      headers=submit_headers("XXXVINK")).status_code == 200


@pytest.mark.parametrize("change", [{"status": ["accepted"]}, {"status": {"x": 1}}, {"code": "x"},
                                    {"code": {"coding": ["x"]}}, {"requester": [{}]}, {"input": "x"},
                                    {"input": ["x"]}])
def test_a_malformed_task_update_is_refused_not_failed(qapp: t.Any, change: dict[str, t.Any]) -> None:
    client = qapp.test_client()
    task_id = new_task(qapp, "Vink-Intake")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    response = client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | change), headers=submit_headers("XXXVINK"))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json() == task


def test_a_task_changed_meanwhile_is_a_conflict(qapp: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another request stores a new version of the Task after this update read it (here: while the PGO's change is
    applied): the update is written only on the version it read, so the later one gets 409, not an internal error,
    and the version stored meanwhile stays (no lost update, http.html#concurrency)."""
    from fhir_api import questionnaires

    client = qapp.test_client()
    task_id = new_task(qapp, "Vink-Intake")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    apply_pgo_change = questionnaires.apply_pgo_change

    def meanwhile(*args: t.Any) -> t.Any:
        with qapp.extensions["dvza.db"].engine.begin() as connection:  # another writer, committed
            connection.execute(update(ResourceRow).where(ResourceRow.resource_type == "Task",
                                                         ResourceRow.logical_id == task_id)
                               .values(version_id=ResourceRow.version_id + 1))
        return apply_pgo_change(*args)

    monkeypatch.setattr(questionnaires, "apply_pgo_change", meanwhile)
    response = client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | {"status": "accepted"}),
                          headers=submit_headers("XXXVINK"))
    assert response.status_code == 409, response.get_data(as_text=True)[:300]
    monkeypatch.undo()
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()["status"] == "requested"
    with qapp.extensions["dvza.db"].sessionmaker() as session:
        assert session.scalar(select(ResourceRow.version_id).where(ResourceRow.resource_type == "Task",
                                                                   ResourceRow.logical_id == task_id)) == 2


def test_task_status_changes_are_queued_and_visible_at_once(qapp: t.Any) -> None:
    client = qapp.test_client()
    task_id = declined_by_the_patient(qapp)
    [item] = qapp.extensions["dvza.queue"].list(status="new")
    assert item.kind == "task-status" and item.resources == [f"Task/{task_id}"] and "rejected" in item.summary
    open_tasks = client.get("/fhir/Task?status=requested", headers=bearer("XXXBOUMANN")).get_json()
    assert open_tasks["total"] == 0


def test_the_answers_wait_for_the_hospital(accepted_vink: t.Any) -> None:
    app, task_id, full_url, base = accepted_vink
    client = app.test_client()
    result = client.post("/fhir/", data=json.dumps(phq9_transaction(task_id, full_url, base)),
                         headers=submit_headers("XXXVINK")).get_json()
    answers_id = answers_of(result)["id"]
    assert client.get(f"/fhir/QuestionnaireResponse/{answers_id}", headers=bearer("XXXVINK")).status_code == 404
    queue = app.extensions["dvza.queue"]
    items = queue.claim("epd", max_items=10)
    answers_item = next(i for i in items if i.kind == "questionnaire-answers")
    assert answers_item.gegevensdienst == "60"
    queue.accept(answers_item.id, "epd")
    assert client.get(f"/fhir/QuestionnaireResponse/{answers_id}", headers=bearer("XXXVINK")).status_code == 200


def _decide(app: t.Any, kind: str, decision: str) -> None:
    queue = app.extensions["dvza.queue"]
    [item] = [i for i in queue.claim("epd", max_items=10) if i.kind == kind]
    if decision == "accept":
        queue.accept(item.id, "epd")
    else:
        queue.reject(item.id, "epd", "antwoorden horen bij een andere patiënt")
    for other in queue.list(status="claimed"):
        queue.release(other.id, "epd")


def test_rejected_answers_open_the_task_again(accepted_vink: t.Any) -> None:
    """The answers completed the Task at once; rejecting them puts the Task back as it was (accepted, no output),
    so the patient can answer again — and the second answers can be accepted."""
    app, task_id, full_url, base = accepted_vink
    client = app.test_client()
    accepted = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    response = client.post("/fhir/", data=json.dumps(phq9_transaction(task_id, full_url, base)),
                           headers=submit_headers("XXXVINK"))
    assert response.status_code == 200
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()["status"] == "completed"
    _decide(app, "questionnaire-answers", "reject")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    assert task["status"] == "accepted" and "output" not in task
    assert int(task["meta"]["versionId"]) == int(accepted["meta"]["versionId"]) + 2  # a new version, not a rewrite
    assert {k: v for k, v in task.items() if k != "meta"} == {k: v for k, v in accepted.items() if k != "meta"}
    # the patient answers again, the hospital accepts: the Task is completed with the new answers
    again = client.post("/fhir/", data=json.dumps(phq9_transaction(task_id, full_url, base)),
                        headers=submit_headers("XXXVINK") | {"MedMij-Request-ID": "second-try"})
    assert again.status_code == 200, again.get_data(as_text=True)[:500]
    answers_id = answers_of(again.get_json())["id"]
    _decide(app, "questionnaire-answers", "accept")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    assert task["status"] == "completed"
    assert task["output"][0]["valueReference"]["reference"] == f"QuestionnaireResponse/{answers_id}"
    assert client.get(f"/fhir/QuestionnaireResponse/{answers_id}", headers=bearer("XXXVINK")).status_code == 200


def test_a_rejected_status_change_is_put_back_and_audited(qapp: t.Any) -> None:
    client = qapp.test_client()
    task_id = declined_by_the_patient(qapp)
    _decide(qapp, "task-status", "reject")
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXBOUMANN")).get_json()["status"] == "requested"
    with qapp.extensions["dvza.db"].sessionmaker() as session:
        from dvza.models import AuditRecord

        [event] = session.scalars(select(AuditRecord).where(AuditRecord.event_type == "queue.restored")).all()
        assert event.patient_id == "XXXBOUMANN" and event.resource_ids == f"Task/{task_id}"


def test_a_task_that_changed_since_is_not_put_back(accepted_vink: t.Any) -> None:
    """Rejecting the earlier submission (the PGO's 'accepted') after later answers completed the Task would undo
    those answers: the Task stays as it is. Accepted answers are never put back."""
    app, task_id, full_url, base = accepted_vink
    client = app.test_client()
    assert client.post("/fhir/", data=json.dumps(phq9_transaction(task_id, full_url, base)),
                       headers=submit_headers("XXXVINK")).status_code == 200
    _decide(app, "questionnaire-answers", "accept")
    _decide(app, "task-status", "reject")
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()["status"] == "completed"


def test_a_task_changed_during_the_rejection_is_not_overwritten(accepted_vink: t.Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer stores a newer version of the Task between the rejection's check and its write: the
    rejection still succeeds, and leaves that newer version as it is (no lost update)."""
    from fhir_api.store import ResourceStore

    app, task_id, full_url, base = accepted_vink
    client = app.test_client()
    assert client.post("/fhir/", data=json.dumps(phq9_transaction(task_id, full_url, base)),
                       headers=submit_headers("XXXVINK")).status_code == 200
    stage_version = ResourceStore.stage_version

    def overtaken(store: ResourceStore, existing: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        staged = stage_version(store, existing, *args, **kwargs)
        store.session.execute(update(ResourceRow).where(ResourceRow.pk == existing.pk)
                              .values(version_id=ResourceRow.version_id + 1)
                              .execution_options(synchronize_session=False))
        return staged

    monkeypatch.setattr(ResourceStore, "stage_version", overtaken)
    _decide(app, "questionnaire-answers", "reject")
    monkeypatch.undo()
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()["status"] == "completed"
    assert [i.status for i in app.extensions["dvza.queue"].list(status="rejected")] == ["rejected"]


def test_a_task_made_anew_under_the_same_id_is_not_put_back(qapp: t.Any) -> None:
    """The hospital deleted the Task and made a new one under the same id (versions start again at 1): rejecting
    the old status change must not write the old Task over the new one."""
    from fhir_api.store import ResourceStore

    client = qapp.test_client()
    task_id = declined_by_the_patient(qapp)
    with qapp.app_context(), qapp.extensions["dvza.db"].sessionmaker() as session:
        store = ResourceStore(session)
        row = store.get("Task", task_id)
        old = fhirjson.loads(row.json_text)
        store.delete(row)
        anew = {k: v for k, v in old.items() if k != "meta"} | {"meta": {"profile": old["meta"]["profile"]},
                                                                  "status": "requested"}
        store.put(anew | {"description": "eerste"})
        store.put(anew | {"description": "tweede"})  # version 2 again, as the rejected change wrote
        session.commit()
    _decide(qapp, "task-status", "reject")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXBOUMANN")).get_json()
    assert task["description"] == "tweede" and task["meta"]["versionId"] == "2"


@pytest.mark.parametrize("first", ["task-status", "questionnaire-answers"])
def test_two_stacked_changes_both_rejected_leave_the_task_as_before_both(accepted_vink: t.Any, first: str) -> None:
    """The PGO accepted the Task (one item), then completed it with answers (another): rejecting both, in either
    order, leaves it requested — a rejected change never stays because a later one was built on it."""
    app, task_id, full_url, base = accepted_vink
    client = app.test_client()
    assert client.post("/fhir/", data=json.dumps(phq9_transaction(task_id, full_url, base)),
                       headers=submit_headers("XXXVINK")).status_code == 200
    second = "questionnaire-answers" if first == "task-status" else "task-status"
    _decide(app, first, "reject")
    _decide(app, second, "reject")
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    assert task["status"] == "requested" and "output" not in task


def test_rejecting_answers_keeps_a_change_that_was_not_rejected(qapp: t.Any) -> None:
    """An older rejected change with the same content as the one the answers were built on (accepted, rejected,
    then accepted again) does not take the Task further back than the answers' own version before."""
    client = qapp.test_client()
    task_id = new_task(qapp, "Vink-PHQ9")
    task, full_url, base = serve_task(client, "XXXVINK", "json")
    accept = json.dumps(task | {"status": "accepted"})
    assert client.put(f"/fhir/Task/{task_id}", data=accept, headers=submit_headers("XXXVINK")).status_code == 200
    _decide(qapp, "task-status", "reject")  # back to requested
    task = client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()
    assert task["status"] == "requested"
    assert client.put(f"/fhir/Task/{task_id}", data=json.dumps(task | {"status": "accepted"}),
                      headers=submit_headers("XXXVINK") | {"MedMij-Request-ID": "accept-again"}).status_code == 200
    assert client.post("/fhir/", data=json.dumps(phq9_transaction(task_id, full_url, base)),
                       headers=submit_headers("XXXVINK")).status_code == 200
    _decide(qapp, "questionnaire-answers", "reject")
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()["status"] == "accepted"


def test_a_task_that_cannot_be_put_back_does_not_stop_the_rejection(accepted_vink: t.Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier version no longer passes the write rules (say, its Questionnaire is gone): the hospital can still
    reject the answers; the Task is left as it is and the audit record says so."""
    from fhir_api.errors import InvalidResource
    from fhir_api.store import ResourceStore

    app, task_id, full_url, base = accepted_vink
    client = app.test_client()
    assert client.post("/fhir/", data=json.dumps(phq9_transaction(task_id, full_url, base)),
                       headers=submit_headers("XXXVINK")).status_code == 200

    def refused(*_: t.Any, **__: t.Any) -> t.Any:
        raise InvalidResource("the earlier version breaks a rule")

    monkeypatch.setattr(ResourceStore, "stage", refused)
    _decide(app, "questionnaire-answers", "reject")
    monkeypatch.undo()
    assert client.get(f"/fhir/Task/{task_id}", headers=bearer("XXXVINK")).get_json()["status"] == "completed"
    assert [i.kind for i in app.extensions["dvza.queue"].list(status="rejected")] == ["questionnaire-answers"]
    with app.extensions["dvza.db"].sessionmaker() as session:
        from dvza.models import AuditRecord

        [event] = session.scalars(select(AuditRecord).where(AuditRecord.event_type == "queue.restored")).all()
        assert f"left as is: Task/{task_id}" in event.detail
