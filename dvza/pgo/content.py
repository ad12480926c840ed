"""What the simulator asks for and sends: the BgZ searches per section, the PDF/A document search
and a blood-pressure measurement (Zelfmetingen).

The BgZ queries are those of the MedMij BgZ 3.x functional design (fhir-content.md §2.1), grouped
in the BgZ sections a person recognises. The measurement follows zib BloodPressure (LOINC 85354-9
with components 8480-6 systolic and 8462-4 diastolic in ``mm[Hg]``; fhir-content.md §5.1) and is
sent as the MedMij batch of §5.3: a Patient entry plus the Observation referring to it.
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

from ..readable import summary
from .client import Aanbieder
from .client import PgoClient
from .client import PgoError

#: (section title, query relative to the FHIR base) — BgZ 3.x, in the order of the BgZ.
BGZ_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Patiënt en huisarts", ("Patient?_include=Patient:general-practitioner",)),
    ("Betaler", ("Coverage?_include=Coverage:payor:Patient&_include=Coverage:payor:Organization",)),
    ("Behandelaanwijzingen en wilsverklaringen", ("Consent?category=http://snomed.info/sct|11291000146105",
                                                  "Consent?category=http://snomed.info/sct|11341000146107")),
    ("Functionele of mentale status", ("Observation/$lastn?category=http://snomed.info/sct|118228005,"
                                       "http://snomed.info/sct|384821006",)),
    ("Problemen", ("Condition",)),
    ("Woonsituatie en leefstijl", ("Observation/$lastn?code=http://snomed.info/sct|365508006",
                                   "Observation?code=http://snomed.info/sct|228366006",
                                   "Observation?code=http://snomed.info/sct|228273003",
                                   "Observation?code=http://snomed.info/sct|365980008")),
    ("Voedingsadvies", ("NutritionOrder",)),
    ("Alerts", ("Flag",)),
    ("Allergieën", ("AllergyIntolerance",)),
    ("Medicatie", ("MedicationStatement?category=urn:oid:2.16.840.1.113883.2.4.3.11.60.20.77.5.3|6"
                   "&_include=MedicationStatement:medication",
                   "MedicationRequest?category=http://snomed.info/sct|16076005&_include=MedicationRequest:medication",
                   "MedicationDispense?category=http://snomed.info/sct|422037009"
                   "&_include=MedicationDispense:medication")),
    ("Medische hulpmiddelen", ("DeviceUseStatement?_include=DeviceUseStatement:device",)),
    ("Vaccinaties", ("Immunization?status=completed",)),
    ("Vitale functies", ("Observation/$lastn?code=http://loinc.org|85354-9",
                         "Observation/$lastn?code=http://loinc.org|29463-7",
                         "Observation/$lastn?code=http://loinc.org|8302-2,http://loinc.org|8306-3,"
                         "http://loinc.org|8308-9")),
    ("Laboratoriumuitslagen", ("Observation/$lastn?category=http://snomed.info/sct|275711006"
                               "&_include=Observation:related-target&_include=Observation:specimen",)),
    ("Verrichtingen", ("Procedure?category=http://snomed.info/sct|387713003",)),
    ("Contacten", ("Encounter?class=http://hl7.org/fhir/v3/ActCode|IMP,http://hl7.org/fhir/v3/ActCode|ACUTE,"
                   "http://hl7.org/fhir/v3/ActCode|NONAC",)),
    ("Geplande zorg", ("ProcedureRequest?status=active", "ImmunizationRecommendation",
                       "Appointment?status=booked,pending,proposed", "DeviceRequest?status=active"
                       "&_include=DeviceRequest:device")),
)

DOCUMENTS_QUERY = "DocumentReference?status=current"


@dataclass(slots=True)
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    resources: list[dict[str, t.Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def bgz_queries() -> list[str]:
    return [query for _, queries in BGZ_SECTIONS for query in queries]


def fetch_bgz(client: PgoClient, aanbieder: Aanbieder, token: str) -> list[Section]:
    """Run every BgZ search; each section lists its matches (included resources are context)."""
    sections = []
    for title, queries in BGZ_SECTIONS:
        section = Section(title)
        for query in queries:
            try:
                bundle = client.get(aanbieder, token, query)
            except PgoError as exc:
                section.problems.append(str(exc))
                continue
            for entry in bundle.get("entry", []):
                resource = entry.get("resource") or {}
                if (entry.get("search") or {}).get("mode", "match") == "match":
                    section.resources.append(resource)
                    section.lines.append(summary(resource))
        sections.append(section)
    return sections


def fetch_documents(client: PgoClient, aanbieder: Aanbieder, token: str) -> list[dict[str, str]]:
    """The person's current documents (PDF/A, gegevensdienst 51): title, date, Binary reference."""
    bundle = client.get(aanbieder, token, DOCUMENTS_QUERY)
    documents = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        for content in resource.get("content", []):
            attachment = content.get("attachment") or {}
            documents.append({"title": str(attachment.get("title") or resource.get("description") or "Document"),
                              "date": str(resource.get("indexed", ""))[:10],
                              "url": str(attachment.get("url", "")),
                              "contentType": str(attachment.get("contentType", ""))})
    return documents


def blood_pressure_bundle(systolic: int, diastolic: int, *, when: datetime | None = None,
                          patient: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """A MedMij Zelfmetingen batch: a Patient entry (matched by the DVZA to the token's patient,
    never created) and one zib BloodPressure Observation referring to it (fhir-content.md §5.3)."""
    if not (0 < systolic < 400 and 0 < diastolic < 300):
        raise ValueError("blood pressure out of range")
    moment = (when or datetime.now(UTC)).astimezone().isoformat(timespec="seconds")
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    patient_resource = {"resourceType": "Patient",
                        "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/nl-core-patient"]}}
    for key in ("name", "birthDate", "gender"):
        if patient and key in patient:
            patient_resource[key] = patient[key]
    display = "Patiënt"
    if patient_resource.get("name"):
        from ..readable import human_name

        display = human_name(patient_resource["name"]) or display

    def mm_hg(value: int) -> dict[str, t.Any]:
        return {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}

    observation = {
        "resourceType": "Observation",
        "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/zib-BloodPressure"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs",
                                  "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                             "display": "Blood pressure panel with all children optional"}]},
        "subject": {"reference": patient_url, "display": display},
        "effectiveDateTime": moment,
        "performer": [{"reference": patient_url, "display": display}],
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                                  "display": "Systolic blood pressure"}]}, "valueQuantity": mm_hg(systolic)},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4",
                                  "display": "Diastolic blood pressure"}]}, "valueQuantity": mm_hg(diastolic)},
        ],
    }
    return {"resourceType": "Bundle", "type": "batch", "entry": [
        {"fullUrl": patient_url, "resource": patient_resource, "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": observation,
         "request": {"method": "POST", "url": "Observation"}},
    ]}


def batch_outcome(response: dict[str, t.Any]) -> list[str]:
    """``<status> <location>`` per entry of a batch-response."""
    lines = []
    for entry in response.get("entry", []):
        answer = entry.get("response") or {}
        lines.append(f"{answer.get('status', '?')} {answer.get('location', '')}".strip())
    return lines
