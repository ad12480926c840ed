"""What a return-queue item holds, as hospital staff read it on the queue page (``/ziekenhuis``).

Only presentation, in Dutch, in the local time zone:

* the patient as staff match them in their own record: name, birth date and BSN (the BSN from the
  encrypted staff copy, :func:`dvza.identity.bsn_for`), next to the FHIR id;
* the PGO by its OCL display name (``OAuthclientOrganisatienaam``), its hostname as detail;
* each submitted resource: a measurement by its zib name (:data:`dvza.readable.ZIB_NAMES`) with value
  and measurement time; questionnaire answers as question → answer, the questions taken from the
  Questionnaire the answers refer to (STU3 QuestionnaireResponse.item.linkId ↔ Questionnaire.item);
  a document by its title; a questionnaire task by its Dutch status;
* the item's status in words, with who and when.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_api.models import ResourceRow
from fhir_api.models import TokenIndex
from fhir_api.search.values import parse_reference
from fhir_api.store import ResourceStore
from oauth.presentation import fhir_time
from oauth.presentation import local_date
from oauth.presentation import local_time

from .. import identity
from ..readable import concept
from ..readable import human_name
from ..readable import quantity
from ..readable import summary
from ..readable import zib_name

#: STU3 task-status codes in Dutch (https://hl7.org/fhir/STU3/valueset-task-status.html)
TASK_STATUS = {"draft": "concept", "requested": "gevraagd", "received": "ontvangen", "accepted": "geaccepteerd",
               "rejected": "geweigerd", "ready": "klaar", "cancelled": "geannuleerd", "in-progress": "bezig",
               "on-hold": "gepauzeerd", "failed": "mislukt", "completed": "ingevuld", "entered-in-error": "foutief"}


@dataclass(frozen=True, slots=True)
class PatientCard:
    patient_id: str
    name: str
    birth_date: str
    bsn: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    answer: str
    depth: int = 0
    group: bool = False


@dataclass(slots=True)
class Entry:
    """One submitted resource, readable: a title, a value, when, and answers for a questionnaire."""

    kind: str
    title: str
    value: str = ""
    when: str = ""
    details: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)


def patient_card(session: Session, patient_id: str, cipher: identity.BsnCipher | None) -> PatientCard:
    patient = ResourceStore(session).load("Patient", patient_id) or {}
    return PatientCard(patient_id, human_name(patient.get("name")) or "onbekend",
                       local_date(patient.get("birthDate")) or "onbekend",
                       identity.bsn_for(session, cipher, patient_id))


def who(consumer: str | None) -> str:
    """``web:anna`` (the queue page) → ``anna``; a queue API consumer → ``systeem <name>``."""
    if not consumer:
        return ""
    return consumer[4:] if consumer.startswith("web:") else f"systeem {consumer}"


def status_text(item: t.Any, zone: str) -> str:
    """The item's status as a sentence: who has it or decided it, and when."""
    if item.status == "claimed":
        until = f" (tot {local_time(item.claimed_until, zone)})" if item.claimed_until else ""
        return f"In behandeling bij {who(item.claimed_by)}{until}"
    if item.status == "accepted":
        return f"Opgenomen in dossier door {who(item.decided_by)} op {local_time(item.decided_at, zone)}"
    if item.status == "rejected":
        return f"Afgewezen door {who(item.decided_by)} op {local_time(item.decided_at, zone)}"
    return "Nieuw"


def entries(session: Session, resources: t.Iterable[dict[str, t.Any]], zone: str,
            local_bases: t.Sequence[str] = ()) -> list[Entry]:
    """The submitted resources for the item page (the patient's own Patient entry is left out: the
    page shows the patient from the record)."""
    found = []
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Patient":
            continue
        if kind == "Observation":
            found.append(_observation(resource, zone))
        elif kind == "QuestionnaireResponse":
            found.append(_answers(session, resource, zone, local_bases))
        elif kind == "Task":
            found.append(Entry("Task", "Vragenlijsttaak", TASK_STATUS.get(str(resource.get("status")),
                                                                          str(resource.get("status", ""))),
                               fhir_time(resource.get("lastModified") or resource.get("authoredOn"), zone),
                               [str(resource["description"])] if resource.get("description") else []))
        elif kind == "DocumentReference":
            attachment = next((c.get("attachment") or {} for c in resource.get("content", [])), {})
            found.append(Entry("DocumentReference", str(resource.get("description") or attachment.get("title")
                                                        or concept(resource.get("type")) or "Document"),
                               str(attachment.get("contentType", "")),
                               fhir_time(resource.get("created") or resource.get("indexed"), zone)))
        elif kind == "Binary":
            size = len(str(resource.get("content", ""))) * 3 // 4
            found.append(Entry("Binary", "Bestand", f"{resource.get('contentType', '')}, {max(1, size // 1024)} kB"))
        else:
            found.append(Entry(str(kind), summary(resource)))
    return found


