"""Module 2: what the PGO sends back — self-measurements (53), documents (57), questionnaire
answers and Task status changes (59/60) — as FHIR batch/transaction bundles (http.html#transaction)
or a Task update.

The return queue is a quarantine: *nothing a PGO sends changes what anyone reads until the hospital
accepts it* (MedMij core.rscint.203: the patient and the data follow from the OAuth grant, never
from the request). One submission is one unit (fhir-content.md §3.2, §4.1, §5.3):

* Every new resource gets a server id (``POST``; a client id in ``request.url``/``resource.id`` is
  ignored) and is stored hidden until the hospital accepts the return-queue item; a rejected item
  never appears. ``urn:uuid:``/``urn:oid:`` full URLs are rewritten to the server ids (also
  attachment URLs); references to this server's base become relative.
* ``PUT`` entries are refused — whether or not the id exists, in the same words — except the one
  update the Vragenlijsten flow needs: the patient's own, hospital-created ``Task`` whose status
  change the questionnaire rules allow (fhir-content.md §4.1; :mod:`fhir_api.questionnaires`).
* A submission stays inside its own patient: a reference may point at an entry of the same
  submission, at the token's Patient, or at a resource of that patient the token may read (and, for
  answers, at the Questionnaire of the Task being completed). References to other patients' data,
  to shared resources the PGO did not send in this submission (a Binary, a Practitioner …) or to
  anything unknown are refused alike, so the answer says nothing about what exists. A Binary can
  only be created in a documents submission as the document of one of its DocumentReferences.
* A posted Patient (``POST Patient``) is *matched* to the token's patient, never created: contradicting BSN, birth
  date, gender or family name refuses the submission.
* Everything is validated before anything is written; any problem refuses the whole submission
  with an OperationOutcome and changes nothing (no partial writes). The writes and the queue item
  commit in one transaction. The response is stored with the item: a retry with the same
  ``MedMij-Request-ID`` (core.rscint.201) from the same client gets the same answer and never a
  second copy; a different body under a used id is a 409.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import typing as t
import uuid
from dataclasses import dataclass
from dataclasses import field

from flask import Blueprint
from flask import Response
from flask import request
from sqlalchemy.orm.exc import StaleDataError

from . import compartment
from . import content_rules
from . import fhirjson
from . import formats
from . import questionnaires
from . import vitalsigns
from .access import AccessGrant
from .access import Scope
from .context import audit
from .context import authorize
from .context import base_url
from .context import completed_event
from .context import fhir_response
from .context import local_bases
from .context import read_body
from .context import response_format
from .context import services
from .errors import BusinessRuleViolation
from .errors import Conflict
from .errors import FhirError
from .errors import Forbidden
from .errors import InvalidRequest
from .errors import InvalidResource
from .errors import Issue
from .errors import NotFound
from .errors import PayloadTooLarge
from .references import rewrite_references
from .search import index as search_index
from .search.values import parse_reference
from .services import DuplicateSubmission
from .services import Restore
from .services import Submission
from .store import ResourceStore
from .store import Staged
from .store import StoredRow
from .store import Written
from .store import content_digest
from .store import display_of
from .store import document_issues
from .store import now_instant
from .validation import validate_structure
from .walk import literal_references

KIND_NAMES = {"vitalsigns": "zelfmetingen", "documents": "documenten", "questionnaire-answers": "vragenlijst",
              "task-status": "taakstatus"}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "bundle", post_bundle, methods=["POST"], strict_slashes=False)  # POST [base] (± "/")


# ---------------------------------------------------------------------------------------- entry
def post_bundle() -> Response:
    fmt = response_format()
    audit("transaction")
    grant, scope = authorize()
    data, body_fmt = read_body()
    bundle = formats.parse_body(data, body_fmt)
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("batch", "transaction"):
        raise InvalidRequest("POST [base] takes a Bundle of type batch or transaction")
    audit(bundle["type"])
    entries = bundle.get("entry")
    if entries is not None and not isinstance(entries, list):
        raise InvalidRequest("Bundle.entry must be a list of entries")
    if not entries:
        raise InvalidRequest("The Bundle has no entries")
    if len(entries) > services().limits.max_bundle_entries:
        raise PayloadTooLarge(f"The Bundle has {len(entries)} entries; at most "
                              f"{services().limits.max_bundle_entries} are accepted")
    digest = hashlib.sha256(fhirjson.dumps(bundle).encode()).hexdigest()
    return submit(grant, digest, fmt, lambda session, submission_id: _process_bundle(
        grant, scope, bundle, session, submission_id))


@dataclass(slots=True)
class Outcome:
    """What a submission did, for its queue item and its answer."""

    kind: str
    gegevensdienst: str | None
    resources: list[str]
    summary: str
    response: dict[str, t.Any]
    status: int = 200
    restores: tuple[Restore, ...] = ()


def submit(grant: AccessGrant, digest: str, fmt: str, build: t.Callable[[t.Any, str], Outcome]) -> Response:
    """Run ``build`` and queue its result in one transaction, or replay an earlier identical one."""
    sink = services().submissions
    if sink is None:
        raise Forbidden("This server does not accept submissions")
    session = services().session()
    client = grant.client_id or f"token:{grant.token_ref}"
    request_id = (request.headers.get("MedMij-Request-ID") or "").strip()[:64] or str(uuid.uuid4())
    prior = sink.prior(session, client_id=client, request_id=request_id)
    if prior is not None:
        return _replay(prior, digest, fmt, grant)
    submission_id = str(uuid.uuid4())
    try:
        outcome = build(session, submission_id)
        sink.enqueue(session, Submission(
            id=submission_id, kind=outcome.kind, gegevensdienst=outcome.gegevensdienst, patient_id=grant.patient_id,
            client_id=client, request_id=request_id, correlation_id=request.headers.get("X-Correlation-ID"),
            body_sha256=digest, resources=outcome.resources, summary=outcome.summary, response=outcome.response,
            status_code=outcome.status, restores=outcome.restores,
        ))
        # the audit record commits with the data and the queue item: one transaction, one durable commit
        audit(getattr(request, "_fhir_action", None) or _action(), resource_ids=outcome.resources,
              detail=outcome.summary[:500])
        event = completed_event(outcome.status)
        services().audit.record(event, session=session)
        session.commit()
        event.recorded = True
    except DuplicateSubmission:
        session.rollback()
        prior = sink.prior(session, client_id=client, request_id=request_id)
        if prior is None:  # pragma: no cover - the unique constraint fired, so it exists
            raise
        return _replay(prior, digest, fmt, grant)
    except BaseException:
        session.rollback()
        raise
    return fhir_response(formats.render(outcome.response, fmt), outcome.status, fmt=fmt)


def _action() -> str:
    from flask import g

    event = getattr(g, "fhir_audit", None)
    return event.action if event else "submission"


def _replay(prior: t.Any, digest: str, fmt: str, grant: AccessGrant) -> Response:
    """The stored answer to an earlier identical submission (same PGO, MedMij-Request-ID, body and patient). The
    answer holds that patient's data: another patient's token with the same id and body gets the same refusal
    as a different body, which says nothing about the first (core.rscint.201: one id, one request)."""
    if prior.body_sha256 != digest or prior.patient_id != grant.patient_id:
        raise Conflict("This MedMij-Request-ID was already used for a different submission")
    audit(_action(), detail="replay of an earlier submission with the same MedMij-Request-ID")
    body = fhirjson.loads(prior.response_json)
    return fhir_response(formats.render(body, fmt), prior.status_code, fmt=fmt)


# --------------------------------------------------------------------------------------- bundles
@dataclass(slots=True)
class Planned:
    index: int
    method: str
    resource: dict[str, t.Any]
    full_url: str | None
    target: str  # Type/id after the submission
    is_patient_match: bool = False
    is_update: bool = False
    issues: list[Issue] = field(default_factory=list)
    #: an update: the stored version it was made from (the write succeeds only on that version)
    based_on: StoredRow | None = None


def _process_bundle(grant: AccessGrant, scope: Scope, bundle: dict[str, t.Any], session: t.Any,
                    submission_id: str) -> Outcome:
    store = ResourceStore(session, local_bases=local_bases())
    plans = _plan(bundle, grant, store)
    structural = _structure_issues(plans)
    if structural:  # the rules below read the resources; they only ever see valid STU3
        raise _refusal(structural)
    kind = _kind(bundle, plans)
    if kind not in scope.write:
        raise Forbidden(f"The access token does not cover sending {KIND_NAMES.get(kind, kind)} "
                        "(none of its gegevensdiensten is for that)")
    mapping = {p.full_url: p.target for p in plans if p.full_url}
    issues: list[Issue] = []
    for plan in plans:
        _rewrite_references(plan, mapping, store.local_bases)
    for plan in plans:
        issues += _check_entry(plan, grant, store)
    allowed: set[str] = set()
    if kind == "vitalsigns":
        for plan in plans:
            if not plan.is_patient_match:
                issues += vitalsigns.check(plan.resource, f"Bundle.entry[{plan.index}].resource")
    elif kind == "documents":
        issues += _document_rules(plans, store)
    elif kind == "questionnaire-answers":
        issues += _questionnaire_rules(plans, grant, store, scope, allowed)
    issues += _reference_issues(plans, grant, scope, store, allowed)
    if issues:
        raise _refusal(issues)
    written = _write(plans, store, submission_id)
    response = _response_bundle(bundle["type"], plans, written, store)
    refs = [p.target for p in plans if not p.is_patient_match]
    restores = tuple(_restore(p.based_on, written[p.index].row) for p in plans if p.based_on is not None)
    return Outcome(kind, _dienst_for(kind, grant), refs, _summary(kind, plans), response, restores=restores)


def _restore(before: StoredRow, after: StoredRow) -> Restore:
    """How to undo an update a submission made at once (the return queue puts it back if the item is rejected)."""
    return Restore(f"{after.resource_type}/{after.logical_id}", before.json_text, after.version_id,
                   content_digest(after.json_text))


def _structure_issues(plans: list[Planned]) -> list[Issue]:
    """FHIR STU3 structure of every entry (fhir_api.validation), before any rule looks inside."""
    issues: list[Issue] = []
    for plan in plans:
        try:
            validate_structure(plan.resource)
        except FhirError as exc:
            issues += [Issue(i.code, f"Bundle.entry[{plan.index}].resource: {i.diagnostics}",
                             expression=i.expression) for i in exc.issues]
    return issues


def _refusal(issues: list[Issue]) -> FhirError:
    structural = [i for i in issues if i.code in ("structure", "invalid", "required", "value")]
    error_class = InvalidResource if structural else BusinessRuleViolation
    return error_class(f"The submission is refused ({len(issues)} problem(s)); nothing was stored", issues=issues)


def _plan(bundle: dict[str, t.Any], grant: AccessGrant, store: ResourceStore) -> list[Planned]:
    """One :class:`Planned` per entry, after checking each entry's shape (http.html#transaction:
    ``request.method`` and ``request.url`` are required; ``fullUrl`` is a URI)."""
    plans = []
    patients = 0
    full_urls: set[str] = set()
    for index, entry in enumerate(bundle["entry"]):
        where = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict):
            raise InvalidRequest(f"{where} is not an object")
        resource, req, full_url = entry.get("resource"), entry.get("request"), entry.get("fullUrl")
        if not isinstance(req, dict):
            raise InvalidRequest(f"{where}.request is missing or not an object")
        method, url = req.get("method"), req.get("url")
        if not isinstance(method, str) or not isinstance(url, str):
            raise InvalidRequest(f"{where}.request needs a method and a url (strings)")
        method = method.upper()
        if full_url is not None and (not isinstance(full_url, str) or not full_url):
            raise InvalidRequest(f"{where}.fullUrl must be a URI")
        if full_url is not None:
            if full_url in full_urls:
                raise InvalidRequest(f"{where}.fullUrl occurs more than once in the Bundle")
            full_urls.add(full_url)
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidRequest(f"{where} has no resource")
        rtype = resource["resourceType"]
        if method not in ("POST", "PUT"):
            raise InvalidRequest(f"{where}.request.method must be POST (or PUT for a questionnaire Task)")
        if rtype == "Patient" and method == "POST":
            if url.split("?")[0].strip("/") != rtype:
                raise InvalidRequest(f"{where}.request.url must be 'Patient' for a POST of a Patient")
            patients += 1
            if patients > 1:
                raise BusinessRuleViolation(f"{where}: a submission is about one patient")
            plans.append(Planned(index, method, resource, full_url, f"Patient/{grant.patient_id}",
                                 is_patient_match=True))
        elif method == "POST":
            if url.split("?")[0].strip("/") != rtype:
                raise InvalidRequest(f"{where}.request.url must be {rtype!r} for a POST of a {rtype}")
            resource = dict(resource)
            resource["id"] = str(uuid.uuid4())
            plans.append(Planned(index, method, resource, full_url, f"{rtype}/{resource['id']}"))
        elif rtype == "Task":
            target = parse_reference(url, store.local_bases)
            if target is None or target.type != rtype or resource.get("id") not in (None, target.id):
                raise InvalidRequest(f"{where}.request.url does not name this Task")
            resource = dict(resource, id=target.id)
            plans.append(Planned(index, method, resource, full_url, f"{rtype}/{target.id}", is_update=True))
        else:
            # The same words whether or not the id exists, whoever's it is: no oracle.
            raise BusinessRuleViolation(
                f"{where}: a PGO cannot change existing {rtype} resources; send new data with POST "
                "(it is stored for the hospital to review)")
    return plans


def _kind(bundle: dict[str, t.Any], plans: list[Planned]) -> str:
    types = {p.resource["resourceType"] for p in plans}
    if "QuestionnaireResponse" in types or ("Task" in types and bundle["type"] == "transaction"):
        return "questionnaire-answers"
    if "Observation" in types and types <= {"Observation", "Patient"}:
        return "vitalsigns"
    if "DocumentReference" in types and types <= {"Patient", "DocumentReference", "DocumentManifest", "Binary"}:
        return "documents"
    raise BusinessRuleViolation(
        "This server accepts self-measurements (Observation), documents (DocumentReference, DocumentManifest, "
        f"Binary) and questionnaire answers (Task, QuestionnaireResponse); not {', '.join(sorted(types))}"
    )


def _dienst_for(kind: str, grant: AccessGrant) -> str | None:
    from .access import PROFILES

    mapping = services().gegevensdiensten
    for dienst in sorted(grant.gegevensdiensten):
        profile = PROFILES.get(mapping.get(dienst, ""))
        if profile is not None and kind in profile.write:
            return dienst
    return None


def _rewrite_references(plan: Planned, mapping: dict[str, str], bases: t.Sequence[str]) -> None:
    """urn:uuid/urn:oid full URLs → server ids; absolute URLs on this server → relative; any other ``urn:``
    reference is refused (it names nothing the DVZA can resolve)."""
    for path, value in rewrite_references(plan.resource, placeholders=mapping, local_bases=bases):
        plan.issues.append(Issue("invalid", f"Bundle.entry[{plan.index}].resource: {path} refers to {value}, "
                                            "which is not an entry of this Bundle", expression=path))


def _check_entry(plan: Planned, grant: AccessGrant, store: ResourceStore) -> list[Issue]:
    where = f"Bundle.entry[{plan.index}].resource"
    issues = list(plan.issues)
    if plan.is_patient_match:
        return issues + _patient_mismatch(plan.resource, grant, store, where)
    issues += [Issue("business-rule", f"{where}: {path} is a BSN in clear; a BSN is never accepted from a PGO "
                                      "(MedMij core.rscint.203)", expression=path)
               for path in content_rules.clear_bsn_paths(plan.resource)]
    try:
        owner = compartment.owner(plan.resource, store.local_bases)
    except InvalidResource as exc:
        return issues + [Issue("invalid", f"{where}: {exc.diagnostics}")]
    if plan.resource["resourceType"] != "Binary" and owner != grant.patient_id:
        issues.append(Issue("business-rule", f"{where}: must be about the patient of the access token "
                                             f"(Patient/{grant.patient_id})"))
    return issues


def _patient_mismatch(posted: dict[str, t.Any], grant: AccessGrant, store: ResourceStore, where: str) -> list[Issue]:
    """Contradictions between the posted Patient and the token's patient (nothing else is compared)."""
    current = store.load("Patient", grant.patient_id)
    if current is None:
        return [Issue("business-rule", f"{where}: the patient of the access token is not known here")]
    problems = []
    if posted.get("birthDate") and current.get("birthDate") and posted["birthDate"] != current["birthDate"]:
        problems.append("birthDate")
    if posted.get("gender") and current.get("gender") and posted["gender"] != current["gender"]:
        problems.append("gender")
    posted_families = {_norm(n.get("family")) for n in posted.get("name", []) if n.get("family")}
    known = {_norm(part) for n in current.get("name", []) for part in _family_parts(n)}
    if posted_families and known and not posted_families & known:
        problems.append("name")
    for identifier in posted.get("identifier", []):
        if identifier.get("system") == "http://fhir.nl/fhir/NamingSystem/bsn" and identifier.get("value"):
            problems.append("BSN")  # a clear BSN is never accepted in the exchange (core.rscint.203)
    if problems:
        return [Issue("business-rule", f"{where}: this Patient is not the patient of the access token "
                                       f"({', '.join(problems)} differ); a submission cannot create a patient")]
    return []


