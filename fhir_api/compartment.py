"""Which patient a resource belongs to (the Patient compartment, STU3
https://hl7.org/fhir/STU3/compartmentdefinition-patient.html).

The resource server only ever serves a token's own patient's data (MedMij core.rscint.203: the
patient follows from the OAuth data, never from request parameters), so every clinical resource
is stored with the Patient it belongs to. Paths are tried in order; the first Patient reference
decides. Types listed in ``OWNED`` must have one; ``OPTIONALLY_OWNED`` may (a Device with
``patient`` is that patient's, a Device without is shared; a Specimen taken from the patient is the
patient's, a Specimen whose ``subject`` is a Device, Substance or Group — an environmental sample,
STU3 specimen.html "subject: Where the specimen came from" — is shared and reachable through the
patient's Observations that refer to it). Everything else is shared data (Practitioner,
Organization, Medication, Questionnaire, Binary, ...).
"""

from __future__ import annotations

import typing as t

from .errors import InvalidResource
from .search.values import parse_reference
from .walk import resolve

OWNED: dict[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("patient",),
    "Appointment": ("participant.actor",),
    "CarePlan": ("subject",),
    "CareTeam": ("subject",),
    "Composition": ("subject",),
    "Condition": ("subject",),
    "Consent": ("patient",),
    "Coverage": ("beneficiary", "subscriber", "policyHolder", "payor"),
    "DeviceRequest": ("subject",),
    "DeviceUseStatement": ("subject",),
    "DiagnosticReport": ("subject",),
    "DocumentManifest": ("subject",),
    "DocumentReference": ("subject",),
    "Encounter": ("subject",),
    "EpisodeOfCare": ("patient",),
    "Flag": ("subject",),
    "Goal": ("subject",),
    "Immunization": ("patient",),
    "ImmunizationRecommendation": ("patient",),
    "List": ("subject",),
    "MedicationAdministration": ("subject",),
    "MedicationDispense": ("subject",),
    "MedicationRequest": ("subject",),
    "MedicationStatement": ("subject",),
    "NutritionOrder": ("patient",),
    "Observation": ("subject",),
    "Procedure": ("subject",),
    "ProcedureRequest": ("subject",),
    "QuestionnaireResponse": ("subject", "source", "author"),
    "ReferralRequest": ("subject",),
    "RelatedPerson": ("patient",),
    "Task": ("for", "owner", "input.valueReference"),
}
OPTIONALLY_OWNED: dict[str, tuple[str, ...]] = {"Device": ("patient",), "Specimen": ("subject",)}


def owner(resource: dict[str, t.Any], local_bases: t.Sequence[str] = ()) -> str | None:
    """The logical id of the Patient ``resource`` belongs to, or None for shared resources.

    Raises :class:`InvalidResource` when a resource of a patient-owned type names no patient.
    """
    type_name = resource["resourceType"]
    if type_name == "Patient":
        return resource.get("id")
    paths = OWNED.get(type_name) or OPTIONALLY_OWNED.get(type_name)
    if not paths:
        return None
    for path in paths:
        for _, value in resolve(resource, path):
            if isinstance(value, dict):
                target = parse_reference(value.get("reference", ""), local_bases)
                if target is not None and target.type == "Patient":
                    return target.id
    if type_name in OWNED:
        raise InvalidResource(
            f"{type_name} must refer to the Patient it belongs to ({' or '.join(paths)})"
        )
    return None


def is_patient_data(type_name: str) -> bool:
    """True for types whose resources always belong to one patient."""
    return type_name == "Patient" or type_name in OWNED
