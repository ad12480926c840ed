"""Request-scoped helpers shared by every FHIR interaction: the injected services, the base URL,
format negotiation, the response builder, the audit note and the token check.

The read (:mod:`fhir_api.reads`), write (:mod:`fhir_api.writes`) and Module 2
(:mod:`fhir_api.submissions`) interactions all use these; :mod:`fhir_api.api` only registers the
routes and the error handlers, so no interaction module imports another's routes.
"""

from __future__ import annotations

import typing as t

from flask import Response
from flask import current_app
from flask import g
from flask import request

from . import capability
from . import compartment
from . import formats
from .access import AccessGrant
from .access import Scope
from .access import scope_for
from .errors import Forbidden
from .errors import InvalidRequest
from .errors import NotSupported
from .errors import PayloadTooLarge
from .schema import stu3
from .search import query as search_query
from .services import AccessEvent
from .services import FhirServices
from .view import PatientView

EXTENSION_KEY = "fhir_api"


def services() -> FhirServices:
    return t.cast(FhirServices, current_app.extensions[EXTENSION_KEY])


def base_url() -> str:
    """Absolute URL of the FHIR base of this request (fullUrl and link prefix)."""
    found = g.get("fhir_base_url")
    if found is None:
        svc = services()
        if svc.public_base_url:
            found = svc.public_base_url.rstrip("/")
        else:
            # scheme and Host as sent (ASCII, a URI: fullUrl is one); request.host_url would also convert it to an
            # IRI, a tenth of a search's time (issue 12)
            found = f"{request.scheme}://{request.host}{request.script_root}{svc.url_prefix}"
        g.fhir_base_url = found
    return t.cast(str, found)


def local_bases() -> tuple[str, ...]:
    """The absolute bases that name this server in references: the request's, and the public one if set."""
    found = g.get("fhir_local_bases")
    if found is None:
        public = services().public_base_url
        found = g.fhir_local_bases = tuple(dict.fromkeys([base_url(), *([public.rstrip("/")] if public else [])]))
    return t.cast(tuple[str, ...], found)


def response_format() -> str:
    fmt = getattr(g, "fhir_format", None)
    if fmt is None:
        fmt = formats.negotiate_header(request.headers.get("Accept"), request.args.get("_format"))
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


#: MedMij-Request-ID (core.rscint.201) and X-Correlation-ID are identifiers: a UUID is 36 characters
TRACE_HEADERS = ("MedMij-Request-ID", "X-Correlation-ID")
MAX_TRACE_LENGTH = 64


def valid_trace_id(value: str) -> bool:
    return 0 < len(value) <= MAX_TRACE_LENGTH and all("!" <= ch <= "~" for ch in value)


def completed_event(status: int) -> AccessEvent:
    """This request's audit event with its outcome and who asked (the grant, the tracing headers)."""
    event: AccessEvent | None = getattr(g, "fhir_audit", None)
    if event is None:
        event = g.fhir_audit = AccessEvent(action="unknown", status=0,
                                           query=request.query_string.decode("latin-1")[:500])
    grant: AccessGrant | None = getattr(g, "fhir_grant", None)
    event.status = status
    if grant is not None:
        event.patient_id = grant.patient_id
        event.client_id = grant.client_id
        event.token_ref = grant.token_ref
        event.gegevensdiensten = tuple(sorted(grant.gegevensdiensten))
        event.recheck = grant.recheck
    event.request_id, event.correlation_id = (
        value if value is not None and valid_trace_id(value) else None
        for value in (request.headers.get(name) for name in TRACE_HEADERS))
    event.remote_addr = request.remote_addr
    return event


def authorize() -> tuple[AccessGrant, Scope]:
    """The grant of this request's token and the scope of its gegevensdiensten (401 otherwise)."""
    svc = services()
    grant = svc.access.resolve(request)
    g.fhir_grant = grant
    return grant, _scope(grant.gegevensdiensten, svc)


def _scope(gegevensdiensten: frozenset[str], svc: FhirServices) -> Scope:
    """The scope of a set of gegevensdiensten (the same few sets, over and over: kept per process)."""
    scope = svc.scopes.get(gegevensdiensten)
    if scope is None:
        scope = svc.scopes[gegevensdiensten] = scope_for(gegevensdiensten, svc.gegevensdiensten)
    return scope


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


def patient_view(grant: AccessGrant, scope: Scope) -> PatientView:
    svc = services()
    source = svc.connection() if svc.connection is not None else svc.session()
    return PatientView(source, grant.patient_id, scope, local_bases=local_bases())


def read_body() -> tuple[bytes, str]:
    """The request body and its format (415 for media types other than FHIR JSON/XML).

    Bounded before it is read: 413 when ``Content-Length`` is over ``MAX_BODY_BYTES``, and a chunked
    body (no length) is read no further than the limit — Werkzeug stops there without an error, so
    a body that fills the limit is refused as too large rather than parsed cut off.
    """
    limit = services().limits.max_body_bytes
    too_large = PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    fmt = formats.body_format(request.content_type)
    request.max_content_length = limit
    data = request.get_data(cache=False)
    if len(data) > limit or (request.content_length is None and len(data) >= limit):
        raise too_large
    return data, fmt


def read_resource() -> dict[str, t.Any]:
    """The request body parsed as one FHIR resource (JSON dict)."""
    data, fmt = read_body()
    return formats.parse_body(data, fmt)