def _family_parts(name: dict[str, t.Any]) -> list[str]:
    parts = [name.get("family") or ""]
    for ext in (name.get("_family") or {}).get("extension", []):
        if isinstance(ext.get("valueString"), str):
            parts.append(ext["valueString"])
    return [p for p in parts if p]


def _norm(text: str | None) -> str:
    from .search.values import normalise_string

    return normalise_string(text or "")


def _document_rules(plans: list[Planned], store: ResourceStore) -> list[Issue]:
    """Documents (PDF/A, gegevensdienst 57) come as PDF: in a Binary the DocumentReference points at, or inline
    in the DocumentReference's ``attachment.data`` — checked alike (base64, size limit, application/pdf, %PDF)."""
    issues: list[Issue] = []
    limit = services().limits.max_attachment_bytes
    binaries = {p.target for p in plans if p.resource["resourceType"] == "Binary"}
    for plan in plans:
        resource, where = plan.resource, f"Bundle.entry[{plan.index}].resource"
        if resource["resourceType"] == "Binary":
            issues += _pdf_issues(resource.get("content", ""), resource.get("contentType"), f"{where}.content",
                                  limit)
        elif resource["resourceType"] == "DocumentReference":
            issues += [Issue(i.code, f"{where}: {i.diagnostics}") for i in document_issues(
                resource, lambda t_, i: f"{t_}/{i}" in binaries, store.local_bases)]
            for index, content in enumerate(resource.get("content") or []):
                attachment = (content or {}).get("attachment") or {}
                if attachment.get("data") is not None:
                    issues += _pdf_issues(attachment["data"], attachment.get("contentType"),
                                          f"{where}.content[{index}].attachment.data", limit)
    documents = {target for p in plans if p.resource["resourceType"] == "DocumentReference"
                 for target in _attachment_targets(p.resource, store.local_bases)}
    for plan in plans:
        if plan.resource["resourceType"] == "Binary" and plan.target not in documents:
            issues.append(Issue("business-rule", f"Bundle.entry[{plan.index}].resource: this Binary is not the "
                                                 "document of a DocumentReference in this submission"))
    return issues


