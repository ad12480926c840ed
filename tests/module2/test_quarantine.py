"""The return queue is a quarantine (issue 11): what a PGO sends never changes what anyone reads until
the hospital accepts it, and a submission can never reach outside its own patient.

Each test plays a hostile PGO holding a valid token for one Cert patient and checks three things:
the answer (a 4xx OperationOutcome that does not say whether an id exists), the database (nothing
stored, nothing queued), and what every patient reads afterwards (unchanged).
"""

from __future__ import annotations

import base64
import copy
import json
import typing as t

import pytest
from sqlalchemy import select

from dvza.returnqueue.models import QueueItem
from fhir_api import fhirjson
from fhir_api.models import ResourceRow
from fhir_api.store import ResourceStore
from tests.support import CERT_SETS
from tests.support import bearer
from tests.support import fixture_text
from tests.support import load_cert_data
from tests.support import submit_headers

BALTUS = "example-pdfa-kwalificatie1"  # documents pdfa-binary1, pdfa-binary2
ELLENS = "example-pdfa-kwalificatie3"  # documents pdfa-binary5, pdfa-binary6
BOURGONJEE = "selfmeasurement-patient-kwalificatie1"  # hospital-made vital signs
BERGZOON = "selfmeasurement-patient-kwalificatie2"
PDFA = CERT_SETS["pdfa"] / "_reference" / "resources"
RECEIVE = CERT_SETS["selfmeasurements"] / "_reference" / "resources-serve-receive"
PDF = b"%PDF-1.4\n% attacker's document\n%%EOF\n"


