"""Content negotiation and body parsing (https://hl7.org/fhir/STU3/http.html#mime-type,
https://hl7.org/fhir/STU3/formats.html).

* ``_format`` overrides ``Accept`` (http.html#mime-type: "the _format parameter ... to override
  the accept header value"); values: ``json``, ``xml`` or a MIME type.
* No Accept, ``*/*`` or ``application/*``: JSON. An Accept that names only other types: 406.
* Writes must be ``application/fhir+json``/``application/json`` or ``application/fhir+xml``/
  ``application/xml``/``text/xml`` (with optional parameters); anything else: 415.
"""

from __future__ import annotations

import functools
import typing as t

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from . import fhirjson
from . import fhirxml
from .errors import FhirFormatError
from .errors import NotAcceptable
from .errors import UnsupportedMediaType

JSON = "json"
XML = "xml"
MIME = {JSON: "application/fhir+json", XML: "application/fhir+xml"}
CONTENT_TYPE = {JSON: "application/fhir+json;charset=utf-8", XML: "application/fhir+xml;charset=utf-8"}

_JSON_TYPES = ("application/fhir+json", "application/json+fhir", "application/json", "text/json")
_XML_TYPES = ("application/fhir+xml", "application/xml+fhir", "application/xml", "text/xml")
_FORMAT_ALIASES = {"json": JSON, "xml": XML, **{m: JSON for m in _JSON_TYPES}, **{m: XML for m in _XML_TYPES}}


def format_from_param(value: str) -> str:
    """The format a ``_format`` value names; 406 when it names none we write."""
    # an unencoded '+' in a query string arrives as a space: application/fhir+json
    key = value.split(";")[0].strip().lower().replace(" ", "+")
    if key not in _FORMAT_ALIASES:
        raise NotAcceptable(f"_format={value!r} is not supported; use json or xml")
    return _FORMAT_ALIASES[key]


def negotiate_header(accept_header: str | None, format_param: str | None) -> str:
    """:func:`negotiate` from the raw ``Accept`` header. A client sends the same header on every request, so the
    answer is kept per header text (parsing it cost a tenth of a search, issue 12); refusals are not kept."""
    if format_param:
        return format_from_param(format_param)
    return _negotiate_header(accept_header or "")


@functools.lru_cache(maxsize=256)
def _negotiate_header(accept_header: str) -> str:
    return negotiate(parse_accept_header(accept_header, MIMEAccept), None)


def negotiate(accept: MIMEAccept, format_param: str | None) -> str:
    """Pick JSON or XML for a response; raise :class:`NotAcceptable` (406) if neither is wanted."""
    if format_param:
        return format_from_param(format_param)
    entries = [(mime.split(";")[0].strip().lower(), q) for mime, q in accept if q > 0] if accept else []
    if not entries:
        return JSON
    for mime, _ in sorted(entries, key=lambda e: -e[1]):  # stable: header order among equal q
        if mime in _JSON_TYPES or mime in ("*/*", "application/*"):
            return JSON
        if mime in _XML_TYPES or mime == "text/*":
            return XML
    raise NotAcceptable(
        f"None of the requested media types ({accept.to_header()}) can be produced; "
        "this server writes application/fhir+json and application/fhir+xml"
    )


def body_format(content_type: str | None) -> str:
    """The format of a request body from its Content-Type; 415 if it is not FHIR JSON/XML."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _JSON_TYPES:
        return JSON
    if mime in _XML_TYPES:
        return XML
    raise UnsupportedMediaType(
        f"Content-Type {content_type or '(none)'!r} is not supported; send application/fhir+json or "
        "application/fhir+xml"
    )


def parse_body(data: bytes, fmt: str) -> dict[str, t.Any]:
    """A request body as a FHIR JSON dict."""
    if not data.strip():
        raise FhirFormatError("The request body is empty")
    if fmt == XML:
        return fhirxml.parse_xml(data)
    resource = fhirjson.loads(data)
    if not isinstance(resource, dict) or "resourceType" not in resource:
        raise FhirFormatError("The body is not a FHIR resource (no resourceType)")
    return resource


def render(resource: dict[str, t.Any], fmt: str, *, pretty: bool = False) -> str:
    """Serialise a resource built at request time (OperationOutcome, Bundle responses, ...)."""
    if fmt == XML:
        return '<?xml version="1.0" encoding="UTF-8"?>' + fhirxml.render_xml(fhirjson.canonical_order(resource))
    return fhirjson.dumps(fhirjson.canonical_order(resource), pretty=pretty)