def _pdf_issues(encoded: t.Any, content_type: t.Any, where: str, limit: int) -> list[Issue]:
    try:
        data = base64.b64decode(encoded if isinstance(encoded, str) else "", validate=True)
    except (binascii.Error, ValueError):
        return [Issue("invalid", f"{where} is not valid base64")]
    if len(data) > limit:
        raise PayloadTooLarge(f"{where}: the document is {len(data)} bytes; at most {limit} are accepted")
    if content_type != "application/pdf" or not data.startswith(b"%PDF"):
        return [Issue("business-rule", f"{where}: only PDF documents (application/pdf) are accepted")]
    return []


def _attachment_targets(resource: dict[str, t.Any], bases: t.Sequence[str]) -> set[str]:
    targets = set()
    for content in resource.get("content") or []:
        url = ((content or {}).get("attachment") or {}).get("url") if isinstance(content, dict) else None
        target = parse_reference(url, bases) if isinstance(url, str) else None
        if target is not None:
            targets.add(f"{target.type}/{target.id}")
    return targets


def _questionnaire_rules(plans: list[Planned], grant: AccessGrant, store: ResourceStore, scope: Scope,
                         allowed: set[str]) -> list[Issue]:
    """Vragenlijsten 2.x (fhir-content.md §4.1 step 4/5): one completed Task (PUT) with its new
    QuestionnaireResponse (POST). Adds to ``allowed`` the references the answers may make outside
    the submission: what the stored Task already refers to, and its Questionnaire."""
    issues: list[Issue] = []
    tasks = [p for p in plans if p.resource["resourceType"] == "Task"]
    responses = [p for p in plans if p.resource["resourceType"] == "QuestionnaireResponse"]
    others = [p for p in plans if p.resource["resourceType"] not in ("Task", "QuestionnaireResponse", "Patient")]
    if others or len(tasks) != 1 or len(responses) > 1 or any(not t_.is_update for t_ in tasks):
        return [Issue("business-rule", "Questionnaire answers are one updated Task (PUT) with one new "
                                       "QuestionnaireResponse (POST) in a transaction")]
    task = tasks[0]
    found = _visible_task(store, grant, scope, task.target.split("/", 1)[1])
    if found is None:
        return [Issue("not-found", f"Bundle.entry[{task.index}]: {task.target} is not a task of this patient")]
    task.based_on, current = found
    where = f"Bundle.entry[{task.index}].resource"
    if task.resource.get("status") != "completed":
        return [Issue("business-rule", f"{where}.status: the Task must be completed when answers are sent")]
    if not responses:
        return [Issue("business-rule", f"{where}: a completed Task needs its QuestionnaireResponse in the same "
                                       "transaction")]
    response = responses[0]
    allowed.update(_local_references(current, store.local_bases))
    issues += [Issue(i.code, f"{where}: {i.diagnostics}", expression=i.expression)
               for i in questionnaires.task_change_issues(current, task.resource, completing=True)]
    task.resource = questionnaires.apply_pgo_change(current, task.resource, now_instant())
    outputs = [(o.get("valueReference") or {}).get("reference") for o in task.resource.get("output", [])]
    if response.target not in outputs:
        issues.append(Issue("business-rule", f"{where}.output must refer to the QuestionnaireResponse of this "
                                             "transaction"))
    answers = response.resource
    rwhere = f"Bundle.entry[{response.index}].resource"
    if answers.get("status") != "completed":
        issues.append(Issue("business-rule", f"{rwhere}.status must be completed for a completed Task"))
    questionnaire = _questionnaire(store, (answers.get("questionnaire") or {}).get("reference", ""))
    expected = questionnaires.questionnaire_of_task(current)
    if questionnaire is None:
        issues.append(Issue("business-rule", f"{rwhere}.questionnaire does not name a Questionnaire known here"))
    else:
        if expected and expected != f"Questionnaire/{questionnaire['id']}":
            issues.append(Issue("business-rule", f"{rwhere}.questionnaire is not the Questionnaire of the Task "
                                                 f"({expected})"))
        issues += questionnaires.response_issues(answers, questionnaire, rwhere)
    return issues