@pytest.fixture(scope="module")
def qapp(databases: t.Any, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    """One app with the PDF/A and Zelfmetingen Cert data; tests that change data restore nothing, so
    each checks only what its own request did."""
    from tests.support import make_app

    application = make_app(databases, tmp_path_factory)
    load_cert_data(application, "pdfa", "selfmeasurements")
    yield application
    application.extensions["dvza.db"].dispose()


def snapshot(app: t.Any) -> tuple[list[tuple[t.Any, ...]], int]:
    """Every stored row's identity, version and visibility, and the number of queue items."""
    with app.extensions["dvza.db"].sessionmaker() as session:
        rows = session.execute(select(ResourceRow.resource_type, ResourceRow.logical_id, ResourceRow.version_id,
                                      ResourceRow.hidden_by, ResourceRow.json_text)
                               .order_by(ResourceRow.pk)).all()
        items = len(session.scalars(select(QueueItem.id)).all())
    return [tuple(r) for r in rows], items


def post(app: t.Any, patient: str, bundle: dict[str, t.Any]) -> t.Any:
    return app.test_client().post("/fhir/", data=json.dumps(bundle), headers=submit_headers(patient))


def document_bundle(patient: str, attachment_url: str, *, method: str = "POST",
                    with_binary: bool = False) -> dict[str, t.Any]:
    reference_entry: dict[str, t.Any] = {
        "fullUrl": "urn:uuid:7f0a4d1e-0000-4000-8000-000000000001",
        "resource": {
            "resourceType": "DocumentReference",
            "id": "evil-document",
            "meta": {"profile": ["http://ihe.net/fhir/StructureDefinition/IHE.MHD.Minimal.DocumentReference"]},
            "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "34133-9", "display": "Samenvatting"}]},
            "indexed": "2024-05-01T10:00:00+02:00",
            "subject": {"reference": f"Patient/{patient}", "display": "patiënt"},
            "content": [{"attachment": {"contentType": "application/pdf", "url": attachment_url,
                                        "title": "Onschuldig ogend document"}}],
        },
        "request": {"method": method, "url": "DocumentReference" + ("/evil-document" if method == "PUT" else "")},
    }
    entries = [reference_entry]
    if with_binary:
        entries.append({
            "fullUrl": "urn:uuid:7f0a4d1e-0000-4000-8000-000000000002",
            "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                         "content": base64.b64encode(PDF).decode()},
            "request": {"method": "POST", "url": "Binary"},
        })
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def raw_binary(app: t.Any, patient: str, binary_id: str) -> t.Any:
    return app.test_client().get(f"/fhir/Binary/{binary_id}", headers=bearer(patient) | {"Accept": "*/*"})


def issues_text(response: t.Any) -> str:
    return " ".join(i.get("diagnostics", "") for i in response.get_json()["issue"])


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_document_cannot_point_at_another_patients_binary(qapp: t.Any, method: str) -> None:
    before = snapshot(qapp)
    response = post(qapp, ELLENS, document_bundle(ELLENS, "Binary/pdfa-binary1", method=method))
    assert 400 <= response.status_code < 500
    assert response.get_json()["resourceType"] == "OperationOutcome"
    expected = "cannot change existing DocumentReference" if method == "PUT" else "neither in this submission"
    assert expected in issues_text(response)
    assert snapshot(qapp) == before
    assert raw_binary(qapp, ELLENS, "pdfa-binary1").status_code == 404
    assert raw_binary(qapp, BALTUS, "pdfa-binary1").status_code == 200


def test_a_document_cannot_point_at_an_existing_binary_even_its_own(qapp: t.Any) -> None:
    """Shared resources the PGO did not send in this submission are out of reach, the patient's own
    documents included: the answer is the same as for another patient's or an unknown id."""
    answers = []
    for target in ("Binary/pdfa-binary5", "Binary/pdfa-binary1", "Binary/does-not-exist"):
        before = snapshot(qapp)
        response = post(qapp, ELLENS, document_bundle(ELLENS, target))
        assert 400 <= response.status_code < 500
        assert "neither in this submission nor in this patient's record" in issues_text(response)
        assert snapshot(qapp) == before
        answers.append((response.status_code, issues_text(response).replace(target, "<target>")))
    assert answers[0] == answers[1] == answers[2]


def test_an_attackers_binary_never_replaces_another_patients_document(qapp: t.Any) -> None:
    original = raw_binary(qapp, BALTUS, "pdfa-binary1").data
    bundle = document_bundle(ELLENS, "Binary/pdfa-binary1")
    bundle["entry"].append({
        "fullUrl": "Binary/pdfa-binary1",
        "resource": {"resourceType": "Binary", "id": "pdfa-binary1", "contentType": "application/pdf",
                     "content": base64.b64encode(PDF).decode()},
        "request": {"method": "PUT", "url": "Binary/pdfa-binary1"},
    })
    before = snapshot(qapp)
    response = post(qapp, ELLENS, bundle)
    assert response.status_code == 422
    assert "cannot change existing Binary" in issues_text(response)
    assert snapshot(qapp) == before
    assert raw_binary(qapp, BALTUS, "pdfa-binary1").data == original


def put_answers(app: t.Any, template: dict[str, t.Any], resource_type: str, targets: t.Iterable[str],
                patient: str) -> list[str]:
    """``template`` with its ``resource_type`` entries turned into a PUT of each target in turn, sent as
    ``patient``'s PGO: each refused (422) with nothing changed; the answers, with the target as ``<id>``."""
    answers = []
    for target in targets:
        bundle = copy.deepcopy(template)
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == resource_type:
                entry["resource"]["id"] = target
                entry["request"] = {"method": "PUT", "url": f"{resource_type}/{target}"}
        before = snapshot(app)
        response = app.test_client().post("/fhir/", data=json.dumps(bundle), headers=submit_headers(patient))
        assert response.status_code == 422, response.get_data(as_text=True)
        assert snapshot(app) == before
        answers.append(issues_text(response).replace(target, "<id>"))
    return answers


def test_put_entries_are_refused_alike_whatever_the_id(qapp: t.Any) -> None:
    """A self-measurement batch that PUTs over a hospital Observation (own patient), another patient's
    Observation or an unknown id: refused, the same words each time, nothing changes."""
    with qapp.extensions["dvza.db"].sessionmaker() as session:
        own = session.scalar(select(ResourceRow.logical_id).where(ResourceRow.resource_type == "Observation",
                                                                  ResourceRow.patient_id == BOURGONJEE))
        other = session.scalar(select(ResourceRow.logical_id).where(ResourceRow.resource_type == "Observation",
                                                                    ResourceRow.patient_id == BERGZOON))
    template = json.loads(fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-1-bundle.json"))
    answers = put_answers(qapp, template, "Observation", (own, other or "unknown-observation-1",
                                                         "unknown-observation-2"), BOURGONJEE)
    assert len(set(answers)) == 1 and "<id>" not in answers[0]
    assert "cannot change existing Observation" in answers[0]
    read = qapp.test_client().get(f"/fhir/Observation/{own}", headers=bearer(BOURGONJEE)).get_json()
    assert read["meta"]["versionId"] == "1"


def test_a_patient_entry_is_only_ever_a_post_matched_to_the_token(qapp: t.Any) -> None:
    """A Patient entry is matched to the token's patient (POST Patient), never an update: a PUT of the
    token's own Patient, another patient's or an unknown id is refused in the same words — before, the
    url was ignored and ``PUT Patient/<other>`` was answered as the token's patient — and a POST to
    another url is a 400. Nothing changes."""
    template = json.loads(fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-1-bundle.json"))
    assert any(e["resource"]["resourceType"] == "Patient" for e in template["entry"])
    answers = put_answers(qapp, template, "Patient", (BERGZOON, BOURGONJEE, "unknown-patient-1"), BERGZOON)
    assert len(set(answers)) == 1 and "<id>" not in answers[0]
    assert "cannot change existing Patient" in answers[0]
    bundle = copy.deepcopy(template)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["request"] = {"method": "POST", "url": "Observation"}
    before = snapshot(qapp)
    response = qapp.test_client().post("/fhir/", data=json.dumps(bundle), headers=submit_headers(BERGZOON))
    assert response.status_code == 400
    assert "must be 'Patient'" in issues_text(response)
    assert snapshot(qapp) == before


def test_references_to_other_patients_data_are_refused_like_unknown_ones(qapp: t.Any) -> None:
    with qapp.extensions["dvza.db"].sessionmaker() as session:
        foreign = session.scalar(select(ResourceRow.logical_id).where(ResourceRow.resource_type == "Observation",
                                                                      ResourceRow.patient_id == BOURGONJEE))
    template = json.loads(fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-1-bundle.json"))
    answers = []
    for target in (f"Observation/{foreign}", "Observation/not-here", "Practitioner/any-practitioner"):
        bundle = copy.deepcopy(template)
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Observation":
                entry["resource"]["related"] = [{"type": "has-member", "target": {"reference": target}}]
        before = snapshot(qapp)
        response = qapp.test_client().post("/fhir/", data=json.dumps(bundle), headers=submit_headers(BERGZOON))
        assert response.status_code == 422, response.get_data(as_text=True)
        assert snapshot(qapp) == before
        answers.append(issues_text(response).replace(target, "<target>"))
    assert len(set(answers)) == 1
    assert "neither in this submission nor in this patient's record" in answers[0]


def test_a_binary_must_be_the_document_of_the_submission(qapp: t.Any) -> None:
    bundle = json.loads(fixture_text(PDFA / "medmij-pdfa-Bundle-kwalificatie1.json"))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "DocumentReference":
            entry["resource"]["content"][0]["attachment"]["url"] = "Binary/does-not-exist"
    before = snapshot(qapp)
    response = post(qapp, ELLENS, bundle)
    assert 400 <= response.status_code < 500
    assert "not the document of a DocumentReference" in issues_text(response)
    assert snapshot(qapp) == before


def test_submitted_data_stays_invisible_until_accepted(qapp: t.Any) -> None:
    """Own patient included: a new document is neither searchable nor readable until the hospital
    accepts it; a rejected one never appears."""
    queue = qapp.extensions["dvza.queue"]
    client = qapp.test_client()
    outcome = {}
    for decision in ("reject", "accept"):
        response = post(qapp, ELLENS, document_bundle(ELLENS, "urn:uuid:7f0a4d1e-0000-4000-8000-000000000002",
                                                      with_binary=True))
        assert response.status_code == 200, response.get_data(as_text=True)
        created = {e["resource"]["resourceType"]: e["resource"]["id"] for e in response.get_json()["entry"]}
        assert created["DocumentReference"] != "evil-document"  # the server chose the id
        for rtype, rid in created.items():
            assert client.get(f"/fhir/{rtype}/{rid}", headers=bearer(ELLENS)).status_code == 404
        found = client.get("/fhir/DocumentReference", headers=bearer(ELLENS)).get_json()
        assert created["DocumentReference"] not in {e["resource"]["id"] for e in found.get("entry", [])}
        [item] = [i for i in queue.list(status="new", patient_id=ELLENS)]
        queue.claim_item(item.id, "epd")
        if decision == "reject":
            queue.reject(item.id, "epd", "niet van deze patiënt")
        else:
            queue.accept(item.id, "epd")
        outcome[decision] = created
    for rtype, rid in outcome["reject"].items():
        assert client.get(f"/fhir/{rtype}/{rid}", headers=bearer(ELLENS)).status_code == 404
    accepted = outcome["accept"]
    assert client.get(f"/fhir/DocumentReference/{accepted['DocumentReference']}",
                      headers=bearer(ELLENS)).status_code == 200
    assert raw_binary(qapp, ELLENS, accepted["Binary"]).data == PDF
    assert raw_binary(qapp, BALTUS, accepted["Binary"]).status_code == 404


def test_a_document_two_patients_claim_is_served_to_neither(qapp: t.Any) -> None:
    """Defence in depth on the read side: even if the record itself were wrong (a DocumentReference of
    one patient pointing at another patient's document), the document is not served across patients."""
    with qapp.extensions["dvza.db"].sessionmaker() as session:
        store = ResourceStore(session)
        stolen = fhirjson.loads(store.get("DocumentReference", "pdfa-documentreference8").json_text)
        stolen["id"] = "wrongly-linked-document"
        stolen["content"][0]["attachment"]["url"] = "Binary/pdfa-binary2"  # Baltus's document
        stolen["meta"] = {"profile": stolen["meta"]["profile"]}
        store.put(stolen)
        session.commit()
    assert raw_binary(qapp, ELLENS, "pdfa-binary2").status_code == 404
    assert raw_binary(qapp, BALTUS, "pdfa-binary2").status_code == 404
    assert raw_binary(qapp, BALTUS, "pdfa-binary1").status_code == 200


def test_task_updates_say_nothing_about_other_patients_tasks(databases: t.Any,
                                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    """PUT Task of another patient and of an unknown id: the same 404, nothing changes."""
    from datetime import date

    from dvza.devtools import testdata
    from tests.support import make_app

    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False)
    load_cert_data(app, "questionnaires")
    folder = CERT_SETS["questionnaires"] / "_reference" / "resources" / "resources-specific"
    with app.extensions["dvza.db"].sessionmaker() as session:
        [vink_task] = testdata.create_tasks(
            session, [folder / "medmij-questionnaires-vl-QuestionnaireProvisioningTask-XXX_Vink-PHQ9-REQUESTED.xml"],
            today=date.today())
        from oauth.tokens import ACCESS
        from oauth.tokens import store_token

        for patient in ("XXXVINK", "XXXREPSCHER"):
            store_token(session, f"token-{patient}", kind=ACCESS, patient_id=patient, gegevensdiensten=["59", "60"],
                        client_id="pgo.example.nl")
        session.commit()
        task = fhirjson.loads(ResourceStore(session).get("Task", vink_task.split("/")[1]).json_text)
    client = app.test_client()
    task["status"] = "accepted"
    answers = []
    for target in (vink_task.split("/")[1], "vl-task-does-not-exist"):
        body = dict(task, id=target)
        before = snapshot(app)
        response = client.put(f"/fhir/Task/{target}", data=json.dumps(body), headers={
            "Authorization": "Bearer token-XXXREPSCHER", "Content-Type": "application/fhir+json"})
        assert snapshot(app) == before
        answers.append((response.status_code, issues_text(response).replace(target, "<id>")))
    assert answers[0] == answers[1] and answers[0][0] == 404
    own = client.put(f"/fhir/{vink_task}", data=json.dumps(task), headers={
        "Authorization": "Bearer token-XXXVINK", "Content-Type": "application/fhir+json"})
    assert own.status_code == 200 and own.get_json()["status"] == "accepted"
    app.extensions["dvza.db"].dispose()
