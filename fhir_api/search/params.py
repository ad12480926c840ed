"""The search parameters this server supports, per resource type (FHIR STU3 search.html).

Definitions follow the STU3 SearchParameter resources (name, type, expression) for the resource
types MedMij VIPP 5 serves, plus ``MedicationDispense.category`` which the MedMij BgZ uses
(fhir-content.md §2.1 #16). Paths use :func:`fhir_api.walk.resolve` syntax (dotted, ``[x]`` for
choice elements). ``targets`` restricts a reference parameter to resource types, as STU3 does for
``patient`` (= ``subject`` where the target is a Patient).

The CapabilityStatement is generated from this table, so it always tells what is implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field


@dataclass(frozen=True, slots=True)
class SearchParam:
    name: str
    type: str  # token | date | reference | string | uri
    paths: tuple[str, ...]
    targets: tuple[str, ...] = field(default=())
    documentation: str = ""


def _tok(name: str, *paths: str) -> SearchParam:
    return SearchParam(name, "token", paths)


def _date(name: str, *paths: str) -> SearchParam:
    return SearchParam(name, "date", paths)


def _ref(name: str, *paths: str, targets: tuple[str, ...] = ()) -> SearchParam:
    return SearchParam(name, "reference", paths, targets)


def _str(name: str, *paths: str) -> SearchParam:
    return SearchParam(name, "string", paths)


def _uri(name: str, *paths: str) -> SearchParam:
    return SearchParam(name, "uri", paths)


PATIENT = ("Patient",)

#: Parameters valid on every resource type (search.html#all).
COMMON: tuple[SearchParam, ...] = (
    _tok("_id", "id"),
    _date("_lastUpdated", "meta.lastUpdated"),
    _uri("_profile", "meta.profile"),
    _tok("_tag", "meta.tag"),
    _tok("_security", "meta.security"),
)

_BY_TYPE: dict[str, tuple[SearchParam, ...]] = {
    "Patient": (
        _tok("identifier", "identifier"), _str("name", "name"), _str("family", "name.family"),
        _str("given", "name.given"), _tok("gender", "gender"), _date("birthdate", "birthDate"),
        _ref("general-practitioner", "generalPractitioner"), _ref("organization", "managingOrganization"),
        _tok("active", "active"), _str("address", "address"), _tok("telecom", "telecom"),
    ),
    "Practitioner": (
        _tok("identifier", "identifier"), _str("name", "name"), _str("family", "name.family"),
        _str("given", "name.given"), _tok("active", "active"),
    ),
    "PractitionerRole": (
        _tok("identifier", "identifier"), _ref("practitioner", "practitioner"),
        _ref("organization", "organization"), _tok("role", "code"), _tok("specialty", "specialty"),
        _tok("active", "active"),
    ),
    "Organization": (
        _tok("identifier", "identifier"), _str("name", "name"), _tok("type", "type"),
        _tok("active", "active"), _ref("partof", "partOf"),
    ),
    "Location": (
        _tok("identifier", "identifier"), _str("name", "name"), _tok("type", "type"),
        _ref("organization", "managingOrganization"), _tok("status", "status"),
    ),
    "RelatedPerson": (
        _tok("identifier", "identifier"), _ref("patient", "patient", targets=PATIENT), _str("name", "name"),
    ),
    "Medication": (_tok("code", "code"), _tok("form", "form"), _ref("manufacturer", "manufacturer")),
    "Observation": (
        _tok("code", "code"), _tok("category", "category"), _tok("status", "status"),
        _date("date", "effective[x]"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("related-target", "related.target"),
        _tok("related-type", "related.type"), _ref("specimen", "specimen"), _ref("based-on", "basedOn"),
        _ref("performer", "performer"), _tok("identifier", "identifier"),
        _tok("component-code", "component.code"), _ref("context", "context"), _ref("device", "device"),
        _tok("value-concept", "valueCodeableConcept"), _tok("method", "method"),
    ),
    "Condition": (
        _tok("code", "code"), _tok("category", "category"), _tok("clinical-status", "clinicalStatus"),
        _tok("verification-status", "verificationStatus"), _date("onset-date", "onset[x]"),
        _date("asserted-date", "assertedDate"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("asserter", "asserter"),
        _tok("identifier", "identifier"), _tok("severity", "severity"), _tok("body-site", "bodySite"),
        _ref("context", "context"),
    ),
    "Coverage": (
        _ref("beneficiary", "beneficiary"), _ref("payor", "payor"), _tok("status", "status"),
        _tok("type", "type"), _ref("subscriber", "subscriber"), _ref("policy-holder", "policyHolder"),
        _tok("identifier", "identifier"),
    ),
    "Consent": (
        _tok("category", "category"), _tok("status", "status"), _ref("patient", "patient"),
        _date("period", "period"), _ref("actor", "actor.reference"), _tok("identifier", "identifier"),
        _date("date", "dateTime"), _ref("organization", "organization"), _tok("action", "action"),
        _ref("data", "data.reference"), _tok("purpose", "purpose"),
    ),
    "Flag": (
        _ref("subject", "subject"), _ref("patient", "subject", targets=PATIENT), _date("date", "period"),
        _ref("author", "author"), _tok("identifier", "identifier"), _tok("status", "status"),
        _tok("category", "category"), _tok("code", "code"),
    ),
    "AllergyIntolerance": (
        _tok("category", "category"), _tok("clinical-status", "clinicalStatus"),
        _tok("verification-status", "verificationStatus"), _tok("code", "code"),
        _tok("criticality", "criticality"), _tok("type", "type"), _ref("patient", "patient"),
        _date("date", "assertedDate"), _date("onset", "onset[x]"), _ref("asserter", "asserter"),
        _ref("recorder", "recorder"), _tok("identifier", "identifier"),
        _date("last-date", "lastOccurrence"),
    ),
    "MedicationStatement": (
        _tok("category", "category"), _tok("status", "status"), _tok("code", "medicationCodeableConcept"),
        _ref("medication", "medicationReference"), _date("effective", "effective[x]"),
        _ref("subject", "subject"), _ref("patient", "subject", targets=PATIENT), _ref("context", "context"),
        _tok("identifier", "identifier"), _ref("part-of", "partOf"), _ref("source", "informationSource"),
    ),
    "MedicationRequest": (
        _tok("category", "category"), _tok("status", "status"), _tok("intent", "intent"),
        _tok("code", "medicationCodeableConcept"), _ref("medication", "medicationReference"),
        _date("authoredon", "authoredOn"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("requester", "requester.agent"),
        _tok("identifier", "identifier"), _ref("context", "context"), _tok("priority", "priority"),
    ),
    "MedicationDispense": (
        _tok("category", "category"), _tok("status", "status"), _tok("code", "medicationCodeableConcept"),
        _ref("medication", "medicationReference"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("performer", "performer.actor"),
        _date("whenhandedover", "whenHandedOver"), _date("whenprepared", "whenPrepared"),
        _tok("identifier", "identifier"), _ref("context", "context"),
        _ref("prescription", "authorizingPrescription"),
    ),
    "DeviceUseStatement": (
        _ref("device", "device"), _ref("subject", "subject"), _ref("patient", "subject", targets=PATIENT),
        _tok("identifier", "identifier"),
    ),
    "Device": (
        _tok("type", "type"), _ref("patient", "patient"), _tok("identifier", "identifier"),
        _str("manufacturer", "manufacturer"), _str("model", "model"), _ref("organization", "owner"),
        _tok("status", "status"),
    ),
    "Immunization": (
        _tok("status", "status"), _date("date", "date"), _tok("vaccine-code", "vaccineCode"),
        _ref("patient", "patient"), _tok("notgiven", "notGiven"), _tok("identifier", "identifier"),
        _ref("practitioner", "practitioner.actor"), _ref("manufacturer", "manufacturer"),
        _str("lot-number", "lotNumber"),
    ),
    "ImmunizationRecommendation": (
        _ref("patient", "patient"), _date("date", "recommendation.date"),
        _tok("vaccine-type", "recommendation.vaccineCode"), _tok("status", "recommendation.forecastStatus"),
        _tok("identifier", "identifier"),
    ),
    "Procedure": (
        _tok("category", "category"), _tok("code", "code"), _tok("status", "status"),
        _date("date", "performed[x]"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("performer", "performer.actor"),
        _tok("identifier", "identifier"), _ref("context", "context"), _ref("based-on", "basedOn"),
        _ref("part-of", "partOf"), _ref("location", "location"),
    ),
    "Encounter": (
        _tok("class", "class"), _tok("status", "status"), _tok("type", "type"), _date("date", "period"),
        _ref("subject", "subject"), _ref("patient", "subject", targets=PATIENT),
        _tok("identifier", "identifier"), _ref("participant", "participant.individual"),
        _ref("service-provider", "serviceProvider"), _tok("reason", "reason"),
        _ref("diagnosis", "diagnosis.condition"), _ref("episodeofcare", "episodeOfCare"),
        _ref("location", "location.location"), _ref("incomingreferral", "incomingReferral"),
    ),
    "ProcedureRequest": (
        _tok("status", "status"), _tok("intent", "intent"), _tok("code", "code"),
        _date("occurrence", "occurrence[x]"), _date("authored", "authoredOn"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("requester", "requester.agent"),
        _ref("performer", "performer"), _tok("identifier", "identifier"), _ref("based-on", "basedOn"),
        _tok("priority", "priority"), _ref("context", "context"),
    ),
    "Appointment": (
        _tok("status", "status"), _date("date", "start"), _ref("patient", "participant.actor", targets=PATIENT),
        _ref("actor", "participant.actor"),
        _ref("practitioner", "participant.actor", targets=("Practitioner",)),
        _ref("location", "participant.actor", targets=("Location",)), _tok("identifier", "identifier"),
        _tok("appointment-type", "appointmentType"), _tok("service-type", "serviceType"),
        _tok("part-status", "participant.status"), _ref("incomingreferral", "incomingReferral"),
    ),
    "DeviceRequest": (
        _tok("status", "status"), _tok("intent", "intent"), _tok("code", "codeCodeableConcept"),
        _ref("device", "codeReference"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("requester", "requester.agent"),
        _date("authored-on", "authoredOn"), _date("event-date", "occurrence[x]"),
        _tok("identifier", "identifier"), _ref("based-on", "basedOn"), _ref("performer", "performer"),
    ),
    "NutritionOrder": (
        _tok("status", "status"), _ref("patient", "patient"), _date("datetime", "dateTime"),
        _ref("provider", "orderer"), _tok("identifier", "identifier"), _ref("encounter", "encounter"),
        _tok("formula", "enteralFormula.baseFormulaType"), _tok("oraldiet", "oralDiet.type"),
        _tok("supplement", "supplement.type"),
    ),
    "Specimen": (
        _tok("type", "type"), _ref("subject", "subject"), _ref("patient", "subject", targets=PATIENT),
        _date("collected", "collection.collected[x]"), _tok("identifier", "identifier"),
        _tok("accession", "accessionIdentifier"), _ref("parent", "parent"), _tok("status", "status"),
    ),
    "DocumentReference": (
        _tok("status", "status"), _date("indexed", "indexed"), _date("created", "created"),
        _tok("type", "type"), _tok("class", "class"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("author", "author"),
        _ref("custodian", "custodian"), _tok("identifier", "masterIdentifier", "identifier"),
        _tok("securitylabel", "securityLabel"), _ref("related-ref", "context.related.ref"),
        _ref("relatesto", "relatesTo.target"), _date("period", "context.period"),
        _tok("facility", "context.facilityType"), _tok("setting", "context.practiceSetting"),
        _tok("event", "context.event"), _tok("format", "content.format"),
        _tok("language", "content.attachment.language"), _uri("location", "content.attachment.url"),
        _ref("authenticator", "authenticator"), _ref("encounter", "context.encounter"),
    ),
    "DocumentManifest": (
        _tok("status", "status"), _date("created", "created"), _tok("type", "type"),
        _ref("subject", "subject"), _ref("patient", "subject", targets=PATIENT), _ref("author", "author"),
        _tok("identifier", "masterIdentifier", "identifier"), _ref("content-ref", "content.pReference"),
        _ref("recipient", "recipient"), _ref("related-ref", "related.ref"), _uri("source", "source"),
        _str("description", "description"),
    ),
    "Binary": (_tok("contenttype", "contentType"),),
    "Task": (
        _tok("code", "code"), _tok("status", "status"), _ref("owner", "owner"),
        _ref("requester", "requester.agent"), _ref("subject", "for"), _ref("patient", "for", targets=PATIENT),
        _date("authored-on", "authoredOn"), _date("modified", "lastModified"), _ref("based-on", "basedOn"),
        _ref("part-of", "partOf"), _tok("identifier", "identifier"), _tok("intent", "intent"),
        _tok("priority", "priority"), _tok("business-status", "businessStatus"), _ref("focus", "focus"),
        _ref("context", "context"), _date("period", "executionPeriod"), _tok("performer", "performerType"),
        _ref("organization", "requester.onBehalfOf"), _tok("group-identifier", "groupIdentifier"),
    ),
    "Questionnaire": (
        _uri("url", "url"), _tok("status", "status"), _str("name", "name"), _str("title", "title"),
        _tok("version", "version"), _tok("code", "item.code"), _tok("identifier", "identifier"),
        _date("date", "date"), _str("publisher", "publisher"),
    ),
    "QuestionnaireResponse": (
        _tok("status", "status"), _ref("questionnaire", "questionnaire"), _ref("subject", "subject"),
        _ref("patient", "subject", targets=PATIENT), _ref("author", "author"), _date("authored", "authored"),
        _ref("based-on", "basedOn"), _ref("parent", "parent"), _ref("context", "context"),
        _tok("identifier", "identifier"), _ref("source", "source"),
    ),
}

REGISTRY: dict[str, dict[str, SearchParam]] = {
    type_name: {p.name: p for p in (*COMMON, *params)} for type_name, params in _BY_TYPE.items()
}


_COMMON_ONLY: dict[str, SearchParam] = {p.name: p for p in COMMON}


def params_for(resource_type: str) -> dict[str, SearchParam]:
    """Search parameters of ``resource_type`` (common ones included; only those for a type without its own)."""
    return REGISTRY.get(resource_type, _COMMON_ONLY)


def searchable_types() -> frozenset[str]:
    return frozenset(REGISTRY)
