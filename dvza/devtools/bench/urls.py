"""What the benchmark asks: one patient's 28 BgZ searches (fhir-content.md §2.1, identical in the Cert and
Test scripts) and the searches of the growth table."""

from __future__ import annotations

from urllib.parse import quote

BGZ_SEARCHES = [
    "Patient?_include=Patient:general-practitioner",
    "Coverage?_include=Coverage:payor:Patient&_include=Coverage:payor:Organization",
    "Consent?category=http://snomed.info/sct|11291000146105",
    "Consent?category=http://snomed.info/sct|11341000146107",
    "Observation/$lastn?category=http://snomed.info/sct|118228005,http://snomed.info/sct|384821006",
    "Condition",
    "Observation/$lastn?code=http://snomed.info/sct|365508006",
    "Observation?code=http://snomed.info/sct|228366006",
    "Observation?code=http://snomed.info/sct|228273003",
    "Observation?code=http://snomed.info/sct|365980008",
    "NutritionOrder",
    "Flag",
    "AllergyIntolerance",
    "MedicationStatement?category=urn:oid:2.16.840.1.113883.2.4.3.11.60.20.77.5.3|6"
    "&_include=MedicationStatement:medication",
    "MedicationRequest?category=http://snomed.info/sct|16076005&_include=MedicationRequest:medication",
    "MedicationDispense?category=http://snomed.info/sct|422037009&_include=MedicationDispense:medication",
    "DeviceUseStatement?_include=DeviceUseStatement:device",
    "Immunization?status=completed",
    "Observation/$lastn?code=http://loinc.org|85354-9",
    "Observation/$lastn?code=http://loinc.org|29463-7",
    "Observation/$lastn?code=http://loinc.org|8302-2,http://loinc.org|8306-3,http://loinc.org|8308-9",
    "Observation/$lastn?category=http://snomed.info/sct|275711006&_include=Observation:related-target"
    "&_include=Observation:specimen",
    "Procedure?category=http://snomed.info/sct|387713003",
    "Encounter?class=http://hl7.org/fhir/v3/ActCode|IMP,http://hl7.org/fhir/v3/ActCode|ACUTE,"
    "http://hl7.org/fhir/v3/ActCode|NONAC",
    "ProcedureRequest?status=active",
    "ImmunizationRecommendation",
    "Appointment?status=booked,pending,proposed",
    "DeviceRequest?status=active&_include=DeviceRequest:device",
]


def encode(request: str) -> str:
    path, _, query = request.partition("?")
    if not query:
        return path
    return path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in (p.split("=", 1) for p in query.split("&")))


BGZ_URLS = [encode(r) for r in BGZ_SEARCHES]

GROWTH_QUERIES = {
    "one match by code": encode("Observation?code=http://snomed.info/sct|228366006"),
    "$lastn weight": encode("Observation/$lastn?code=http://loinc.org|29463-7"),
    "_include medication": encode("MedicationStatement?category=urn:oid:2.16.840.1.113883.2.4.3.11.60.20.77.5.3|6"
                                  "&_include=MedicationStatement:medication"),
}
