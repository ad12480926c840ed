"""The source API (``SOURCE_BASE_PATH``, default ``/source/fhir``): how the hospital's own systems (EHR,
integration engine) put Module 1 data and patient identities into the DVZA, keep them current and take them
out. FHIR STU3 REST (http.html) in JSON or XML, answers and errors as FHIR (OperationOutcome, http.html#2.21.0.1).

    PUT    /<type>/<id>                  upsert one resource (idempotent; If-Match for optimistic locking);
                                         a Patient may carry its BSN here, and only here
    PUT    /Binary/<id>                  with Content-Type application/pdf: the document itself, streamed
    GET    /<type>/<id>                  what is stored (the source's view: any patient, no token scope)
    DELETE /<type>/<id>                  delete (a Patient: the whole record)
    POST   /                             a transaction Bundle (PUT, POST, DELETE entries), all or nothing
    POST   /Patient/$merge               Parameters source-patient, target-patient: two records, one person
    POST   /Patient/<id>/$unlink         the BSN no longer leads to this record
    POST   /Patient/<id>/$replace?gegevensdienst=48   a collection Bundle: the record for that gegevensdienst
    POST   /$import[?job=<name>]         NDJSON (one resource per line), streamed; with job: restartable

Registered only when a source is configured (:mod:`dvza.source.auth`); it is a separate blueprint from the
PGO-facing resource server (``fhir_api``), which never accepts a source's credentials or a BSN, while this one
never accepts an OAuth token. Every call is audit-logged with the source's name (``actor = source:<name>``,
event ``source.<action>``) after the answer; every change also in the transaction that makes it (one record per
patient), so no data changes without its record.
"""

from __future__ import annotations

import base64
import tempfile
import typing as t
import uuid
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request
from werkzeug.exceptions import HTTPException

from fhir_api import formats
from fhir_api.errors import Conflict
from fhir_api.errors import FhirError
from fhir_api.errors import InvalidRequest
from fhir_api.errors import InvalidResource
from fhir_api.errors import Issue
from fhir_api.errors import MethodNotAllowed
from fhir_api.errors import NotFound
from fhir_api.errors import PayloadTooLarge
from fhir_api.errors import UnsupportedMediaType
from fhir_api.search.values import parse_reference
from fhir_api.store import ResourceStore
from fhir_api.store import valid_id

from .auth import Caller
from .auth import SourceAuthenticator
from .bulk import BulkImport
from .bulk import ImportBusy
from .bulk import job_id
from .bundles import replace_record
from .bundles import response_bundle
from .bundles import transaction
from .writer import PDFA_MARKER
from .writer import Change
from .writer import SourceSettings
from .writer import SourceWriter
from .writer import audit_changes
from .writer import pdf_issues

if t.TYPE_CHECKING:
    from ..audit import AuditLog
    from ..db import Database

EXTENSION_KEY = "dvza.source"
NDJSON_TYPES = ("application/fhir+ndjson", "application/x-ndjson", "application/ndjson")
TRACE_HEADERS = ("X-Request-ID", "X-Correlation-ID")

bp = Blueprint("source_api", __name__)


@dataclass(slots=True)
class SourceService:
    database: Database
    audit: AuditLog
    authenticator: SourceAuthenticator
    settings: SourceSettings
    base_path: str
    fhir_base_path: str
    max_body_bytes: int
    max_bundle_entries: int
    import_chunk_lines: int = 500


@dataclass(slots=True)
class Call:
    """What this call did, for its audit record."""

    action: str
    resource_type: str | None = None
    resources: list[str] = field(default_factory=list)
    patient_id: str | None = None
    detail: str = ""


def service() -> SourceService:
    return t.cast(SourceService, current_app.extensions[EXTENSION_KEY])


def note(action: str, **fields: t.Any) -> None:
    call: Call = g.source_call
    call.action = action
    for key, value in fields.items():
        setattr(call, key, value)


def caller() -> Caller:
    return t.cast(Caller, g.source_caller)


# ----------------------------------------------------------------------------------- request cycle
@bp.before_request
def _authenticate() -> None:
    g.source_call = Call("unknown")
    request.max_content_length = service().max_body_bytes
    g.source_caller = service().authenticator.authenticate(request)