def _local_references(resource: dict[str, t.Any], bases: t.Sequence[str]) -> set[str]:
    return {f"{target.type}/{target.id}" for target in search_index.local_targets(resource, bases)}


def _reference_issues(plans: list[Planned], grant: AccessGrant, scope: Scope, store: ResourceStore,
                      allowed: set[str], *, in_bundle: bool = True) -> list[Issue]:
    """Every local reference of the submission must stay inside it or inside the token's own
    patient (see the module docstring). Unknown, other patients' and shared targets get the same
    answer, so a PGO learns nothing about what exists. ``in_bundle``: name the entry in each issue (a
    single resource, such as a PUT Task, has none)."""
    from .view import PatientView

    inside = {p.target for p in plans} | {f"Patient/{grant.patient_id}"} | allowed
    view = PatientView(store.session, grant.patient_id, scope, local_bases=store.local_bases)
    checked: dict[str, bool] = {}
    issues: list[Issue] = []
    for plan in plans:
        if plan.is_patient_match:
            continue
        for _, _, value, path in literal_references(plan.resource):
            target = parse_reference(value, store.local_bases)
            if target is None:
                continue
            name = f"{target.type}/{target.id}"
            if name in inside:
                continue
            if name not in checked:
                row = view.read(target.type, target.id) if compartment.is_patient_data(target.type) else None
                checked[name] = row is not None and row.patient_id == grant.patient_id
            if not checked[name]:
                entry = f"Bundle.entry[{plan.index}].resource: " if in_bundle else ""
                issues.append(Issue("business-rule", f"{entry}{path} refers to {name}, which is neither in this "
                                                     "submission nor in this patient's record", expression=path))
    return issues


