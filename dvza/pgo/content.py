"""What the simulator asks for and sends: the BgZ searches per section, measurements (the searches and
batches themselves are in :mod:`dvza.pgo.measurements`; documents in :mod:`dvza.pgo.documents`).

The BgZ queries are those of the MedMij BgZ 3.x functional design (fhir-content.md §2.1), grouped
in the BgZ sections a person recognises. The measurement follows zib BloodPressure (LOINC 85354-9
with components 8480-6 systolic and 8462-4 diastolic in ``mm[Hg]``; fhir-content.md §5.1) and is
sent as the MedMij batch of §5.3: a Patient entry plus the Observation referring to it.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from decimal import Decimal

from ..readable import summary
from .client import Aanbieder
from .client import PgoClient
from .client import PgoError
from .measurements import Measurement
from .measurements import batch

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


def blood_pressure_bundle(systolic: int, diastolic: int, *, when: datetime | None = None,
                          patient: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """A MedMij Zelfmetingen batch with one blood pressure (:func:`dvza.pgo.measurements.batch`)."""
    if not (0 < systolic < 400 and 0 < diastolic < 300):
        raise ValueError("blood pressure out of range")
    moment = (when or datetime.now(UTC)).astimezone()
    return batch([Measurement("bloeddruk", (Decimal(systolic), Decimal(diastolic)), moment)], patient=patient)


def fetch_measurements(client: PgoClient, aanbieder: Aanbieder, token: str, query: str) -> list[str]:
    """The measurements a search finds, each as a line a person reads (newest first as served)."""
    bundle = client.get(aanbieder, token, query)
    return [summary(e["resource"]) for e in bundle.get("entry", [])
            if (e.get("resource") or {}).get("resourceType") == "Observation"
            and (e.get("search") or {}).get("mode", "match") == "match"]


def batch_outcome(response: dict[str, t.Any]) -> list[str]:
    """``<status> <location>`` per entry of a batch-response."""
    lines = []
    for entry in response.get("entry", []):
        answer = entry.get("response") or {}
        lines.append(f"{answer.get('status', '?')} {answer.get('location', '')}".strip())
    return lines
