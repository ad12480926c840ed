"""Several writes in one request, all or nothing: a FHIR ``transaction`` (http.html#transaction) and the full
replace of one patient's record for one gegevensdienst.

Both run every entry through :class:`~dvza.source.writer.SourceWriter` — each in its own savepoint, so one bad
entry does not hide the next one's problems — and refuse the whole request with one OperationOutcome that
names every problem (``Bundle.entry[i]: …``) when anything failed; the caller then rolls back.

Transaction entries (``request.method``): ``PUT Type/id`` (upsert, with ``request.ifMatch``), ``POST Type``
(create: the server assigns the id; the entry's ``urn:uuid:`` ``fullUrl`` may be referred to by other
entries and is rewritten to it) and ``DELETE Type/id``. Deletes run first, then writes in dependency order
(Binaries before the documents that point at them, shared data and Patients before what refers to them).
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import select

from fhir_api import compartment
from fhir_api.access import scope_for
from fhir_api.errors import BusinessRuleViolation
from fhir_api.errors import FhirError
from fhir_api.errors import InvalidRequest
from fhir_api.errors import Issue
from fhir_api.errors import NotFound
from fhir_api.errors import PayloadTooLarge
from fhir_api.models import ResourceRow
from fhir_api.references import rewrite_references
from fhir_api.search.values import parse_reference
from fhir_api.store import display_of
from fhir_api.view import PatientView

from .models import ResourceOwner
from .writer import Change
from .writer import SourceWriter
from .writer import refusal
from .writer import write_rank


@dataclass(slots=True)
class Entry:
    index: int
    method: str
    rtype: str
    rid: str
    resource: dict[str, t.Any] | None
    full_url: str | None = None
    if_match: str | None = None
    change: Change | None = None
    issues: list[Issue] = field(default_factory=list)
    error: FhirError | None = None


def entries_of(bundle: t.Any, *, kinds: tuple[str, ...], max_entries: int) -> list[t.Any]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("The body must be a Bundle")
    if bundle.get("type") not in kinds:
        raise InvalidRequest(f"The Bundle must be of type {' or '.join(kinds)}, not {bundle.get('type')!r}")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise InvalidRequest("The Bundle has no entries")
    if len(entries) > max_entries:
        raise PayloadTooLarge(f"The Bundle has {len(entries)} entries; at most {max_entries} are accepted in one "
                              "request (use $import for more)")
    return entries


# ------------------------------------------------------------------------------------ transaction
def transaction(writer: SourceWriter, bundle: t.Any, *, max_entries: int) -> list[Entry]:
    """Run a transaction Bundle; returns its entries with their changes, in Bundle order."""
    raw = entries_of(bundle, kinds=("transaction",), max_entries=max_entries)
    entries, issues = _plan(raw, writer)
    mapping = {e.full_url: f"{e.rtype}/{e.rid}" for e in entries if e.full_url and e.method == "POST"}
    for entry in entries:
        if entry.resource is not None:
            entry.issues += _rewrite_placeholders(entry, mapping)
    _run(writer, entries)
    problems = issues + [i for e in entries for i in e.issues]
    if problems:
        raise refusal(problems, _errors(entries, issues), "The transaction")
    return sorted(entries, key=lambda e: e.index)


def _plan(raw: list[t.Any], writer: SourceWriter) -> tuple[list[Entry], list[Issue]]:
    entries: list[Entry] = []
    issues: list[Issue] = []
    full_urls: set[str] = set()
    for index, item in enumerate(raw):
        where = f"Bundle.entry[{index}]"
        problem = _entry_problem(item, where)
        if problem:
            issues.append(Issue("invalid", problem))
            continue
        request, resource, full_url = item["request"], item.get("resource"), item.get("fullUrl")
        method, url = request["method"].upper(), request["url"]
        if full_url is not None:
            if full_url in full_urls:
                issues.append(Issue("invalid", f"{where}.fullUrl occurs more than once in the Bundle"))
                continue
            full_urls.add(full_url)
        path = url.split("?")[0].strip("/")
        target = parse_reference(path, writer.store.local_bases)
        if method == "POST":
            rtype = path.rsplit("/", 1)[-1]
            if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
                issues.append(Issue("invalid", f"{where}: a POST to {rtype!r} needs a {rtype} resource"))
                continue
            resource = dict(resource, id=str(uuid.uuid4()))
            entries.append(Entry(index, method, rtype, resource["id"], resource, full_url))
        elif method in ("PUT", "DELETE"):
            if target is None:
                issues.append(Issue("invalid", f"{where}.request.url {url!r} must be Type/id"))
                continue
            if method == "PUT":
                if not isinstance(resource, dict) or resource.get("resourceType") != target.type or \
                        resource.get("id", target.id) != target.id:
                    issues.append(Issue("invalid", f"{where}: the resource is not {target.type}/{target.id} of "
                                                   "request.url"))
                    continue
                resource = dict(resource, id=target.id)
            else:
                resource = None
            if_match = request.get("ifMatch")
            entries.append(Entry(index, method, target.type, target.id, resource, full_url,
                                 if_match if isinstance(if_match, str) else None))
        else:
            issues.append(Issue("invalid", f"{where}.request.method {method!r}: a source transaction takes PUT, "
                                           "POST and DELETE"))
    keys = [(e.rtype, e.rid) for e in entries]
    for entry in entries:
        if keys.count((entry.rtype, entry.rid)) > 1:
            entry.issues.append(Issue("invalid", f"Bundle.entry[{entry.index}]: {entry.rtype}/{entry.rid} occurs "
                                                 "more than once in the transaction"))
    return entries, issues


def _entry_problem(item: t.Any, where: str) -> str | None:
    if not isinstance(item, dict):
        return f"{where} is not an object"
    request = item.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("method"), str) or \
            not isinstance(request.get("url"), str) or not request["url"]:
        return f"{where}.request needs a method and a url (http.html#transaction)"
    if item.get("fullUrl") is not None and (not isinstance(item["fullUrl"], str) or not item["fullUrl"]):
        return f"{where}.fullUrl must be a URI"
    return None


def _rewrite_placeholders(entry: Entry, mapping: dict[str, str]) -> list[Issue]:
    """``urn:uuid:``/``urn:oid:`` references to entries of this Bundle → their ``Type/id`` (http.html#transaction)."""
    assert entry.resource is not None
    return [Issue("invalid", f"Bundle.entry[{entry.index}].resource: {path} refers to {value}, "
                             "which is not an entry of this Bundle", expression=path)
            for path, value in rewrite_references(entry.resource, placeholders=mapping)
            if value.startswith(("urn:uuid:", "urn:oid:"))]


def _run(writer: SourceWriter, entries: list[Entry]) -> None:
    """Deletes, then writes in dependency order; each entry in a savepoint, its failure kept with it."""
    in_bundle = {f"{e.rtype}/{e.rid}": e.resource for e in entries if e.resource is not None}

    def display_for(type_name: str, logical_id: str) -> str | None:
        resource = in_bundle.get(f"{type_name}/{logical_id}")
        return display_of(resource) if resource else writer.store.display_for(type_name, logical_id)

    order = sorted(entries, key=lambda e: (e.method != "DELETE", write_rank(e.rtype), e.index))
    for entry in order:
        if entry.issues:
            continue
        try:
            with writer.savepoint():
                if entry.method == "DELETE":
                    entry.change = writer.delete(entry.rtype, entry.rid, if_match=entry.if_match)
                else:
                    entry.change = writer.upsert(entry.resource, if_match=entry.if_match, display_for=display_for)
        except FhirError as exc:
            entry.issues += _prefixed(exc, entry.index)
            entry.error = exc


def _prefixed(exc: FhirError, index: int) -> list[Issue]:
    return [Issue(i.code, f"Bundle.entry[{index}]: {i.diagnostics}", i.severity, i.expression) for i in exc.issues]


def _errors(entries: list[Entry], plan_issues: list[Issue]) -> list[FhirError]:
    """The errors behind a refusal (their statuses decide the answer's): those the writer raised, and for the
    problems found before writing a 422 (business rules) or a 400 (anything else)."""
    errors = [e.error for e in entries if e.error is not None]
    found = plan_issues + [i for e in entries if e.error is None for i in e.issues]
    if any(i.code != "business-rule" for i in found):
        errors.append(InvalidRequest("invalid entries"))
    elif found:
        errors.append(BusinessRuleViolation("entries against the rules"))
    return errors


def response_bundle(entries: list[Entry], base: str) -> dict[str, t.Any]:
    """``transaction-response`` (http.html#transaction-response): per entry its status, location, etag."""
    out = []
    for entry in entries:
        change = entry.change
        assert change is not None
        response: dict[str, t.Any] = {"status": change.status}
        if change.row is not None and change.action not in ("deleted", "absent"):
            row = change.row
            response["location"] = f"{row.resource_type}/{row.logical_id}/_history/{row.version_id}"
            response["etag"] = f'W/"{row.version_id}"'
            response["lastModified"] = row.last_updated
        if change.warnings:
            response["outcome"] = {"resourceType": "OperationOutcome",
                                   "issue": [w.to_json() for w in change.warnings]}
        out.append({"fullUrl": f"{base}/{entry.rtype}/{entry.rid}", "response": response})
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "transaction-response", "entry": out}