def _visible_task(store: ResourceStore, grant: AccessGrant, scope: Scope,
                  task_id: str) -> tuple[StoredRow, dict[str, t.Any]] | None:
    """The stored Task (its row: the version a change is made from) if this grant may see it, and its content."""
    from .view import PatientView

    view = PatientView(store.session, grant.patient_id, scope, local_bases=store.local_bases)
    visible = view.read("Task", task_id)
    if visible is None:
        return None
    row = store.get("Task", task_id)
    if row is None or row.pk != visible.pk or row.version_id != visible.version_id:
        raise Conflict(f"Task/{task_id} was changed by another request meanwhile; read it and try again")
    return row, fhirjson.loads(row.json_text)


def _questionnaire(store: ResourceStore, reference: str) -> dict[str, t.Any] | None:
    """A Questionnaire by local reference or by canonical URL (Questionnaire.url)."""
    from sqlalchemy import select

    from .models import ResourceRow
    from .models import TokenIndex

    target = parse_reference(reference, store.local_bases)
    if target is not None and target.type == "Questionnaire":
        return store.load("Questionnaire", target.id)
    if not reference:
        return None
    text = store.session.scalar(
        select(ResourceRow.json_text).join(TokenIndex, TokenIndex.resource_pk == ResourceRow.pk).where(
            TokenIndex.patient_id.is_(None), TokenIndex.resource_type == "Questionnaire", TokenIndex.param == "url",
            TokenIndex.code == reference.split("|")[0], ResourceRow.hidden_by.is_(None),
        ).limit(1)
    )
    return fhirjson.loads(text) if text else None


