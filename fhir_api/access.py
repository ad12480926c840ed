"""What a request may see: the access grant behind its token, and the gegevensdienst profiles.

The resource server asks the authorization server exactly one thing — "who is this token for,
which gegevensdiensten" — through :class:`AccessResolver` (implemented by ``oauth``). The answer is
an :class:`AccessGrant`. MedMij core.rscint.203: the patient is known from the OAuth data only;
R1.0 "De Resource Server controleert of het ontvangen token recht geeft op de gevraagde resources".

Gegevensdienst ids are configuration (medmij-protocol.md §6: "load the IDs from configuration or
the GNL, never hard-code them"): the app maps each id to one of the :data:`PROFILES` below, which
describe what an information standard reads and writes. A profile's ``read`` maps resource types
to extra search filters (e.g. Zelfmetingen reads only vital-sign Observations).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field

if t.TYPE_CHECKING:
    from flask import Request


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """The facts behind a valid access token."""

    patient_id: str
    gegevensdiensten: frozenset[str]
    client_id: str | None = None
    #: short, non-secret token reference for audit records (a prefix of the token hash)
    token_ref: str = ""
    scope: str = ""
    #: True for qualification-mode tokens (Nictiz QualificationTokens.json)
    qualification: bool = False
    #: opaque to this package: what the audit sink confirms in the statement that writes a read's record
    #: (the token is still valid as read: :class:`fhir_api.errors.GrantLapsed` otherwise); None: nothing to confirm
    recheck: t.Any = None


class AccessResolver(t.Protocol):
    """Implemented by the authorization server (``oauth``)."""

    def resolve(self, request: Request) -> AccessGrant:
        """Return the grant of the request's bearer token.

        Raises ``fhir_api.errors.Unauthorized`` (no/invalid/expired token, wrong certificate
        binding) or ``fhir_api.errors.Forbidden``.
        """
        ...

    def forget(self, request: Request) -> None:
        """The grant of this request's token lapsed (``GrantLapsed``): drop whatever was kept of it."""
        ...


Filters = tuple[tuple[str, str], ...]  # AND of (search parameter, value) pairs
#: a profile's rule for one resource type: alternatives (OR) of filter sets; ALL = no restriction
ALL: tuple[Filters, ...] = ((),)


@dataclass(frozen=True, slots=True)
class Profile:
    """What one information standard (and so a gegevensdienst) lets the PGO do."""

    name: str
    description: str
    #: resource type -> alternative filter sets the resources must match (ALL: every resource)
    read: dict[str, tuple[Filters, ...]] = field(default_factory=dict)
    #: kinds of module-2 writes: "vitalsigns", "documents", "questionnaire-answers", "task-status"
    write: frozenset[str] = frozenset()
    #: MedMij use case: "verzamelen" (the PGO collects) or "delen" (the PGO sends)
    usecase: str = "verzamelen"


VITAL_SIGNS = ("category", "http://hl7.org/fhir/observation-category|vital-signs")
#: blood glucose self-measurements carry the laboratory-finding category, so they are matched by code:
#: one filter set per code (a filter value is one token, not a comma list; the sets are OR-ed)
BLOOD_GLUCOSE: tuple[Filters, ...] = tuple(
    (("code", f"http://loinc.org|{c}"),) for c in ("14760-3", "14743-9", "14770-2", "15074-8", "2339-0"))
QUESTIONNAIRE_TASK = ("code", "http://loinc.org|74468-0")

_BGZ_TYPES = (
    "Patient", "Coverage", "Consent", "Observation", "Condition", "NutritionOrder", "Flag",
    "AllergyIntolerance", "MedicationStatement", "MedicationRequest", "MedicationDispense",
    "DeviceUseStatement", "Device", "Immunization", "Procedure", "Encounter", "ProcedureRequest",
    "ImmunizationRecommendation", "Appointment", "DeviceRequest", "Specimen", "RelatedPerson",
)

PROFILES: dict[str, Profile] = {
    "bgz": Profile("bgz", "Basisgegevensset Zorg (BgZ 3.x), Verzamelen", {t_: ALL for t_ in _BGZ_TYPES}),
    "pdfa": Profile(
        "pdfa", "Documenten (PDF/A 3.x), Verzamelen",
        {"Patient": ALL, "DocumentReference": ALL, "DocumentManifest": ALL},
    ),
    "documents-send": Profile(
        "documents-send", "Documenten (PDF/A 3.x), Delen", {"Patient": ALL}, frozenset({"documents"}), "delen"
    ),
    "vitalsigns-read": Profile(
        "vitalsigns-read", "Meetwaarden vitale functies (Zelfmetingen 2.x), Verzamelen",
        {"Patient": ALL, "Observation": ((VITAL_SIGNS,), *BLOOD_GLUCOSE)},
    ),
    "vitalsigns-send": Profile(
        "vitalsigns-send", "Meetwaarden vitale functies (Zelfmetingen 2.x), Delen",
        {"Patient": ALL}, frozenset({"vitalsigns"}), "delen",
    ),
    "questionnaires-read": Profile(
        "questionnaires-read", "Verwijzing naar vragenlijst (Vragenlijsten 2.x), Verzamelen",
        {"Patient": ALL, "Task": ((QUESTIONNAIRE_TASK,),), "QuestionnaireResponse": ALL}, frozenset({"task-status"}),
    ),
    "questionnaires-send": Profile(
        "questionnaires-send", "Antwoorden op vragenlijst (Vragenlijsten 2.x), Delen",
        {"Patient": ALL, "Task": ((QUESTIONNAIRE_TASK,),), "QuestionnaireResponse": ALL},
        frozenset({"questionnaire-answers", "task-status"}), "delen",
    ),
}

#: The VIPP 5 gegevensdiensten (medmij-protocol.md §6) — the default of DVZA_GEGEVENSDIENSTEN.
DEFAULT_GEGEVENSDIENSTEN: dict[str, str] = {
    "48": "bgz",
    "51": "pdfa",
    "52": "vitalsigns-read",
    "53": "vitalsigns-send",
    "57": "documents-send",
    "59": "questionnaires-read",
    "60": "questionnaires-send",
}


@dataclass(frozen=True, slots=True)
class Scope:
    """The combined read/write rights of a grant's gegevensdiensten."""

    #: resource type -> alternative filter sets (OR); an empty tuple inside means "no filter"
    read: dict[str, tuple[Filters, ...]]
    write: frozenset[str]

    def can_read(self, resource_type: str) -> bool:
        return resource_type in self.read

    def filters(self, resource_type: str) -> tuple[Filters, ...] | None:
        """None when every resource of the type is visible, else the OR-ed filter sets."""
        alternatives = self.read.get(resource_type, ())
        if any(len(f) == 0 for f in alternatives):
            return None
        return alternatives


def scope_for(gegevensdiensten: t.Iterable[str], mapping: t.Mapping[str, str]) -> Scope:
    """Combine the profiles of ``gegevensdiensten`` (unknown ids contribute nothing)."""
    read: dict[str, list[Filters]] = {}
    write: set[str] = set()
    for dienst in gegevensdiensten:
        profile = PROFILES.get(mapping.get(dienst, ""))
        if profile is None:
            continue
        for type_name, alternatives in profile.read.items():
            read.setdefault(type_name, []).extend(alternatives)
        write |= profile.write
    return Scope({k: tuple(v) for k, v in read.items()}, frozenset(write))
