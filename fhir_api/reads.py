"""The read interactions of the FHIR STU3 REST interface (https://hl7.org/fhir/STU3/http.html):
``metadata`` (capabilities), search (GET and POST ``_search``, search.html), read, ``Observation/$lastn``
and ``Binary`` as a FHIR resource or as the raw document (http.html#binary).

Every request but ``metadata`` needs a bearer token (MedMij core.rscint.200, RFC 6750 §2.1); the
token's grant decides the patient and the gegevensdiensten (:class:`~fhir_api.store.PatientView`).
"""

from __future__ import annotations

import base64
import binascii
import typing as t
from email.utils import format_datetime
from urllib.parse import urlencode

from flask import Response
from flask import g
from flask import request

from . import bundles
from . import capability
from . import formats
from .context import audit
from .context import authorize
from .context import base_url
from .context import check_readable
from .context import fhir_response
from .context import patient_view
from .context import response_format
from .context import services
from .context import supported_type
from .errors import FhirError
from .errors import InvalidRequest
from .errors import NotFound
from .search import query as search_query
from .store import now_instant
from .store import valid_id


def register(bp: t.Any) -> None:
    bp.add_url_rule("/metadata", "metadata", metadata, methods=["GET"])
    bp.add_url_rule("/Observation/$lastn", "lastn", lastn, methods=["GET"])
    bp.add_url_rule("/<rtype>", "search", search, methods=["GET"])
    bp.add_url_rule("/<rtype>/_search", "search_post", search, methods=["POST"])
    bp.add_url_rule("/<rtype>/<rid>", "read", read, methods=["GET"])


def metadata() -> Response:
    fmt = response_format()
    audit("capabilities")
    statement = capability.capability_statement(services(), base_url())
    return fhir_response(formats.render(statement, fmt), fmt=fmt)


def search(rtype: str) -> Response:
    return _run_search(rtype, lastn=False)


def lastn() -> Response:
    return _run_search("Observation", lastn=True)


def _run_search(rtype: str, *, lastn: bool) -> Response:
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded" and \
            "_format" in request.form:
        # POST _search carries every search parameter in its body (search.html#Introduction), _format included
        g.fhir_format = formats.negotiate_header(request.headers.get("Accept"), request.form.get("_format"))
    fmt = response_format()
    # the query as sent, until it is parsed (a refused one is audited too; the audit log masks BSNs)
    audit("operation-lastn" if lastn else "type-search", resource_type=rtype,
          query=request.query_string.decode("latin-1")[:500])
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
    query = urlencode(parsed.used)
    audit("operation-lastn" if lastn else "type-search", resource_type=rtype, query=query)
    page = patient_view(grant, scope).search(parsed, column="xml_text" if fmt == formats.XML else "json_text")
    base = base_url()
    path = f"{base}/{rtype}/$lastn" if lastn else f"{base}/{rtype}"
    self_url = path + ("?" + query if parsed.used else "")
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


def read(rtype: str, rid: str) -> Response:
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
    row = patient_view(grant, scope).read(rtype, rid, column)
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