def _write(plans: list[Planned], store: ResourceStore, submission_id: str) -> dict[int, Written]:
    """Store every entry (Binaries first, so documents can point at them); all or nothing."""
    in_bundle = {p.target: p.resource for p in plans}

    def display_for(type_name: str, logical_id: str) -> str | None:
        resource = in_bundle.get(f"{type_name}/{logical_id}")
        return display_of(resource) if resource else store.display_for(type_name, logical_id)

    staged: dict[int, Staged] = {}
    issues: list[Issue] = []
    order = sorted(plans, key=lambda p: (p.resource["resourceType"] != "Binary", p.index))
    for plan in order:  # all the work first …
        if plan.is_patient_match:
            continue
        try:  # structure was checked before the rules (_structure_issues); POSTed ids are the server's own
            staged[plan.index] = store.stage(plan.resource, display_for=display_for, validated=True,
                                             new=not plan.is_update, will_exist=in_bundle,
                                             hidden_by=None if plan.is_update else submission_id,
                                             based_on=plan.based_on)
        except FhirError as exc:
            issues += [Issue(i.code, f"Bundle.entry[{plan.index}].resource: {i.diagnostics}", expression=i.expression)
                       for i in exc.issues]
    if issues:
        raise _refusal(issues)
    try:
        return {index: store.write(item) for index, item in staged.items()}  # … then the writes, together
    except StaleDataError:  # a Task this transaction completes was changed by another request meanwhile
        raise Conflict("A resource of this submission was changed by another request meanwhile; read it and try "
                       "again") from None


