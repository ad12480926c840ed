"""The FHIR STU3 REST interface (https://hl7.org/fhir/STU3/http.html) as a Flask blueprint.

Interactions: ``metadata`` (capabilities), search (GET and POST ``_search``), read,
``Observation/$lastn``, ``Binary`` as a FHIR resource or as the raw document, and the writes of
:mod:`fhir_api.writes`. Every request but ``metadata`` needs a bearer token (MedMij core.rscint.200,
RFC 6750 §2.1); the token's grant decides the patient and the gegevensdiensten. Every outcome is
audit-logged through the injected :class:`~fhir_api.services.AuditSink`.
"""

from __future__ import annotations

import base64
import binascii
import typing as t
from email.utils import format_datetime
from urllib.parse import urlencode

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request

from . import bundles
from . import capability
from . import compartment
from . import formats
from .access import AccessGrant
from .access import Scope
from .access import scope_for
from .errors import FhirError
from .errors import Forbidden
from .errors import InvalidRequest
from .errors import MethodNotAllowed
from .errors import NotFound
from .errors import NotSupported
from .errors import Unauthorized
from .schema import stu3
from .search import query as search_query
from .services import AccessEvent
from .services import FhirServices
from .store import PatientView
from .store import now_instant
from .store import valid_id

EXTENSION_KEY = "fhir_api"


def services() -> FhirServices:
    return t.cast(FhirServices, current_app.extensions[EXTENSION_KEY])


def init_app(app: Flask, fhir_services: FhirServices, *, url_prefix: str = "/fhir") -> Blueprint:
    """Register the resource server under ``url_prefix`` with its dependencies."""
    fhir_services.url_prefix = url_prefix.rstrip("/")
    app.extensions[EXTENSION_KEY] = fhir_services
    blueprint = create_blueprint()
    app.register_blueprint(blueprint, url_prefix=fhir_services.url_prefix or None)
    return blueprint


