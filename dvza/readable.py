"""Readable one-line summaries of FHIR STU3 resources for people (PGO simulator, hospital queue page).

Only presentation: the text comes from the resource itself (``CodeableConcept.text`` or the first
``Coding.display``, FHIR STU3 datatypes §2.24.0.x "Using text and display"), so any patient's data
reads the same way; nothing is looked up per code.
"""

from __future__ import annotations

import typing as t

#: Dutch names of the resource types a PGO meets in BgZ, PDF/A and Module 2.
TYPE_NAMES = {
    "Patient": "Patiënt", "Practitioner": "Zorgverlener", "PractitionerRole": "Rol zorgverlener",
    "Organization": "Organisatie", "Location": "Locatie", "RelatedPerson": "Contactpersoon",
    "Coverage": "Verzekering", "Consent": "Wilsverklaring", "Observation": "Meting of bevinding",
    "Condition": "Probleem", "NutritionOrder": "Voedingsadvies", "Flag": "Alert",
    "AllergyIntolerance": "Allergie", "MedicationStatement": "Medicatiegebruik",
    "MedicationRequest": "Medicatieafspraak", "MedicationDispense": "Toedieningsafspraak",
    "Medication": "Geneesmiddel", "DeviceUseStatement": "Medisch hulpmiddel", "Device": "Hulpmiddel",
    "Immunization": "Vaccinatie", "Specimen": "Monster", "Procedure": "Verrichting", "Encounter": "Contact",
    "ProcedureRequest": "Geplande verrichting", "ImmunizationRecommendation": "Geplande vaccinatie",
    "Appointment": "Afspraak", "DeviceRequest": "Gepland hulpmiddel", "DocumentReference": "Document",
    "DocumentManifest": "Documentenset", "Binary": "Bestand", "Task": "Taak", "Questionnaire": "Vragenlijst",
    "QuestionnaireResponse": "Antwoorden vragenlijst",
}


def concept(value: t.Any) -> str:
    """The text of a CodeableConcept or Coding: ``text``, else the first ``display``, else the code."""
    if not isinstance(value, dict):
        return ""
    if value.get("text"):
        return str(value["text"])
    codings = value.get("coding") or ([value] if "code" in value else [])
    for coding in codings:
        if coding.get("display"):
            return str(coding["display"])
    for coding in codings:
        if coding.get("code"):
            return str(coding["code"])
    return ""


def quantity(value: t.Any) -> str:
    if not isinstance(value, dict) or value.get("value") is None:
        return ""
    unit = value.get("unit") or value.get("code") or ""
    return f"{value['value']} {unit}".strip()


def human_name(names: t.Any) -> str:
    for name in names or []:
        if name.get("text"):
            return str(name["text"])
        given = " ".join(name.get("given") or [])
        family = name.get("family") or ""
        full = f"{given} {family}".strip()
        if full:
            return full
    return ""


def _value(resource: dict[str, t.Any]) -> str:
    for key, render in (("valueQuantity", quantity), ("valueCodeableConcept", concept)):
        if key in resource:
            return render(resource[key])
    for key in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if key in resource:
            return str(resource[key])
    parts = [f"{concept(c.get('code'))}: {_value(c)}" for c in resource.get("component") or [] if _value(c)]
    return ", ".join(parts)


def _when(resource: dict[str, t.Any]) -> str:
    for key in ("effectiveDateTime", "occurrenceDateTime", "date", "authoredOn", "onsetDateTime", "recordedDate",
                "assertedDate", "dateTime", "indexed", "created", "start", "authored", "dateWritten"):
        if isinstance(resource.get(key), str):
            return str(resource[key])[:10]
    for key in ("effectivePeriod", "performedPeriod", "period"):
        period = resource.get(key)
        if isinstance(period, dict) and period.get("start"):
            return str(period["start"])[:10]
    return ""


def summary(resource: dict[str, t.Any]) -> str:
    """``<what>[: <value>][ (<date>)]`` in the resource's own words."""
    kind = resource.get("resourceType", "")
    if kind in ("Patient", "Practitioner", "RelatedPerson"):
        what = human_name(resource.get("name")) or TYPE_NAMES.get(kind, kind)
        extra = resource.get("birthDate", "")
        return f"{what} (geboren {extra})" if extra else what
    if kind in ("Organization", "Location"):
        return str(resource.get("name") or TYPE_NAMES.get(kind, kind))
    what = ""
    for key in ("code", "vaccineCode", "medicationCodeableConcept", "type", "category", "class", "reason",
                "description", "title", "name"):
        value = resource.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        text = value if isinstance(value, str) else concept(value)
        if text:
            what = text
            break
    if kind == "DocumentReference" and resource.get("description"):
        what = str(resource["description"])
    if kind == "Task" and resource.get("description"):
        what = str(resource["description"])
    what = what or TYPE_NAMES.get(kind, kind)
    value = _value(resource) if kind == "Observation" else ""
    when = _when(resource)
    text = f"{what}: {value}" if value else what
    return f"{text} ({when})" if when else text