def _observation(resource: dict[str, t.Any], zone: str) -> Entry:
    when = resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get("start") \
        or resource.get("issued")
    value = quantity(resource.get("valueQuantity")) or concept(resource.get("valueCodeableConcept")) \
        or str(resource.get("valueString", ""))
    details = [f"{zib_name(c.get('code')) or concept(c.get('code'))}: {quantity(c.get('valueQuantity'))}"
               for c in resource.get("component") or [] if c.get("valueQuantity")]
    if not value and len(details) == 2 and zib_name(resource.get("code")) == "Bloeddruk":
        value = "{} mmHg".format("/".join(d.split(": ", 1)[1].split(" ")[0] for d in details))
    return Entry("Observation", zib_name(resource.get("code")) or concept(resource.get("code")) or "Meting",
                 value, fhir_time(when, zone), details)


# ------------------------------------------------------------------------------- questionnaires
def questionnaire_of(session: Session, reference: str, local_bases: t.Sequence[str] = ()) -> dict[str, t.Any] | None:
    """The Questionnaire answers refer to: a local reference, or a canonical ``Questionnaire.url``."""
    store = ResourceStore(session, local_bases=local_bases)
    target = parse_reference(reference, store.local_bases) if reference else None
    if target is not None and target.type == "Questionnaire":
        return store.load("Questionnaire", target.id)
    if not reference:
        return None
    pk = session.scalar(select(ResourceRow.pk).join(TokenIndex, TokenIndex.resource_pk == ResourceRow.pk).where(
        ResourceRow.resource_type == "Questionnaire", TokenIndex.param == "url",
        TokenIndex.code == reference.split("|")[0]).limit(1))
    if pk is None:
        return None
    row = session.get(ResourceRow, pk)
    return store.load("Questionnaire", row.logical_id) if row is not None else None


def _answers(session: Session, response: dict[str, t.Any], zone: str, local_bases: t.Sequence[str]) -> Entry:
    reference = response.get("questionnaire") or {}
    questionnaire = questionnaire_of(session, str(reference.get("reference", "")), local_bases) or {}
    title = questionnaire.get("title") or questionnaire.get("name") or reference.get("display") or "Vragenlijst"
    title = str(title).removeprefix("Vragenlijst: ")
    questions: dict[str, dict[str, t.Any]] = {}
    _index(questionnaire.get("item") or [], questions)
    answers: list[Answer] = []
    _walk(response.get("item") or [], questions, answers, 0, zone)
    return Entry("QuestionnaireResponse", f"Vragenlijst: {title}", "", fhir_time(response.get("authored"), zone),
                 answers=answers)


def _index(items: list[dict[str, t.Any]], into: dict[str, dict[str, t.Any]]) -> None:
    for item in items:
        into[str(item.get("linkId"))] = item
        _index(item.get("item") or [], into)


def _walk(items: list[dict[str, t.Any]], questions: dict[str, dict[str, t.Any]], out: list[Answer], depth: int,
          zone: str) -> None:
    for item in items:
        definition = questions.get(str(item.get("linkId")), {})
        text = str(item.get("text") or definition.get("text") or f"Vraag {item.get('linkId')}")
        given = [_answer_text(a, definition, zone) for a in item.get("answer") or []]
        if given:
            out.append(Answer(text, ", ".join(given), depth))
        elif item.get("item"):
            out.append(Answer(text, "", depth, group=True))
        for answer in item.get("answer") or []:  # questions nested under an answer (STU3)
            _walk(answer.get("item") or [], questions, out, depth + 1, zone)
        _walk(item.get("item") or [], questions, out, depth + 1, zone)


def _answer_text(answer: dict[str, t.Any], definition: dict[str, t.Any], zone: str) -> str:
    if "valueCoding" in answer:
        coding = answer["valueCoding"]
        if coding.get("display"):
            return str(coding["display"])
        for option in definition.get("option") or []:  # the option's display in the Questionnaire
            known = option.get("valueCoding") or {}
            if known.get("code") == coding.get("code") and known.get("display"):
                return str(known["display"])
        return str(coding.get("code", ""))
    if "valueBoolean" in answer:
        return "Ja" if answer["valueBoolean"] else "Nee"
    if "valueDate" in answer:
        return local_date(answer["valueDate"])
    if "valueDateTime" in answer:
        return fhir_time(answer["valueDateTime"], zone)
    if "valueQuantity" in answer:
        return quantity(answer["valueQuantity"])
    if "valueAttachment" in answer:
        return str(answer["valueAttachment"].get("title") or "bijlage")
    if "valueReference" in answer:
        return str(answer["valueReference"].get("display") or answer["valueReference"].get("reference", ""))
    for key in ("valueString", "valueInteger", "valueDecimal", "valueTime", "valueUri"):
        if key in answer:
            return str(answer[key])
    return ""
