"""Writes in qualification mode (PUT with client ids, $purge) and the write path's refusals:
validation, MedMij content rules, BSN masking, compartment checks — refused writes change nothing."""

from __future__ import annotations

import copy
import json
import typing as t

import pytest
from sqlalchemy import func
from sqlalchemy import select

from dvza import identity
from fhir_api import fhirxml
from fhir_api.models import ResourceRow
from oauth.tokens import import_qualification_token
from tests.support import TOKENS

PATIENT = "wp-patient-1"
OTHER = "wp-patient-2"
TOKEN = TOKENS["medmij-bgz-patient-ts-01"]
OTHER_TOKEN = TOKENS["medmij-bgz-patient-ts-02"]
JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


MASKED_BSN = {"system": "http://fhir.nl/fhir/NamingSystem/bsn",
              "_value": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                                        "valueCode": "masked"}]}}


def patient(pid: str = PATIENT, **extra: t.Any) -> dict[str, t.Any]:
    """A test Patient as the Nictiz load scripts PUT it: the BSN masked (a PGO never sends one in clear)."""
    return {
        "resourceType": "Patient", "id": pid,
        "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/nl-core-patient"]},
        "identifier": [MASKED_BSN],
        "name": [{"family": "Testpersoon", "given": ["Anna"]}],
        **extra,
    }


def patient_with_bsn(pid: str = PATIENT) -> dict[str, t.Any]:
    return {**patient(pid), "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}]}


def observation(oid: str = "wp-obs-1", subject: str = PATIENT, **extra: t.Any) -> dict[str, t.Any]:
    return {
        "resourceType": "Observation", "id": oid,
        "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs",
                                  "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{subject}", "display": "Anna Testpersoon"},
        "effectiveDateTime": "2024-05-01T10:00:00+02:00",
        "valueQuantity": {"value": 72.50, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        **extra,
    }


@pytest.fixture()
def writer(app: t.Any) -> t.Any:
    with app.extensions["dvza.db"].sessionmaker() as session:
        import_qualification_token(session, TOKEN, patient_id=PATIENT, gegevensdiensten=["48"])
        import_qualification_token(session, OTHER_TOKEN, patient_id=OTHER, gegevensdiensten=["48"])
        session.commit()
    return app.test_client()


def put(client: t.Any, resource: dict[str, t.Any], token: str = TOKEN, **headers: str) -> t.Any:
    return client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", data=json.dumps(resource),
                      headers={"Authorization": f"Bearer {token}", **JSON, **headers})


def row_count(app: t.Any) -> int:
    with app.extensions["dvza.db"].sessionmaker() as session:
        return session.scalar(select(func.count()).select_from(ResourceRow))


def test_put_creates_then_updates_with_versions(app: t.Any, writer: t.Any) -> None:
    created = put(writer, patient())
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"/fhir/Patient/{PATIENT}/_history/1")
    body = created.get_json()
    assert body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"].endswith("Z")
    updated = put(writer, patient(active=True))
    assert updated.status_code == 200
    assert updated.get_json()["meta"]["versionId"] == "2"
    assert writer.get(f"/fhir/Patient/{PATIENT}", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()["active"]


def test_a_clear_bsn_from_a_pgo_is_refused_and_changes_nothing(app: t.Any, writer: t.Any) -> None:
    """A BSN reaches the DVZA only from the hospital's own systems (dvza.source); the PGO-facing API refuses
    one in clear, even with a qualification token (MedMij core.rscint.203)."""
    response = put(writer, patient_with_bsn())
    assert response.status_code == 400
    assert "BSN" in response.get_json()["issue"][0]["diagnostics"]
    assert row_count(app) == 0
    observation_with_bsn = observation(identifier=[{"system": "http://fhir.nl/fhir/NamingSystem/bsn",
                                                    "value": "999911120"}])
    assert put(writer, patient()).status_code == 201
    assert put(writer, observation_with_bsn).status_code == 400
    assert row_count(app) == 1
    with app.extensions["dvza.db"].sessionmaker() as session:
        assert identity.patient_for(session, app.config["BSN_HMAC_KEY"], "999911120") is None


def test_bsn_link_through_the_loader(app: t.Any, tmp_path: t.Any) -> None:
    from datetime import date

    from dvza.devtools import testdata

    (tmp_path / "p.json").write_text(json.dumps(patient_with_bsn()))
    with app.extensions["dvza.db"].sessionmaker() as session:
        report = testdata.load(session, [tmp_path], today=date.today(), bsn_key=app.config["BSN_HMAC_KEY"])
        assert report.loaded == [f"Patient/{PATIENT}"]
        assert identity.patient_for(session, app.config["BSN_HMAC_KEY"], "999911120") == PATIENT


def test_xml_put_is_accepted(writer: t.Any) -> None:
    xml = fhirxml.render_xml(patient())
    response = writer.put(f"/fhir/Patient/{PATIENT}", data=xml, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"})
    assert response.status_code == 201
    assert response.mimetype == "application/fhir+xml"
    assert fhirxml.parse_xml(response.data)["name"][0]["family"] == "Testpersoon"


def test_decimal_precision_survives_storage(writer: t.Any) -> None:
    put(writer, patient())
    raw = json.dumps(observation()).replace('"value": 72.5', '"value": 72.50')
    response = writer.put("/fhir/Observation/wp-obs-1", data=raw,
                          headers={"Authorization": f"Bearer {TOKEN}", **JSON})
    assert response.status_code == 201
    assert b'"value":72.50' in response.data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("meta"), "meta.profile"),
        (lambda r: r["code"]["coding"][0].pop("system"), "system and code"),
        (lambda r: r["code"]["coding"][0].update(system="urn:oid:2.16.840.1.113883.2.4.3.11.60.40.2.12.1"),
         "value set OID"),
        (lambda r: r["code"].update(coding=[{"system": "http://loinc.org", "code": "29463-7"}]), "display"),
        (lambda r: r.update(performer=[{"reference": "Practitioner/unknown-x"}]), "has no display"),
        (lambda r: r.update(identifier=[{"value": "1"}]), "system or type"),
        (lambda r: r.update(effectiveDateTime="2024-05-01T10:00:00"), "DateTime"),
        (lambda r: r.update(bogus=1), "Extra inputs"),
        (lambda r: r.update(subject={"reference": "Group/1", "display": "g"}), "Patient it belongs to"),
    ],
)
def test_refused_writes_change_nothing(app: t.Any, writer: t.Any, mutate: t.Any, message: str) -> None:
    put(writer, patient())
    before = row_count(app)
    resource = copy.deepcopy(observation())
    mutate(resource)
    response = put(writer, resource)
    assert response.status_code == 400, response.get_data(as_text=True)
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert message in json.dumps(outcome)
    assert row_count(app) == before


