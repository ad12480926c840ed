"""The CapabilityStatement at ``GET [base]/metadata`` (https://hl7.org/fhir/STU3/capabilitystatement.html),
generated from what is actually implemented: the served resource types (union of the configured
gegevensdienst profiles plus the shared types they reference), their search parameters
(:mod:`fhir_api.search.params`), the ``_include`` values the index supports, the write
interactions of the module-2 profiles, and both formats.
"""

from __future__ import annotations

import functools
import typing as t

from . import compartment
from .access import PROFILES
from .search.params import params_for
from .store import now_instant

if t.TYPE_CHECKING:
    from .services import FhirServices

#: Shared (non-patient) types a PGO may read when its patient's resources reference them.
SHARED_READABLE = (
    "Practitioner", "PractitionerRole", "Organization", "Location", "Medication", "Binary", "Questionnaire",
)

_WRITES: dict[str, dict[str, tuple[str, ...]]] = {
    # write kind -> resource type -> interactions
    "vitalsigns": {"Observation": ("create",), "Patient": ()},
    "documents": {"DocumentReference": ("create",), "DocumentManifest": ("create",), "Binary": ("create",)},
    "questionnaire-answers": {"QuestionnaireResponse": ("create",), "Task": ("update",)},
    "task-status": {"Task": ("update",)},
}


def served_types(svc: FhirServices) -> frozenset[str]:
    """The resource types this server serves, from its gegevensdiensten (asked on every request: kept per
    set of profiles)."""
    return _served_types(frozenset(svc.gegevensdiensten.values()))


@functools.lru_cache(maxsize=64)
def _served_types(profile_names: frozenset[str]) -> frozenset[str]:
    types: set[str] = set(SHARED_READABLE)
    for profile_name in profile_names:
        profile = PROFILES.get(profile_name)
        if profile is None:
            continue
        types |= set(profile.read)
        for kind in profile.write:
            types |= set(_WRITES.get(kind, {}))
    return frozenset(types)


def capability_statement(svc: FhirServices, base: str) -> dict[str, t.Any]:
    write_kinds = {kind for name in set(svc.gegevensdiensten.values()) if name in PROFILES
                   for kind in PROFILES[name].write}
    resources = []
    for type_name in sorted(served_types(svc)):
        interactions = {"read"}
        if type_name != "Binary":
            interactions.add("search-type")
        for kind in write_kinds:
            interactions |= set(_WRITES.get(kind, {}).get(type_name, ()))
        params = params_for(type_name)
        reference_params = sorted(p.name for p in params.values() if p.type == "reference")
        entry: dict[str, t.Any] = {
            "type": type_name,
            "interaction": [{"code": code} for code in sorted(interactions)],
            "versioning": "versioned",
            "readHistory": False,
            "updateCreate": svc.test_writes,
            "conditionalCreate": False,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
        }
        if reference_params and type_name != "Binary":
            entry["searchInclude"] = [f"{type_name}:{p}" for p in reference_params]
        if type_name != "Binary" or params:
            entry["searchParam"] = [
                {"name": p.name, "type": p.type, **({"documentation": p.documentation} if p.documentation else {})}
                for p in params.values()
            ]
        if compartment.is_patient_data(type_name) or type_name == "Patient":
            entry["documentation"] = "Only resources of the patient the access token was issued for."
        resources.append(entry)
    rest: dict[str, t.Any] = {
        "mode": "server",
        "documentation": (
            "MedMij resource server. Every request needs 'Authorization: Bearer <token>' (RFC 6750 §2.1); "
            "the token decides the patient and the gegevensdiensten. No patient parameters are needed."
        ),
        "security": {
            "cors": False,
            "service": [{"coding": [{"system": "http://hl7.org/fhir/restful-security-service", "code": "OAuth",
                                     "display": "OAuth"}], "text": "MedMij OAuth 2.0 (bearer tokens)"}],
        },
        "resource": resources,
        "interaction": [{"code": "transaction"}, {"code": "batch"}] if write_kinds else [],
        "operation": [{
            "name": "lastn",
            "definition": {"reference": "http://hl7.org/fhir/OperationDefinition/Observation-lastn",
                           "display": "Last N Observations Query"},
        }],
    }
    if not rest["interaction"]:
        del rest["interaction"]
    return {
        "resourceType": "CapabilityStatement",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/CapabilityStatement"]},
        "url": f"{base}/metadata",
        "name": "MedmijDvzaResourceServer",
        "title": "medmij-dvza FHIR STU3 resource server",
        "status": "active",
        "date": now_instant(),
        "publisher": "medmij-dvza",
        "kind": "instance",
        "software": {"name": svc.software_name, "version": svc.software_version},
        "implementation": {"description": "medmij-dvza reference DVZA", "url": base},
        "fhirVersion": "3.0.2",
        "acceptUnknown": "no",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [rest],
    }