def _response_bundle(bundle_type: str, plans: list[Planned], written: dict[int, Written],
                     store: ResourceStore) -> dict[str, t.Any]:
    """``batch-response``/``transaction-response`` (http.html#transaction-response): per entry its
    status, location and, unless ``Prefer: return=minimal``, the stored resource."""
    base = base_url()
    minimal = "return=minimal" in request.headers.get("Prefer", "")
    entries = []
    for plan in sorted(plans, key=lambda p: p.index):
        if plan.is_patient_match:
            row = store.get("Patient", plan.target.split("/", 1)[1])
            status = "200 OK"
        else:
            row = written[plan.index].row
            status = "201 Created" if written[plan.index].created else "200 OK"
        entry: dict[str, t.Any] = {"fullUrl": f"{base}/{row.resource_type}/{row.logical_id}"}
        if not minimal:
            entry["resource"] = fhirjson.loads(row.json_text)
        entry["response"] = {
            "status": status, "location": f"{row.resource_type}/{row.logical_id}/_history/{row.version_id}",
            "etag": f'W/"{row.version_id}"', "lastModified": row.last_updated,
        }
        entries.append(entry)
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": f"{bundle_type}-response", "entry": entries}


def _summary(kind: str, plans: list[Planned]) -> str:
    from collections import Counter

    if kind == "vitalsigns":
        names = Counter((vitalsigns.rule_for(p.resource) or vitalsigns.Rule("meting", frozenset())).name
                        for p in plans if p.resource["resourceType"] == "Observation")
        return ", ".join(f"{n}× {name}" for name, n in sorted(names.items()))
    if kind == "documents":
        titles = [a.get("title") or "document" for p in plans if p.resource["resourceType"] == "DocumentReference"
                  for a in (c.get("attachment") or {} for c in p.resource.get("content", []))]
        return f"{len(titles)} document(en): " + ", ".join(titles)
    if kind == "questionnaire-answers":
        return "Vragenlijst ingevuld: " + ", ".join(
            (p.resource.get("questionnaire") or {}).get("display") or "vragenlijst"
            for p in plans if p.resource["resourceType"] == "QuestionnaireResponse")
    return kind