def test_missing_display_is_filled_from_a_known_target(writer: t.Any) -> None:
    put(writer, patient())
    resource = observation()
    resource["subject"].pop("display")
    body = put(writer, resource).get_json()
    assert body["subject"]["display"] == "Anna Testpersoon"


def test_writes_for_another_patient_are_forbidden(app: t.Any, writer: t.Any) -> None:
    put(writer, patient())
    assert put(writer, patient(OTHER)).status_code == 403
    assert put(writer, observation(subject=OTHER)).status_code == 403
    put(writer, patient(OTHER), token=OTHER_TOKEN)
    put(writer, observation("wp-obs-9", subject=OTHER), token=OTHER_TOKEN)
    # moving an existing resource into another patient's compartment is refused, in the same words as
    # any other write this token may not make (no oracle for which ids exist)
    moved = put(writer, observation("wp-obs-9", subject=PATIENT))
    foreign = put(writer, observation("wp-obs-10", subject=OTHER))
    assert moved.status_code == foreign.status_code == 403
    assert moved.get_json()["issue"] == foreign.get_json()["issue"]
    assert writer.get("/fhir/Observation/wp-obs-9", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_url_and_body_must_agree(writer: t.Any) -> None:
    response = writer.put("/fhir/Patient/other-id", data=json.dumps(patient()),
                          headers={"Authorization": f"Bearer {TOKEN}", **JSON})
    assert response.status_code == 400
    response = writer.put(f"/fhir/Observation/{PATIENT}", data=json.dumps(patient()),
                          headers={"Authorization": f"Bearer {TOKEN}", **JSON})
    assert response.status_code == 400


def test_bad_bodies(writer: t.Any) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert writer.put(f"/fhir/Patient/{PATIENT}", data="{}", headers=headers | {
        "Content-Type": "text/plain"}).status_code == 415
    assert writer.put(f"/fhir/Patient/{PATIENT}", data="{", headers=headers | JSON).status_code == 400
    assert writer.put(f"/fhir/Patient/{PATIENT}", data="", headers=headers | JSON).status_code == 400


def test_body_size_limit(app: t.Any, writer: t.Any) -> None:
    app.extensions["fhir_api"].limits.max_body_bytes = 1000
    big = patient(name=[{"family": "x" * 2000}])
    assert put(writer, big).status_code == 413


def test_writes_need_qualification_mode(app: t.Any, writer: t.Any) -> None:
    app.extensions["fhir_api"].test_writes = False
    assert put(writer, patient()).status_code == 403


def test_purge_removes_only_the_patients_compartment(app: t.Any, writer: t.Any) -> None:
    put(writer, patient())
    put(writer, observation())
    put(writer, patient(OTHER), token=OTHER_TOKEN)
    practitioner = {"resourceType": "Practitioner", "id": "wp-prac",
                    "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/nl-core-practitioner"]}}
    assert put(writer, practitioner).status_code == 201
    assert writer.post(f"/fhir/Patient/{OTHER}/$purge", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    response = writer.post(f"/fhir/Patient/{PATIENT}/$purge", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 204
    with app.extensions["dvza.db"].sessionmaker() as session:
        remaining = set(session.scalars(select(ResourceRow.logical_id)))
    assert remaining == {OTHER, "wp-prac"}
