"""Readable one-line summaries of FHIR STU3 resources for people (PGO simulator, hospital queue page).

Only presentation: :func:`summary` takes the text from the resource itself (``CodeableConcept.text``
or the first ``Coding.display``, FHIR STU3 datatypes §2.24.0.x "Using text and display"), so any
patient's data reads the same way. The one exception is :data:`ZIB_NAMES`: the Dutch zib names of the
common measurements (zib 2017 vital signs, fhir-content.md §5.1), for hospital staff, because the
codes' displays in the data are English LOINC names ("Blood pressure panel with all children optional").
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


LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
#: (system, code) → Dutch zib name of a measurement or one of its parts (zib BloodPressure, BodyWeight,
#: BodyHeight, BodyTemperature, HeartRate, PulseRate, O2Saturation, Respiration, HeadCircumference,
#: Glucose; the codes of fhir_api.vitalsigns)
ZIB_NAMES: dict[tuple[str, str], str] = {
    (LOINC, "85354-9"): "Bloeddruk", (LOINC, "8480-6"): "Systolische bloeddruk",
    (LOINC, "8462-4"): "Diastolische bloeddruk", (LOINC, "8478-0"): "Gemiddelde bloeddruk",
    (LOINC, "29463-7"): "Lichaamsgewicht", (LOINC, "3141-9"): "Lichaamsgewicht",
    (LOINC, "8302-2"): "Lichaamslengte", (LOINC, "8306-3"): "Lichaamslengte (liggend)",
    (LOINC, "8308-9"): "Lichaamslengte (staand)", (LOINC, "8310-5"): "Lichaamstemperatuur",
    (LOINC, "8867-4"): "Hartfrequentie", (LOINC, "8893-0"): "Polsfrequentie",
    (LOINC, "59408-5"): "Zuurstofsaturatie", (LOINC, "2708-6"): "Zuurstofsaturatie",
    (SNOMED, "422834003"): "Ademhaling", (LOINC, "9279-1"): "Ademfrequentie",
    (LOINC, "8287-5"): "Schedelomvang", (LOINC, "39156-5"): "Body mass index",
    (LOINC, "14760-3"): "Bloedglucose", (LOINC, "14743-9"): "Bloedglucose", (LOINC, "14770-2"): "Bloedglucose",
    (LOINC, "15074-8"): "Bloedglucose", (LOINC, "2339-0"): "Bloedglucose",
}


def zib_name(value: t.Any) -> str:
    """The Dutch zib name of a measurement's ``code`` (CodeableConcept), or "" when it is not a common one."""
    if not isinstance(value, dict):
        return ""
    for coding in value.get("coding") or []:
        name = ZIB_NAMES.get((str(coding.get("system", "")), str(coding.get("code", ""))))
        if name:
            return name
    return ""


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