# ---------------------------------------------------------------------------------- task status
def task_update(grant: AccessGrant, scope: Scope, resource: dict[str, t.Any], fmt: str) -> Response:
    """PUT Task/<id> by the PGO: accept, reject or fail a questionnaire task (only the status)."""
    audit("update", resource_type="Task", resource_ids=[f"Task/{resource['id']}"])
    digest = hashlib.sha256(fhirjson.dumps(resource).encode()).hexdigest()

    def build(session: t.Any, submission_id: str) -> Outcome:
        store = ResourceStore(session, local_bases=local_bases())
        found = _visible_task(store, grant, scope, resource["id"])
        if found is None:
            raise NotFound(f"Task/{resource['id']} is not known")
        row, current = found
        validate_structure(resource)  # the rules below read it: they only ever see valid STU3
        issues = questionnaires.task_change_issues(current, resource, completing=False)
        if issues:
            raise BusinessRuleViolation(f"This change to Task/{resource['id']} is refused", issues=issues)
        changed = questionnaires.apply_pgo_change(current, resource, now_instant())
        # what the PGO may set (output, note) may refer only to its own patient's data, like a submission: the
        # references the hospital put on the Task are its own
        plan = Planned(0, "PUT", changed, None, f"Task/{resource['id']}", is_update=True)
        issues = _reference_issues([plan], grant, scope, store, _local_references(current, store.local_bases),
                                   in_bundle=False)
        if issues:
            raise BusinessRuleViolation(f"This change to Task/{resource['id']} is refused", issues=issues)
        try:  # on the version the change was made from: a version stored meanwhile is never overwritten
            written = store.write(store.stage(changed, based_on=row))
        except StaleDataError:
            raise Conflict(f"Task/{resource['id']} was changed by another request meanwhile; read it and try "
                           "again") from None
        body = fhirjson.loads(written.row.json_text)
        summary = f"Taak {current.get('description') or resource['id']}: {current.get('status')} → {body.get('status')}"
        return Outcome("task-status", _dienst_for("task-status", grant), [f"Task/{resource['id']}"], summary, body,
                       restores=(_restore(row, written.row),))

    return submit(grant, digest, fmt, build)


def is_task_status_change(rtype: str, scope: Scope) -> bool:
    return rtype == "Task" and "task-status" in scope.write
