"""The FHIR STU3 REST interface (https://hl7.org/fhir/STU3/http.html) as a Flask blueprint: the
routes of :mod:`fhir_api.reads`, :mod:`fhir_api.writes` and :mod:`fhir_api.submissions`, one error
family rendered as OperationOutcome (http.html#2.21.0.1), and the audit record of every request.

Every outcome is audit-logged through the injected :class:`~fhir_api.services.AuditSink`; when the
record cannot be written the response is withheld (fail closed). No answer may be cached
(``Cache-Control: no-store``, RFC 9111 §5.2.2.5): it is a patient's data, raw Binary documents included.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request

from . import formats
from . import reads
from . import submissions
from . import writes
from .context import EXTENSION_KEY
from .context import MAX_TRACE_LENGTH
from .context import TRACE_HEADERS
from .context import completed_event
from .context import fhir_response
from .context import response_format
from .context import services
from .context import valid_trace_id
from .errors import FhirError
from .errors import GrantLapsed
from .errors import InvalidRequest
from .errors import MethodNotAllowed
from .errors import NotSupported
from .errors import PayloadTooLarge
from .errors import Unauthorized
from .schema import stu3
from .search import query as search_query
from .services import FhirServices


def init_app(app: Flask, fhir_services: FhirServices, *, url_prefix: str = "/fhir") -> Blueprint:
    """Register the resource server under ``url_prefix`` with its dependencies."""
    fhir_services.url_prefix = url_prefix.rstrip("/")
    app.extensions[EXTENSION_KEY] = fhir_services
    blueprint = create_blueprint()
    app.register_blueprint(blueprint, url_prefix=fhir_services.url_prefix or None)
    return blueprint


def create_blueprint() -> Blueprint:
    bp = Blueprint("fhir", __name__)
    bp.before_request(_check_request)
    bp.after_request(_no_store)  # registered first, so it runs last (also on a withheld answer)
    bp.after_request(_audit_after_request)
    bp.register_error_handler(FhirError, _fhir_error)
    bp.register_error_handler(Exception, _unexpected_error)
    reads.register(bp)
    writes.register(bp)
    submissions.register(bp)
    bp.add_url_rule("/", "root", _unsupported, methods=["GET", "DELETE", "PUT", "PATCH"], strict_slashes=False)
    bp.add_url_rule("/<path:rest>", "other", _unsupported, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    return bp


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
    from werkzeug.exceptions import RequestEntityTooLarge

    if isinstance(error, RequestEntityTooLarge):
        return _fhir_error(PayloadTooLarge(f"The request body is larger than the limit of "
                                           f"{services().limits.max_body_bytes} bytes"))
    if isinstance(error, HTTPException) and error.code and error.code < 500:
        wrapped = FhirError(error.description or error.name)
        wrapped.status_code = error.code
        return _fhir_error(wrapped)
    current_app.logger.exception("unexpected error in the FHIR API")
    return _fhir_error(FhirError("An internal error occurred; the request was not completed"))


def _check_request() -> None:
    """Refuse what no interaction accepts before anything reads it: tracing headers that are not
    identifiers (at most 64 visible ASCII characters) and bodies over the limit (413, read no further
    than the limit even when the body is chunked)."""
    request.max_content_length = services().limits.max_body_bytes
    for name in TRACE_HEADERS:
        value = request.headers.get(name)
        if value is not None and not valid_trace_id(value):
            raise InvalidRequest(f"{name} must be at most {MAX_TRACE_LENGTH} visible ASCII characters")
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _audit_after_request(response: Response) -> Response:
    event = completed_event(response.status_code)
    if event.recorded:  # a submission writes its record in its own transaction (fhir_api.submissions)
        return response
    try:
        try:
            services().audit.record(event)
        except GrantLapsed as lapsed:  # revoked or expired since the request began: no data leaves
            services().access.forget(request)
            event.status, event.recheck, event.resource_ids = lapsed.status_code, None, []
            event.detail = lapsed.diagnostics[:500]
            services().audit.record(event)
            return _fhir_error(lapsed)
    except Exception:  # noqa: BLE001 - fail closed: no data leaves without an audit record
        current_app.logger.exception("audit record failed; response withheld")
        error = FhirError("The access could not be logged; the response is withheld")
        return fhir_response(formats.render(error.operation_outcome(), formats.JSON), 500, fmt=formats.JSON)
    return response
