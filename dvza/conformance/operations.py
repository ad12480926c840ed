"""Executing ``action.operation`` over HTTP (https://hl7.org/fhir/STU3/testscript-definitions.html#TestScript.setup.action.operation;
fhir-content.md §7.3, §8.1).

Operation type codes: ``http://hl7.org/fhir/restful-interaction`` (read, vread, search, search-type,
history, create, update, delete, transaction, batch, capabilities), ``http://hl7.org/fhir/http-operations``
(get, post, put, delete, head, options: the raw ``url`` as given) and the Interoplab ``purge`` (not HTTP:
handled by the runner's reset hook). An operation without ``accept`` sends no Accept header (that is how
NTS ``nts:addAccept="false"`` ends up in the generated script); ``contentType`` ``none`` sends none.
"""

from __future__ import annotations

import typing as t
import urllib.parse
from dataclasses import dataclass
from dataclasses import field

import requests

from .documents import Document
from .documents import format_of
from .documents import mime_type
from .testscript import Operation

#: type codes sent as HTTP requests → method; None = path built from resource/params/targetId.
HTTP_METHODS = {
    "read": "GET", "vread": "GET", "search": "GET", "search-type": "GET", "history": "GET", "capabilities": "GET",
    "create": "POST", "update": "PUT", "delete": "DELETE", "transaction": "POST", "batch": "POST",
    "get": "GET", "post": "POST", "put": "PUT", "head": "HEAD", "options": "OPTIONS",
}
#: Operation codes that are not HTTP requests: the runner's reset hook runs them (else SKIPPED).
HOOK_OPERATIONS = frozenset({"purge"})
SUPPORTED_OPERATIONS = frozenset(HTTP_METHODS) | HOOK_OPERATIONS
WITH_BODY = frozenset({"create", "update", "transaction", "batch", "post", "put"})


class OperationError(Exception):
    """The request could not be built (unknown fixture, variable, …)."""


@dataclass
class Exchange:
    """One request/response pair; ``response`` None when the request failed (``error`` says why)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request: Document | None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response: Document | None = None
    error: str | None = None

    def header(self, name: str, *, request: bool = False) -> str | None:
        headers = self.request_headers if request else self.response_headers
        for key, value in headers.items():
            if key.lower() == name.lower():
                return value
        return None


def encode_query(url: str) -> str:
    """``encodeRequestUrl``: percent-encode the names and values of the query (``|`` → ``%7C``,
    ``:`` and ``/`` kept, existing escapes kept)."""
    base, sep, query = url.partition("?")
    if not sep:
        return url
    parts = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        parts.append(urllib.parse.quote(name, safe="%:_-.$") + eq + urllib.parse.quote(value, safe="%:/,_-.$"))
    return f"{base}?{'&'.join(parts)}"


def build_url(base_url: str, op: Operation, substitute: t.Callable[[str], str],
              target: Document | None = None) -> str:
    """The request URL: an absolute ``url`` as is; a relative one against the base; else
    ``[base]/[resource][params]`` (params without a leading ``/`` or ``?`` get a ``/``), with
    ``targetId``'s type/id for read/update/delete when no params are given; ``[base]`` exactly as
    configured (with or without a trailing ``/``) for transaction/batch and ``[base]/metadata`` for capabilities."""
    base = base_url.rstrip("/")
    if op.url:
        url = substitute(op.url)
        if not urllib.parse.urlsplit(url).scheme:
            url = f"{base}/{url.lstrip('/')}"
    elif op.type_code in ("transaction", "batch"):
        url = base_url + (substitute(op.params) if op.params else "")  # POST [base]: exactly as configured
    elif op.type_code == "capabilities":
        url = f"{base}/metadata"
    else:
        resource = op.resource
        params = substitute(op.params) if op.params else ""
        if not params and target is not None and target.resource and op.type_code in ("read", "vread", "update",
                                                                                        "delete"):
            resource = resource or target.resource.get("resourceType")
            params = f"/{target.resource.get('id', '')}"
        if params and not params.startswith(("/", "?")):
            params = "/" + params
        url = f"{base}/{resource}{params}" if resource else f"{base}{params}"
    return encode_query(url) if op.encode_request_url else url


def send(session: requests.Session, method: str, url: str, headers: dict[str, str], body: Document | None,
         timeout: float) -> Exchange:
    exchange = Exchange(method, url, headers, body)
    sent: dict[str, str | None] = dict(headers)
    sent.setdefault("Accept", None)  # no accept element: no Accept header (not requests' default */*)
    try:
        resp = session.request(method, url, headers=sent,
                               data=body.text.encode("utf-8") if body is not None else None,
                               timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        exchange.error = f"{type(exc).__name__}: {exc}"
        return exchange
    exchange.status = resp.status_code
    exchange.response_headers = dict(resp.headers)
    ctype = resp.headers.get("Content-Type")
    fmt = format_of(ctype, resp.text[:64] if resp.content else "")
    exchange.response = Document(resp.text if fmt else "", fmt)
    exchange.response_headers["x-runner-body-bytes"] = str(len(resp.content))
    return exchange


def request_headers(op: Operation, substitute: t.Callable[[str], str], with_body: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    accept = mime_type(op.accept)
    if accept:
        headers["Accept"] = accept
    content_type = mime_type(op.content_type)
    if with_body and content_type:
        headers["Content-Type"] = content_type
    for name, value in op.request_headers:
        headers[name] = substitute(value)
    return headers