# ------------------------------------------------------------------------------------ replace
@dataclass(slots=True)
class Replaced:
    written: list[Change]
    deleted: list[Change]


def replace_record(writer: SourceWriter, patient_id: str, gegevensdienst: str, bundle: t.Any, *,
                   max_entries: int) -> Replaced:
    """``Patient/<id>/$replace?gegevensdienst=<id>``: the Bundle (type ``collection``) is the patient's whole
    record for that gegevensdienst. Every resource is upserted; the resources of this patient that fall under
    the gegevensdienst (its profile's types and filters, as a PGO's token for it would read them), that this
    source keeps and that the Bundle no longer holds are deleted. The Patient itself is never deleted here;
    data other sources keep, and what the hospital accepted from the patient's PGO, stays."""
    profile = writer.settings.gegevensdiensten.get(gegevensdienst)
    scope = scope_for([gegevensdienst], writer.settings.gegevensdiensten)
    if profile is None or not scope.read:
        raise InvalidRequest(f"gegevensdienst {gegevensdienst!r} is not one this DVZA serves data for "
                             f"({', '.join(sorted(writer.settings.gegevensdiensten))})")
    raw = entries_of(bundle, kinds=("collection",), max_entries=max_entries)
    entries: list[Entry] = []
    issues: list[Issue] = []
    for index, item in enumerate(raw):
        resource = item.get("resource") if isinstance(item, dict) else None
        where = f"Bundle.entry[{index}]"
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            issues.append(Issue("invalid", f"{where} has no resource"))
            continue
        rtype, rid = resource["resourceType"], str(resource.get("id", ""))
        if compartment.is_patient_data(rtype) and not scope.can_read(rtype):
            issues.append(Issue("business-rule", f"{where}: {rtype} is not part of gegevensdienst {gegevensdienst}"))
            continue
        try:
            owner = compartment.owner(resource, writer.store.local_bases)
        except FhirError as exc:
            issues += _prefixed(exc, index)
            continue
        if owner is not None and owner != patient_id:
            issues.append(Issue("business-rule", f"{where}: {rtype}/{rid} belongs to Patient/{owner}, not to the "
                                                 f"record being replaced (Patient/{patient_id})"))
            continue
        entries.append(Entry(index, "PUT", rtype, rid, resource))
    _run(writer, entries)
    if writer.store.get("Patient", patient_id) is None:
        issues.append(Issue("not-found", f"Patient/{patient_id} is not known (send it in the Bundle or register "
                                         "it first)"))
    problems = issues + [i for e in entries for i in e.issues]
    if problems:
        errors = _errors(entries, issues)
        if any(i.code == "not-found" for i in issues) and len(problems) == 1:
            errors = [NotFound("not found")]
        raise refusal(problems, errors, "The replace")
    in_scope = _in_scope(writer, patient_id, scope)
    sent = {(e.rtype, e.rid) for e in entries}
    for entry in entries:
        change = entry.change
        if change is not None and change.patient_id == patient_id and entry.rtype != "Patient" and \
                (entry.rtype, entry.rid) not in in_scope:
            problems.append(Issue("business-rule", f"Bundle.entry[{entry.index}]: {entry.rtype}/{entry.rid} is not "
                                                   f"part of gegevensdienst {gegevensdienst} (its filters)"))
    if problems:
        raise refusal(problems, [BusinessRuleViolation("outside the gegevensdienst")], "The replace")
    deleted = []
    for rtype, rid in sorted(in_scope - sent):
        owner = writer.session.get(ResourceOwner, (rtype, rid))
        if rtype != "Patient" and owner is not None and owner.source == writer.source:
            deleted.append(writer.delete(rtype, rid))
    return Replaced([e.change for e in sorted(entries, key=lambda e: e.index) if e.change is not None], deleted)


def _in_scope(writer: SourceWriter, patient_id: str, scope: t.Any) -> set[tuple[str, str]]:
    """(type, id) of this patient's resources a token for the gegevensdienst would see (PatientView's rule)."""
    view = PatientView(writer.session, patient_id, scope, local_bases=writer.store.local_bases)
    rows = writer.session.execute(select(ResourceRow.resource_type, ResourceRow.logical_id).where(
        view.compartment_visible(ResourceRow)))
    return {(rtype, rid) for rtype, rid in rows}
