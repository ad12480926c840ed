"""No data crosses patients: every token, every search and every read of every stored resource.

The expected visibility comes from an oracle written independently of the server's compartment
and reachability code (``tests/oracle.py``).
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest

from oauth.tokens import ACCESS
from oauth.tokens import store_token
from tests.oracle import Oracle
from tests.oracle import oracle_of
from tests.support import TOKENS
from tests.support import bearer

SERVED_SEARCHES = [
    "Patient", "Coverage", "Consent", "Observation", "Condition", "NutritionOrder", "Flag", "AllergyIntolerance",
    "MedicationStatement", "MedicationRequest", "MedicationDispense", "DeviceUseStatement", "Device",
    "Immunization", "Procedure", "Encounter", "ProcedureRequest", "ImmunizationRecommendation", "Appointment",
    "DeviceRequest", "Specimen", "RelatedPerson", "DocumentReference", "DocumentManifest", "Task",
    "Practitioner", "PractitionerRole", "Organization", "Location", "Medication", "Questionnaire",
]


@pytest.fixture(scope="module")
def oracle(cert_app: t.Any) -> Oracle:
    return oracle_of(cert_app)


@pytest.mark.parametrize("patient", sorted(TOKENS))
def test_every_read_of_every_resource(cert_client: t.Any, oracle: Oracle, patient: str) -> None:
    visible = oracle.visible(patient)
    assert (("Patient", patient)) in visible
    for rtype, rid in oracle.resources:
        response = cert_client.get(f"/fhir/{rtype}/{rid}", headers={**bearer(patient), "Accept": "application/json"})
        expected = 200 if (rtype, rid) in visible else 404
        assert response.status_code == expected, (patient, rtype, rid)


@pytest.mark.parametrize("patient", sorted(TOKENS))
def test_every_search_returns_only_own_or_reachable_data(cert_client: t.Any, oracle: Oracle, patient: str) -> None:
    visible = oracle.visible(patient)
    for rtype in SERVED_SEARCHES:
        response = cert_client.get(f"/fhir/{rtype}?_count=1000", headers=bearer(patient))
        assert response.status_code == 200, (rtype, response.get_data(as_text=True)[:300])
        found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in response.get_json().get("entry", [])}
        assert found <= visible, (patient, rtype, found - visible)
        assert found == {k for k in visible if k[0] == rtype}, (patient, rtype)


def test_explicit_patient_parameters_cannot_widen_the_scope(cert_client: t.Any) -> None:
    helleman, mesker = "medmij-bgz-patient-ts-01", "medmij-bgz-patient-ts-02"
    for query in (f"Condition?patient=Patient/{helleman}", f"Condition?subject={helleman}",
                  f"Patient?_id={helleman}", f"Observation?patient={helleman}"):
        bundle = cert_client.get(f"/fhir/{query}", headers=bearer(mesker)).get_json()
        assert bundle["total"] == 0, query


def test_includes_never_pull_in_another_patients_data(cert_app: t.Any, cert_client: t.Any) -> None:
    """_revinclude of a shared resource from a patient's search stays within the patient."""
    mesker = "medmij-bgz-patient-ts-02"
    bundle = cert_client.get("/fhir/Patient?_revinclude=Condition:subject&_revinclude=Coverage:payor",
                             headers=bearer(mesker)).get_json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Patient"}


def test_gegevensdienst_scopes(cert_app: t.Any) -> None:
    """A token for 48 (BgZ) reaches no documents; one for 51 (PDF/A) no BgZ data; 52 only vital signs."""
    database = cert_app.extensions["dvza.db"]
    tokens = {"48": "t-48-" + "0" * 30, "51": "t-51-" + "0" * 30, "52": "t-52-" + "0" * 30}
    with database.sessionmaker() as session:
        for dienst, value in tokens.items():
            patient = "example-pdfa-kwalificatie1" if dienst == "51" else "medmij-bgz-patient-ts-01"
            store_token(session, value, kind=ACCESS, patient_id=patient, gegevensdiensten=[dienst],
                        client_id="pgo.test", lifetime=timedelta(minutes=15))
        session.commit()
    client = cert_app.test_client()

    def status(dienst: str, url: str) -> int:
        return client.get(url, headers={"Authorization": f"Bearer {tokens[dienst]}"}).status_code

    assert status("48", "/fhir/Condition") == 200
    assert status("48", "/fhir/DocumentReference") == 403
    assert status("48", "/fhir/Binary/pdfa-binary1") == 404
    assert status("51", "/fhir/DocumentReference?status=current") == 200
    assert status("51", "/fhir/Binary/pdfa-binary1") == 200
    assert status("51", "/fhir/Condition") == 403
    assert status("51", "/fhir/Observation/$lastn?code=http://loinc.org|85354-9") == 403
    # 52 (Zelfmetingen, Verzamelen) sees vital signs only, not the BgZ lab results
    vital = client.get("/fhir/Observation", headers={"Authorization": f"Bearer {tokens['52']}"}).get_json()
    categories = {c["code"] for e in vital["entry"] for cat in e["resource"]["category"] for c in cat["coding"]}
    assert categories == {"vital-signs"}
    lab = client.get("/fhir/Observation?category=http://snomed.info/sct|275711006",
                     headers={"Authorization": f"Bearer {tokens['52']}"}).get_json()
    assert lab["total"] == 0
    # Specimen may be shared (an environmental sample), like Device: one this grant cannot reach is not found
    assert status("52", "/fhir/Specimen/medmij-bgz-specimen-ts-01") == 404
    assert status("48", "/fhir/Specimen/medmij-bgz-specimen-ts-01") == 200


def test_a_zelfmetingen_token_sees_the_blood_glucose_measurements(cert_app: t.Any) -> None:
    """52 (Zelfmetingen, Verzamelen) covers blood glucose although it carries the laboratory category, not
    vital-signs (fhir-content.md §5.1): Cert scenario 1.3 expects 3 for XXX_Bourgonjee."""
    database = cert_app.extensions["dvza.db"]
    with database.sessionmaker() as session:
        store_token(session, "t-52-glucose-" + "0" * 22, kind=ACCESS, gegevensdiensten=["52"],
                    patient_id="selfmeasurement-patient-kwalificatie1", client_id="pgo.test",
                    lifetime=timedelta(minutes=15))
        session.commit()
    bundle = cert_app.test_client().get(
        "/fhir/Observation?code=http://loinc.org|14760-3,http://loinc.org|14743-9,http://loinc.org|14770-2",
        headers={"Authorization": "Bearer t-52-glucose-" + "0" * 22}).get_json()
    assert sorted(e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"]) == ["14743-9", "14760-3",
                                                                                           "14770-2"]