def create_blueprint() -> Blueprint:
    bp = Blueprint("fhir", __name__)
    bp.after_request(_audit_after_request)
    bp.register_error_handler(FhirError, _fhir_error)
    bp.register_error_handler(Exception, _unexpected_error)
    bp.add_url_rule("/metadata", "metadata", _metadata, methods=["GET"])
    bp.add_url_rule("/Observation/$lastn", "lastn", _lastn, methods=["GET"])
    bp.add_url_rule("/<rtype>", "search", _search, methods=["GET"])
    bp.add_url_rule("/<rtype>/_search", "search_post", _search, methods=["POST"])
    bp.add_url_rule("/<rtype>/<rid>", "read", _read, methods=["GET"])
    from . import writes

    writes.register(bp)
    bp.add_url_rule("/", "root", _unsupported, methods=["GET", "DELETE", "PUT", "PATCH"], strict_slashes=False)
    bp.add_url_rule("/<path:rest>", "other", _unsupported, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    return bp


# ------------------------------------------------------------------------------------------ helpers
def base_url() -> str:
    """Absolute URL of the FHIR base of this request (fullUrl and link prefix)."""
    svc = services()
    if svc.public_base_url:
        return svc.public_base_url.rstrip("/")
    return request.host_url.rstrip("/") + request.script_root + svc.url_prefix


def local_bases() -> tuple[str, ...]:
    bases = {base_url()}
    if services().public_base_url:
        bases.add(services().public_base_url.rstrip("/"))
    return tuple(bases)


def response_format() -> str:
    fmt = getattr(g, "fhir_format", None)
    if fmt is None:
        fmt = formats.negotiate(request.accept_mimetypes, request.args.get("_format"))
        g.fhir_format = fmt
    return fmt


def fhir_response(text: str, status: int = 200, *, fmt: str | None = None,
                  headers: t.Mapping[str, str] | None = None) -> Response:
    fmt = fmt or response_format()
    response = Response(text, status=status, content_type=formats.CONTENT_TYPE[fmt])
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def audit(action: str, **fields: t.Any) -> None:
    """Note what this request accessed; recorded with the final status after the response."""
    event = getattr(g, "fhir_audit", None)
    if event is None:
        g.fhir_audit = AccessEvent(action=action, status=0, **fields)
    else:
        event.action = action
        for key, value in fields.items():
            setattr(event, key, value)


def authorize() -> tuple[AccessGrant, Scope]:
    """The grant of this request's token and the scope of its gegevensdiensten (401 otherwise)."""
    grant = services().access.resolve(request)
    g.fhir_grant = grant
    scope = scope_for(grant.gegevensdiensten, services().gegevensdiensten)
    return grant, scope


def supported_type(rtype: str) -> None:
    """404 ``not-supported`` for anything that is not a resource type this server serves."""
    if not stu3().is_resource(rtype):
        if search_query.is_type_name(rtype):
            raise NotSupported(f"Resource type {rtype!r} is not supported by this server")
        raise InvalidRequest(f"{request.path!r} is not a valid FHIR request URL")
    if rtype not in capability.served_types(services()):
        raise NotSupported(f"Resource type {rtype} is not supported by this server")


def check_readable(scope: Scope, rtype: str) -> None:
    if compartment.is_patient_data(rtype) and not scope.can_read(rtype):
        raise Forbidden(
            f"The access token does not cover {rtype} resources (gegevensdiensten of this token do not "
            "include them)"
        )


def _view(grant: AccessGrant, scope: Scope) -> PatientView:
    return PatientView(services().session(), grant.patient_id, scope, local_bases=local_bases())


# ------------------------------------------------------------------------------------------- views
def _metadata() -> Response:
    fmt = response_format()
    audit("capabilities")
    statement = capability.capability_statement(services(), base_url())
    return fhir_response(formats.render(statement, fmt), fmt=fmt)


def _search(rtype: str) -> Response:
    return _run_search(rtype, lastn=False)


def _lastn() -> Response:
    return _run_search("Observation", lastn=True)


def _run_search(rtype: str, *, lastn: bool) -> Response:
    fmt = response_format()
    audit("operation-lastn" if lastn else "type-search", resource_type=rtype)
    supported_type(rtype)
    grant, scope = authorize()
    check_readable(scope, rtype)
    items = list(request.args.items(multi=True))
    if request.method == "POST":
        if request.mimetype != "application/x-www-form-urlencoded":
            raise InvalidRequest("POST _search needs an application/x-www-form-urlencoded body")
        items += list(request.form.items(multi=True))
    lenient = "handling=lenient" in request.headers.get("Prefer", "").replace(" ", "")
    parsed = search_query.parse(
        rtype, items, lenient=lenient, lastn=lastn,
        default_count=services().default_count, max_count=services().max_count,
    )
    audit("operation-lastn" if lastn else "type-search", resource_type=rtype,
          query=urlencode(parsed.used))
    page = _view(grant, scope).search(parsed, column="xml_text" if fmt == formats.XML else "json_text")
    base = base_url()
    path = f"{base}/{rtype}/$lastn" if lastn else f"{base}/{rtype}"
    self_url = path + ("?" + urlencode(parsed.used) if parsed.used else "")
    next_url = None
    if page.next_offset is not None:
        params = [(k, v) for k, v in parsed.used if k != "_offset"] + [("_offset", str(page.next_offset))]
        next_url = path + "?" + urlencode(params)
    entries = [bundles.Entry(f"{base}/{r.resource_type}/{r.logical_id}", r.content, "match") for r in page.matches]
    entries += [bundles.Entry(f"{base}/{r.resource_type}/{r.logical_id}", r.content, "include") for r in page.included]
    audit("operation-lastn" if lastn else "type-search",
          resource_ids=[f"{r.resource_type}/{r.logical_id}" for r in (*page.matches, *page.included)])
    text = bundles.searchset(
        fmt, total=page.total, self_url=self_url, next_url=next_url, entries=entries, last_updated=now_instant()
    )
    return fhir_response(text, fmt=fmt)


def _read(rtype: str, rid: str) -> Response:
    raw_binary = rtype == "Binary" and _wants_raw_binary()
    fmt = formats.JSON if raw_binary else response_format()
    audit("instance-read", resource_type=rtype, resource_ids=[f"{rtype}/{rid}"])
    if rid.startswith("$"):
        raise InvalidRequest(f"{rtype}/{rid}: unknown operation or invalid syntax")
    supported_type(rtype)
    if not valid_id(rid):
        raise InvalidRequest(f"{rid!r} is not a valid resource id")
    grant, scope = authorize()
    check_readable(scope, rtype)
    column = "xml_text" if fmt == formats.XML else "json_text"
    row = _view(grant, scope).read(rtype, rid, column)
    if row is None:
        raise NotFound(f"{rtype}/{rid} is not known")
    headers = {"ETag": f'W/"{row.version_id}"', "Last-Modified": _http_date(row.last_updated)}
    if raw_binary:
        return _binary_content(row.json_text, headers)
    return fhir_response(getattr(row, column), fmt=fmt, headers=headers)


def _wants_raw_binary() -> bool:
    """FHIR Binary read (http.html#binary): the native content unless a FHIR format is asked."""
    if request.args.get("_format"):
        return False
    wanted = [m.split(";")[0].strip().lower() for m, q in request.accept_mimetypes if q > 0]
    return not any(m in formats._JSON_TYPES or m in formats._XML_TYPES for m in wanted)


def _binary_content(json_text: str, headers: dict[str, str]) -> Response:
    from . import fhirjson

    resource = fhirjson.loads(json_text)
    try:
        data = base64.b64decode(resource.get("content", ""), validate=False)
    except (binascii.Error, ValueError):  # pragma: no cover - validated on write
        raise FhirError("Stored document content is not valid base64") from None
    response = Response(data, status=200, content_type=resource.get("contentType", "application/octet-stream"))
    response.headers.update(headers)
    return response


def _http_date(instant: str) -> str:
    from datetime import datetime

    return format_datetime(datetime.fromisoformat(instant.replace("Z", "+00:00")), usegmt=True)


def _unsupported(rest: str = "") -> Response:
    first = rest.split("/", 1)[0] if rest else ""
    if request.method in ("DELETE", "PATCH"):
        raise MethodNotAllowed(f"{request.method} is not supported by this server")
    if first and search_query.is_type_name(first) and not stu3().is_resource(first):
        raise NotSupported(f"Resource type {first!r} is not supported by this server")
    raise InvalidRequest(f"{request.method} {request.path} is not a supported FHIR interaction")


# ------------------------------------------------------------------------------- errors and audit
def _fhir_error(error: FhirError) -> Response:
    try:
        fmt = response_format()
    except FhirError:
        fmt = formats.JSON
    headers = dict(error.headers)
    if isinstance(error, Unauthorized) and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = 'Bearer realm="medmij-dvza"'
    event = getattr(g, "fhir_audit", None)
    if event is not None and not event.detail:
        event.detail = error.diagnostics[:500]
    return fhir_response(
        formats.render(error.operation_outcome(), fmt), error.status_code, fmt=fmt, headers=headers
    )


def _unexpected_error(error: Exception) -> Response:
    """Any other failure: logged with its traceback, answered as a 500 OperationOutcome without
    internals (http.html#2.21.0.1: errors SHOULD be an OperationOutcome)."""
    from werkzeug.exceptions import HTTPException

    if isinstance(error, HTTPException) and error.code and error.code < 500:
        wrapped = FhirError(error.description or error.name)
        wrapped.status_code = error.code
        return _fhir_error(wrapped)
    current_app.logger.exception("unexpected error in the FHIR API")
    return _fhir_error(FhirError("An internal error occurred; the request was not completed"))


def _audit_after_request(response: Response) -> Response:
    event: AccessEvent | None = getattr(g, "fhir_audit", None)
    if event is None:
        event = AccessEvent(action="unknown", status=0, query=request.query_string.decode("latin-1")[:500])
    grant: AccessGrant | None = getattr(g, "fhir_grant", None)
    event.status = response.status_code
    if grant is not None:
        event.patient_id = grant.patient_id
        event.client_id = grant.client_id
        event.token_ref = grant.token_ref
        event.gegevensdiensten = tuple(sorted(grant.gegevensdiensten))
    event.request_id = request.headers.get("MedMij-Request-ID")
    event.correlation_id = request.headers.get("X-Correlation-ID")
    event.remote_addr = request.remote_addr
    try:
        services().audit.record(event)
    except Exception:  # noqa: BLE001 - fail closed: no data leaves without an audit record
        current_app.logger.exception("audit record failed; response withheld")
        error = FhirError("The access could not be logged; the response is withheld")
        return fhir_response(formats.render(error.operation_outcome(), formats.JSON), 500, fmt=formats.JSON)
    return response