@bp.after_request
def _after(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    call: Call = getattr(g, "source_call", None) or Call("unknown")
    who: Caller | None = getattr(g, "source_caller", None)
    trace = {name: value for name, value in ((n, request.headers.get(n)) for n in TRACE_HEADERS)
             if value and len(value) <= 64 and value.isascii() and value.isprintable()}
    try:
        service().audit.write(
            event_type=f"source.{call.action}", outcome=str(response.status_code),
            actor=f"source:{who.name}" if who else "source:unauthenticated", patient_id=call.patient_id,
            client_id=f"{who.name} ({who.method})" if who else None, resource_type=call.resource_type,
            resource_ids=" ".join(call.resources)[:20000] or None, detail=call.detail[:1000] or None,
            remote_addr=request.remote_addr, request_id=trace.get("X-Request-ID"),
            correlation_id=trace.get("X-Correlation-ID"))
    except Exception:  # noqa: BLE001 - fail closed: no answer without its audit record
        current_app.logger.exception("source API audit record failed; response withheld")
        error = FhirError("The call could not be logged; the answer is withheld")
        return Response(formats.render(error.operation_outcome(), formats.JSON), 500,
                        content_type=formats.CONTENT_TYPE[formats.JSON])
    return response


@bp.errorhandler(FhirError)
def _fhir_error(error: FhirError) -> Response:
    call: Call | None = getattr(g, "source_call", None)
    if call is not None and not call.detail:
        call.detail = error.diagnostics
    headers = dict(error.headers)
    return _answer(error.operation_outcome(), error.status_code, headers=headers)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    if error.code == 413:
        return _fhir_error(PayloadTooLarge(f"The request body is larger than the limit of "
                                           f"{service().max_body_bytes} bytes"))
    if error.code == 405:
        return _fhir_error(MethodNotAllowed(f"{request.method} is not supported here"))
    wrapped = FhirError(error.description or error.name)
    wrapped.status_code = error.code or 400
    return _fhir_error(wrapped)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    current_app.logger.exception("unexpected error in the source API")
    return _fhir_error(FhirError("An internal error occurred; nothing was stored"))


def _format() -> str:
    try:
        return formats.negotiate(request.accept_mimetypes, request.args.get("_format"))
    except FhirError:
        return formats.JSON


def _answer(body: dict[str, t.Any] | str, status: int = 200, *, headers: t.Mapping[str, str] | None = None,
            fmt: str | None = None) -> Response:
    fmt = fmt or _format()
    text = body if isinstance(body, str) else formats.render(body, fmt)
    response = Response(text, status=status, content_type=formats.CONTENT_TYPE[fmt])
    response.headers.update(dict(headers or {}))
    return response


def outcome(*issues: Issue) -> dict[str, t.Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def info(text: str) -> Issue:
    return Issue("informational", text, severity="information")


def _base() -> str:
    return request.host_url.rstrip("/") + request.script_root + service().base_path


def _settings() -> SourceSettings:
    """The write settings of this request: references to this server's bases (the source API's and the FHIR
    API's, as this request reaches them, and ``PUBLIC_BASE_URL``) are local."""
    svc = service()
    host = request.host_url.rstrip("/") + request.script_root
    bases = {*svc.settings.local_bases, _base(), host + svc.fhir_base_path}
    return replace(svc.settings, local_bases=tuple(sorted(bases)))


def _writer(session: t.Any) -> SourceWriter:
    return SourceWriter(session, caller().name, _settings())


def _body() -> dict[str, t.Any]:
    """The FHIR body (JSON or XML), at most ``SOURCE_MAX_BODY_BYTES``: 413 from ``Content-Length``, and a chunked
    body is read no further than the limit (Werkzeug stops there), so one that fills it is refused, not cut."""
    limit = service().max_body_bytes
    too_large = PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    fmt = formats.body_format(request.content_type)
    data = request.get_data(cache=False)
    if len(data) > limit or (request.content_length is None and len(data) >= limit):
        raise too_large
    return formats.parse_body(data, fmt)


def _commit(writer: SourceWriter, action: str, **fields: t.Any) -> None:
    """The changes' audit records join the transaction; then commit (or nothing at all)."""
    audit_changes(service().audit, writer.session, writer.changes, event_type=f"source.{action}",
                  actor=f"source:{caller().name}", **fields)
    writer.session.commit()


def _run(action: str, work: t.Callable[[SourceWriter], t.Any]) -> t.Any:
    with service().database.sessionmaker() as session:
        writer = _writer(session)
        try:
            result = work(writer)
            _commit(writer, action)
        except BaseException:
            session.rollback()
            raise
        note(action, resources=[c.reference for c in writer.changes if c.action != "unchanged"][:2000])
        patients = {c.patient_id for c in writer.changes if c.patient_id}
        if len(patients) == 1:
            note(action, patient_id=patients.pop())
        return result


def _written(change: Change, *, fmt: str) -> Response:
    """http.html#update: 201/200 with Location (with version) and ETag; the resource unless ``return=minimal``,
    an OperationOutcome with ``return=OperationOutcome`` (or when there are warnings to tell)."""
    row = change.row
    assert row is not None
    headers = {"ETag": f'W/"{row.version_id}"', "Location": f"{_base()}/{row.resource_type}/{row.logical_id}/"
                                                               f"_history/{row.version_id}",
               "Last-Modified": row.last_updated}
    status = 201 if change.action == "created" else 200
    prefer = request.headers.get("Prefer", "")
    if "return=OperationOutcome" in prefer or change.warnings:
        return _answer(outcome(info(f"{change.reference} {change.action}, version {row.version_id}"),
                               *change.warnings), status, headers=headers, fmt=fmt)
    if "return=minimal" in prefer:
        return _answer("", status, headers=headers, fmt=fmt)
    return _answer(row.xml_text if fmt == formats.XML else row.json_text, status, headers=headers, fmt=fmt)


# --------------------------------------------------------------------------------------- routes
@bp.route("/<rtype>/<rid>", methods=["PUT"])
def upsert(rtype: str, rid: str) -> Response:
    fmt = _format()
    note("update", resource_type=rtype, resources=[f"{rtype}/{rid}"])
    if not valid_id(rid):
        raise InvalidRequest(f"{rid!r} is not a valid resource id")
    if rtype == "Binary" and _is_document_upload():
        return _document_upload(rid, fmt)
    resource = _body()
    if resource.get("resourceType") != rtype:
        raise InvalidResource(f"The body is a {resource.get('resourceType')}, the URL names {rtype}")
    if resource.get("id", rid) != rid:
        raise InvalidResource(f"The body has id {resource.get('id')!r}, the URL names {rid!r}")
    resource["id"] = rid
    change = _run("update", lambda w: w.upsert(resource, if_match=request.headers.get("If-Match")))
    return _written(change, fmt=fmt)


def _is_document_upload() -> bool:
    mime = request.mimetype
    return bool(mime) and mime not in (*formats._JSON_TYPES, *formats._XML_TYPES)


def _document_upload(rid: str, fmt: str) -> Response:
    """``PUT Binary/<id>`` with the document as the body (http.html#binary): streamed to a temporary file in
    blocks, refused (413) as soon as it passes ``MAX_ATTACHMENT_BYTES`` without reading further, checked
    (PDF, PDF/A identification), then stored as the Binary."""
    limit = service().settings.max_document_bytes
    content_type = request.mimetype
    if content_type != "application/pdf":
        raise UnsupportedMediaType(f"A document is sent as application/pdf (PDF/A), not {content_type!r}")
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The document is {request.content_length} bytes; at most {limit} are accepted")
    request.max_content_length = None  # the limit below is the document limit, checked while reading
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
        size, marker, tail = 0, False, b""
        stream = request.stream
        while block := stream.read(1 << 16):
            size += len(block)
            if size > limit:
                raise PayloadTooLarge(f"The document is larger than the limit of {limit} bytes")
            marker = marker or PDFA_MARKER in tail + block
            tail = block[-len(PDFA_MARKER):]
            spool.write(block)
        spool.seek(0)
        head = spool.read(8)
        spool.seek(0)
        warnings = pdf_issues(head + (PDFA_MARKER if marker else b""), content_type, limit, f"Binary/{rid}")
        content = base64.b64encode(spool.read()).decode("ascii")
    resource = {"resourceType": "Binary", "id": rid, "contentType": "application/pdf", "content": content}
    del content
    change = _run("update", lambda w: w.upsert(resource, if_match=request.headers.get("If-Match"),
                                               streamed_document_warnings=warnings))
    row = change.row
    assert row is not None
    headers = {"ETag": f'W/"{row.version_id}"', "Location": f"{_base()}/Binary/{rid}/_history/{row.version_id}"}
    return _answer(outcome(info(f"Binary/{rid} {change.action}, version {row.version_id}, {size} bytes"),
                           *warnings), 201 if change.action == "created" else 200, headers=headers, fmt=fmt)


@bp.route("/<rtype>/<rid>", methods=["GET"])
def read(rtype: str, rid: str) -> Response:
    fmt = _format()
    note("read", resource_type=rtype, resources=[f"{rtype}/{rid}"])
    if not valid_id(rid):
        raise InvalidRequest(f"{rid!r} is not a valid resource id")
    with service().database.sessionmaker() as session:
        row = ResourceStore(session).get(rtype, rid)
        if row is None or row.hidden_by is not None:
            raise NotFound(f"{rtype}/{rid} is not known")
        note("read", patient_id=row.patient_id)
        headers = {"ETag": f'W/"{row.version_id}"', "Last-Modified": row.last_updated}
        return _answer(row.xml_text if fmt == formats.XML else row.json_text, headers=headers, fmt=fmt)


@bp.route("/<rtype>/<rid>", methods=["DELETE"])
def remove(rtype: str, rid: str) -> Response:
    note("delete", resource_type=rtype, resources=[f"{rtype}/{rid}"])
    change = _run("delete", lambda w: w.delete(rtype, rid, if_match=request.headers.get("If-Match")))
    if change.warnings:
        return _answer(outcome(info(f"{change.reference} deleted"), *change.warnings), 200)
    return Response(status=204)


@bp.route("/", methods=["POST"], strict_slashes=False)
def post_transaction() -> Response:
    fmt = _format()
    note("transaction")
    bundle = _body()
    entries = _run("transaction", lambda w: transaction(w, bundle, max_entries=service().max_bundle_entries))
    return _answer(response_bundle(entries, _base()), fmt=fmt)


@bp.route("/Patient/$merge", methods=["POST"])
def merge() -> Response:
    note("merge", resource_type="Patient")
    parameters = _body()
    if parameters.get("resourceType") != "Parameters":
        raise InvalidRequest("Patient/$merge takes Parameters: source-patient and target-patient "
                             "(valueReference Patient/<id>)")
    merged, into = _patient_parameter(parameters, "source-patient"), _patient_parameter(parameters, "target-patient")
    note("merge", resources=[f"Patient/{merged}", f"Patient/{into}"])
    result = _run("merge", lambda w: w.merge(merged, into))
    note("merge", patient_id=into, detail=f"Patient/{merged} merged into Patient/{into}: {result.moved} resource(s) "
                                          f"moved, {result.links_moved} BSN link(s) moved; {result.revoked}")
    return _answer(outcome(info(g.source_call.detail)))


def _patient_parameter(parameters: dict[str, t.Any], name: str) -> str:
    values = [p for p in parameters.get("parameter", []) if isinstance(p, dict) and p.get("name") == name]
    if len(values) != 1:
        raise InvalidRequest(f"Patient/$merge needs exactly one parameter {name!r}")
    reference = (values[0].get("valueReference") or {}).get("reference")
    target = parse_reference(reference, (_base(),)) if isinstance(reference, str) else None
    if target is None or target.type != "Patient":
        raise InvalidRequest(f"{name}: valueReference must be Patient/<id>")
    return target.id


@bp.route("/Patient/<pid>/$unlink", methods=["POST"])
def unlink(pid: str) -> Response:
    note("unlink", resource_type="Patient", resources=[f"Patient/{pid}"], patient_id=pid)
    removed, revoked = _run("unlink", lambda w: w.unlink(pid))
    note("unlink", detail=f"{removed} BSN link(s) removed; {revoked}")
    return _answer(outcome(info(g.source_call.detail)))


@bp.route("/Patient/<pid>/$replace", methods=["POST"])
def replace_patient(pid: str) -> Response:
    note("replace", resource_type="Patient", patient_id=pid)
    dienst = request.args.get("gegevensdienst", "")
    if not dienst:
        raise InvalidRequest("Patient/<id>/$replace needs ?gegevensdienst=<id> (e.g. 48 for the BgZ)")
    bundle = _body()
    result = _run("replace", lambda w: replace_record(w, pid, dienst, bundle,
                                                      max_entries=service().max_bundle_entries))
    counts: dict[str, int] = {}
    for change in [*result.written, *result.deleted]:
        counts[change.action] = counts.get(change.action, 0) + 1
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing"
    note("replace", detail=f"gegevensdienst {dienst} of Patient/{pid}: {summary}")
    warnings = [w for c in result.written for w in c.warnings]
    return _answer(outcome(info(g.source_call.detail), *warnings))


@bp.route("/$import", methods=["POST"])
def bulk_import() -> Response:
    """NDJSON, streamed from the request body line by line (see :mod:`dvza.source.bulk`)."""
    note("import")
    mime = request.mimetype
    if mime not in NDJSON_TYPES:
        raise UnsupportedMediaType(f"$import takes NDJSON ({NDJSON_TYPES[0]}), not {mime or '(none)'!r}")
    name = request.args.get("job", "")
    if len(name) > 128 or (name and not name.isprintable()):
        raise InvalidRequest("job must be a name of at most 128 characters")
    svc = service()
    request.max_content_length = None  # streamed: only a line is ever held, and lines have their own limit
    key = job_id(caller().name, f"job:{name}" if name else f"once:{uuid.uuid4()}")
    importer = BulkImport(svc.database, svc.audit, _settings(), source=caller().name, job=key,
                          label=f"$import {name}" if name else "$import", total_bytes=request.content_length,
                          chunk_lines=svc.import_chunk_lines, max_line_bytes=svc.max_body_bytes)
    try:
        summary = importer.run(request.stream)
    except ImportBusy as exc:
        raise Conflict(str(exc)) from None
    note("import", detail=f"{importer.label}: {summary.text()}")
    issues = [info(summary.text()), *[Issue("invalid", f"line {line}" + (f" ({ref})" if ref else "") + f": {reason}")
                                      for line, ref, reason in summary.refusals]]
    if summary.refused > len(summary.refusals):
        issues.append(info(f"{summary.refused - len(summary.refusals)} more refused line(s) are not listed"))
    return _answer(outcome(*issues), headers={"X-Import-Job": key})


@bp.route("/", methods=["GET", "PUT", "DELETE", "PATCH"], strict_slashes=False)
@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def other(rest: str = "") -> Response:
    note("unsupported")
    raise InvalidRequest(f"{request.method} {request.path} is not an interaction of the source API")


def init_app(app: Flask, database: Database, audit: AuditLog, *,
             on_merge: tuple[t.Callable[[t.Any, str, str], None], ...] = ()) -> None:
    """Register the source API when at least one source is configured (otherwise it does not exist: 404)."""
    authenticator = SourceAuthenticator(app.config)
    settings = SourceSettings.from_config(app.config, on_merge=on_merge)
    app.extensions["dvza.source.settings"] = settings
    if not authenticator.enabled:
        return
    app.extensions[EXTENSION_KEY] = SourceService(
        database, audit, authenticator, settings, base_path=app.config["SOURCE_BASE_PATH"].rstrip("/"),
        fhir_base_path=app.config["FHIR_BASE_PATH"].rstrip("/"), max_body_bytes=app.config["SOURCE_MAX_BODY_BYTES"],
        max_bundle_entries=app.config["SOURCE_MAX_BUNDLE_ENTRIES"])
    app.register_blueprint(bp, url_prefix=app.config["SOURCE_BASE_PATH"].rstrip("/"))

