"""The 28 BgZ searches (fhir-content.md §2.1) on the Cert data, in JSON and XML.

Scenario 1.1 (XXX_Helleman) expects the counts in the table; scenario 1.2 (XXX_Mesker) only a
Patient, every other search an empty searchset. Each response must also meet the §1.2 rules.
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote

import pytest

from fhir_api import fhirxml
from tests.fhir_api.searchset_rules import counts
from tests.fhir_api.searchset_rules import violations
from tests.support import bearer

HELLEMAN = "medmij-bgz-patient-ts-01"
MESKER = "medmij-bgz-patient-ts-02"

#: (request relative to [base], expected counts for XXX_Helleman) — fhir-content.md §2.1
BGZ_SEARCHES: list[tuple[str, dict[str, int]]] = [
    ("Patient?_include=Patient:general-practitioner", {"Patient": 1, "Practitioner": 1}),
    ("Coverage?_include=Coverage:payor:Patient&_include=Coverage:payor:Organization",
     {"Coverage": 2, "Organization": 1}),
    ("Consent?category=http://snomed.info/sct|11291000146105", {"Consent": 1}),
    ("Consent?category=http://snomed.info/sct|11341000146107", {"Consent": 1}),
    ("Observation/$lastn?category=http://snomed.info/sct|118228005,http://snomed.info/sct|384821006",
     {"Observation": 1}),
    ("Condition", {"Condition": 6}),
    ("Observation/$lastn?code=http://snomed.info/sct|365508006", {"Observation": 1}),
    ("Observation?code=http://snomed.info/sct|228366006", {"Observation": 1}),
    ("Observation?code=http://snomed.info/sct|228273003", {"Observation": 1}),
    ("Observation?code=http://snomed.info/sct|365980008", {"Observation": 1}),
    ("NutritionOrder", {"NutritionOrder": 1}),
    ("Flag", {"Flag": 1}),
    ("AllergyIntolerance", {"AllergyIntolerance": 1}),
    ("MedicationStatement?category=urn:oid:2.16.840.1.113883.2.4.3.11.60.20.77.5.3|6"
     "&_include=MedicationStatement:medication", {"MedicationStatement": 1, "Medication": 1}),
    ("MedicationRequest?category=http://snomed.info/sct|16076005&_include=MedicationRequest:medication",
     {"MedicationRequest": 1, "Medication": 1}),
    ("MedicationDispense?category=http://snomed.info/sct|422037009&_include=MedicationDispense:medication",
     {"MedicationDispense": 1, "Medication": 1}),
    ("DeviceUseStatement?_include=DeviceUseStatement:device", {"DeviceUseStatement": 2, "Device": 2}),
    ("Immunization?status=completed", {"Immunization": 1}),
    ("Observation/$lastn?code=http://loinc.org|85354-9", {"Observation": 1}),
    ("Observation/$lastn?code=http://loinc.org|29463-7", {"Observation": 1}),
    ("Observation/$lastn?code=http://loinc.org|8302-2,http://loinc.org|8306-3,http://loinc.org|8308-9",
     {"Observation": 1}),
    ("Observation/$lastn?category=http://snomed.info/sct|275711006&_include=Observation:related-target"
     "&_include=Observation:specimen", {"Observation": 1, "Specimen": 1}),
    ("Procedure?category=http://snomed.info/sct|387713003", {"Procedure": 2}),
    ("Encounter?class=http://hl7.org/fhir/v3/ActCode|IMP,http://hl7.org/fhir/v3/ActCode|ACUTE,"
     "http://hl7.org/fhir/v3/ActCode|NONAC", {"Encounter": 2}),
    ("ProcedureRequest?status=active", {"ProcedureRequest": 1}),
    ("ImmunizationRecommendation", {"ImmunizationRecommendation": 1}),
    ("Appointment?status=booked,pending,proposed", {"Appointment": 1}),
    ("DeviceRequest?status=active&_include=DeviceRequest:device", {"DeviceRequest": 1, "Device": 1}),
]

ACCEPT = {"json": "application/fhir+json", "xml": "application/fhir+xml"}


def encoded(request: str) -> str:
    """The request as the scripts send it (``encodeRequestUrl=true``: ``|`` and ``,`` escaped)."""
    path, _, query = request.partition("?")
    if not query:
        return path
    pairs = [pair.split("=", 1) for pair in query.split("&")]
    return path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)


def search(client: t.Any, request: str, patient: str, fmt: str) -> dict[str, t.Any]:
    response = client.get("/fhir/" + encoded(request), headers={**bearer(patient), "Accept": ACCEPT[fmt]})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == ACCEPT[fmt]
    if fmt == "xml":
        return fhirxml.parse_xml(response.data)
    return response.get_json()


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(("request_", "expected"), BGZ_SEARCHES, ids=[r.split("?")[0] + f"#{i + 1}"
                                                                      for i, (r, _) in enumerate(BGZ_SEARCHES)])
def test_scenario_1_1_counts_and_rules(cert_client: t.Any, request_: str, expected: dict[str, int], fmt: str) -> None:
    bundle = search(cert_client, request_, HELLEMAN, fmt)
    found = counts(bundle)
    for resource_type, number in expected.items():
        assert found.get(resource_type, 0) == number, (request_, found)
    assert violations(bundle, request_.partition("?")[2]) == []
    subject_refs = {
        entry["resource"].get("subject", {}).get("reference") for entry in bundle.get("entry", [])
    } - {None}
    assert subject_refs <= {f"Patient/{HELLEMAN}"}


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("request_", [r for r, _ in BGZ_SEARCHES])
def test_scenario_1_2_only_the_patient(cert_client: t.Any, request_: str, fmt: str) -> None:
    bundle = search(cert_client, request_, MESKER, fmt)
    found = counts(bundle)
    if request_.startswith("Patient?"):
        assert found == {"Patient": 1}
        assert bundle["entry"][0]["resource"]["id"] == MESKER
    else:
        assert found == {}, request_
        assert bundle["total"] == 0
    assert violations(bundle, request_.partition("?")[2]) == []


def test_json_and_xml_carry_the_same_resources(cert_client: t.Any) -> None:
    for request_, _ in BGZ_SEARCHES:
        as_json = search(cert_client, request_, HELLEMAN, "json")
        as_xml = search(cert_client, request_, HELLEMAN, "xml")
        assert [e["resource"] for e in as_json.get("entry", [])] == [e["resource"] for e in as_xml.get("entry", [])]
        assert [e["search"] for e in as_json.get("entry", [])] == [e["search"] for e in as_xml.get("entry", [])]


def test_includes_are_marked_and_not_counted(cert_client: t.Any) -> None:
    bundle = search(cert_client, "DeviceUseStatement?_include=DeviceUseStatement:device", HELLEMAN, "json")
    modes = {e["resource"]["resourceType"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"DeviceUseStatement": "match", "Device": "include"}
    assert bundle["total"] == 2


def test_typed_include_follows_only_the_named_target_type(cert_client: t.Any) -> None:
    only_orgs = search(cert_client, "Coverage?_include=Coverage:payor:Organization", HELLEMAN, "json")
    assert {e["resource"]["resourceType"] for e in only_orgs["entry"] if e["search"]["mode"] == "include"} == {
        "Organization"
    }
    only_patient = search(cert_client, "Coverage?_include=Coverage:payor:Patient", HELLEMAN, "json")
    included = [e["resource"] for e in only_patient["entry"] if e["search"]["mode"] == "include"]
    assert [r["resourceType"] for r in included] == ["Patient"]
    assert included[0]["id"] == HELLEMAN


def test_lastn_returns_the_newest_per_code(cert_client: t.Any) -> None:
    every = search(cert_client, "Observation?category=http://snomed.info/sct|118228005,"
                                "http://snomed.info/sct|384821006", HELLEMAN, "json")
    newest = search(cert_client, "Observation/$lastn?category=http://snomed.info/sct|118228005,"
                                 "http://snomed.info/sct|384821006", HELLEMAN, "json")
    codes = {e["resource"]["code"]["coding"][0]["code"] for e in every["entry"]}
    assert len(newest["entry"]) == len(codes)
    assert "/Observation/$lastn?" in newest["link"][0]["url"]


def test_self_link_keeps_every_parameter(cert_client: t.Any) -> None:
    request_ = "Observation/$lastn?category=http://snomed.info/sct|275711006&_include=Observation:related-target" \
               "&_include=Observation:specimen"
    bundle = search(cert_client, request_, HELLEMAN, "json")
    assert violations(bundle, request_.partition("?")[2]) == []
    assert bundle["link"][0]["url"].startswith("http://localhost/fhir/Observation/$lastn?")


def test_referenced_resources_can_be_read(cert_client: t.Any) -> None:
    """Practitioner, Organization, Location, … referenced by the patient's data are readable."""
    bundle = search(cert_client, "Patient?_include=Patient:general-practitioner", HELLEMAN, "json")
    practitioner = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner")
    response = cert_client.get(f"/fhir/Practitioner/{practitioner['id']}", headers=bearer(HELLEMAN))
    assert response.status_code == 200
    assert response.headers["ETag"].startswith('W/"')
    for reference in ("Location/medmij-bgz-location-ts-01", "RelatedPerson/medmij-bgz-relatedperson-ts-01"):
        response = cert_client.get(f"/fhir/{reference}", headers=bearer(HELLEMAN))
        assert response.status_code == 200, reference
