"""Evaluating ``action.assert`` (https://hl7.org/fhir/STU3/testscript-definitions.html#TestScript.setup.action.assert;
operators: https://hl7.org/fhir/STU3/valueset-assert-operator-codes.html; fhir-content.md §7.3–§8.3).

Each check returns an :class:`Outcome`: ``ok`` True/False, or None when it cannot be evaluated here
(reported as SKIP). ``warningOnly`` and ``stopTestOnFail`` are applied by the runner.
"""

from __future__ import annotations

import re
import typing as t
import urllib.parse
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

from . import fhirpath
from .documents import Document
from .documents import mime_type
from .operations import Exchange
from .testscript import Assert

#: https://hl7.org/fhir/STU3/valueset-assert-response-code-types.html
RESPONSE_CODES = {"okay": 200, "created": 201, "noContent": 204, "notModified": 304, "bad": 400, "forbidden": 403,
                  "notFound": 404, "methodNotAllowed": 405, "conflict": 409, "gone": 410, "preconditionFailed": 412,
                  "unprocessable": 422}
OPERATORS = frozenset({"equals", "notEquals", "in", "notIn", "greaterThan", "lessThan", "empty", "notEmpty",
                       "contains", "notContains", "eval"})
#: Touchstone rules re-implemented here (fhir-content.md §7.3); matched on ruleId or the rule's file name.
RULES = {"queryParamsInSelfLink": "queryParamsInSelfLink", "rewrite-response-taskStatus": "rewrite-response-taskStatus",
         "modifyTask": "rewrite-response-taskStatus"}
VALIDATION_NOTE = ("validateProfileId/minimumId: structural FHIR STU3 check (fhir.resources.STU3) plus meta.profile; "
                   "profile constraints, bindings and invariants are NOT validated (fhir-content.md §8.3)")


@dataclass
class Outcome:
    ok: bool | None
    detail: str = ""
    notes: list[str] = field(default_factory=list)


def compare(actual: t.Any, operator: str | None, expected: str | None) -> bool:
    """Apply an assert operator (default ``equals``) to string forms; ``in``/``notIn`` take a comma list."""
    op = operator or "equals"
    text = None if actual is None else fhirpath.as_text(actual)
    if op == "empty":
        return text in (None, "")
    if op == "notEmpty":
        return text not in (None, "")
    exp = expected or ""
    if op == "equals":
        return text == exp
    if op == "notEquals":
        return text != exp
    if op in ("in", "notIn"):
        inside = text in [v.strip() for v in exp.split(",")]
        return inside if op == "in" else not inside
    if op in ("contains", "notContains"):
        inside = text is not None and exp in text
        return inside if op == "contains" else not inside
    if op in ("greaterThan", "lessThan"):
        if text is None:
            return False
        try:
            a: t.Any = Decimal(text)
            b: t.Any = Decimal(exp)
        except ArithmeticError:
            a, b = text, exp
        return a > b if op == "greaterThan" else a < b
    raise ValueError(f"unsupported operator {op!r}")


def _described(op: str | None, expected: str | None) -> str:
    return f"{op or 'equals'} {expected!r}" if expected is not None else (op or "equals")


def check_response_code(a: Assert, ex: Exchange) -> Outcome:
    ok = compare(str(ex.status), a.operator, a.response_code)
    return Outcome(ok, f"expected responseCode {_described(a.operator, a.response_code)}, got {ex.status}")


def check_response(a: Assert, ex: Exchange) -> Outcome:
    code = RESPONSE_CODES.get(a.response or "")
    if code is None:
        return Outcome(False, f"unknown response code name {a.response!r}")
    ok = compare(str(ex.status), a.operator, str(code))
    return Outcome(ok, f"expected response {a.response} ({_described(a.operator, str(code))}), got {ex.status}")


def check_resource(a: Assert, doc: Document | None) -> Outcome:
    got = doc.resource_type if doc else None
    return Outcome(compare(got, a.operator, a.resource), f"expected resource {_described(a.operator, a.resource)}, "
                   f"got {got or 'no FHIR resource'}")


def check_content_type(a: Assert, ex: Exchange, direction: str) -> Outcome:
    got = ex.header("Content-Type", request=direction == "request")
    media = (got or "").split(";")[0].strip()
    expected = mime_type(a.content_type) or ""
    if a.operator in (None, "equals", "notEquals"):
        ok = media == expected or (a.content_type in ("json", "xml") and media.endswith(a.content_type)
                                   and media.startswith("application/"))
        ok = ok if a.operator != "notEquals" else not ok
    else:
        ok = compare(media, a.operator, expected)
    return Outcome(ok, f"expected Content-Type {_described(a.operator, expected)}, got {got!r}")


def check_header(a: Assert, ex: Exchange, direction: str, expected: str | None) -> Outcome:
    """``headerField`` + ``value``/``operator``; for Content-Type, media-type parameters (charset) are ignored."""
    got = ex.header(a.header_field or "", request=direction == "request")
    if got is not None and (a.header_field or "").lower() == "content-type" and expected and ";" not in expected:
        got = got.split(";")[0].strip()
    op = a.operator or ("notEmpty" if expected is None else "equals")
    return Outcome(compare(got, op, expected), f"expected header {a.header_field} {_described(op, expected)}, "
                   f"got {got!r}")


def check_expression(a: Assert, doc: Document | None, expected: str | None, source: Document | None,
                     variables: t.Mapping[str, t.Any]) -> Outcome:
    """``expression`` (FHIRPath): boolean when neither ``operator``/``value`` nor ``compareToSource*`` is
    given; otherwise its first value compared with ``value``, or with ``compareToSourceExpression``
    evaluated on the ``compareToSourceId`` fixture."""
    if doc is None or doc.resource is None:
        notes = doc.notes if doc else []
        why = f" ({notes[0]})" if notes else ""
        return Outcome(False, f"no FHIR resource to evaluate {a.expression or ''}{why}")
    try:
        if a.compare_to_source_id is not None:
            if source is None or source.resource is None:
                return Outcome(False, f"compareToSourceId {a.compare_to_source_id!r}: no such fixture/response")
            src_expr = a.compare_to_source_expression or a.expression or ""
            expected_values = fhirpath.evaluate(source.resource, src_expr, variables)
            actual_values = fhirpath.evaluate(doc.resource, a.expression or src_expr, variables)
            exp = fhirpath.as_text(expected_values[0]) if expected_values else None
            act = actual_values[0] if actual_values else None
            return Outcome(compare(act, a.operator, exp),
                           f"{a.expression or src_expr} = {act!r}, expected {_described(a.operator, exp)} "
                           f"(from {a.compare_to_source_id})")
        result = fhirpath.evaluate(doc.resource, a.expression or "", variables)
    except Exception as exc:  # noqa: BLE001 - an unevaluable expression fails the assert
        return Outcome(False, f"cannot evaluate {a.expression!r}: {type(exc).__name__}: {exc}")
    if expected is None and a.operator in (None, "eval"):
        return Outcome(fhirpath.truthy(result), f"{a.expression} evaluated to {_short(result)}")
    if a.operator in ("empty", "notEmpty"):
        ok = (not result) if a.operator == "empty" else bool(result)
        return Outcome(ok, f"{a.expression} evaluated to {_short(result)}, expected {a.operator}")
    actual = result[0] if result else None
    return Outcome(compare(actual, a.operator, expected),
                   f"{a.expression} evaluated to {_short(result)}, expected {_described(a.operator, expected)}")


def _short(result: list[t.Any]) -> str:
    text = repr(result if len(result) != 1 else result[0])
    return text if len(text) <= 200 else text[:197] + "..."


def check_request_url(a: Assert, ex: Exchange, expected: str | None) -> Outcome:
    op = a.operator or "contains"
    return Outcome(compare(urllib.parse.unquote(ex.url), op, expected),
                   f"request URL {ex.url!r} expected {_described(op, expected)}")


def check_request_method(a: Assert, ex: Exchange) -> Outcome:
    return Outcome(compare(ex.method.lower(), a.operator, (a.request_method or "").lower()),
                   f"request method {ex.method}, expected {_described(a.operator, a.request_method)}")


def check_navigation_links(a: Assert, doc: Document | None) -> Outcome:
    links = {link.get("relation") for link in ((doc.resource or {}).get("link") or [])} if doc else set()
    has = {"first", "last"} <= links or "self" in links
    want = bool(a.navigation_links)
    return Outcome(has == want, f"Bundle.link relations {sorted(x for x in links if x)}")


def check_path(a: Assert, doc: Document | None, expected: str | None) -> Outcome:
    """``path``: XPath (prefix ``f:`` = FHIR namespace) on XML bodies, or a dotted JSONPath (``$.a.b[0]``)."""
    if doc is None:
        return Outcome(False, "no body")
    try:
        values = evaluate_path(doc, a.path or "")
    except Exception as exc:  # noqa: BLE001
        return Outcome(False, f"cannot evaluate path {a.path!r}: {exc}")
    if expected is None and a.operator is None:
        return Outcome(bool(values), f"path {a.path} gave {_short(values)}")
    return Outcome(compare(values[0] if values else None, a.operator, expected),
                   f"path {a.path} gave {_short(values)}, expected {_described(a.operator, expected)}")


def evaluate_path(doc: Document, path: str) -> list[t.Any]:
    if path.startswith("$"):
        node: list[t.Any] = [doc.resource]
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", path[1:]):
            if part.startswith("["):
                idx = int(part[1:-1])
                node = [n[idx] for n in node if isinstance(n, list) and len(n) > idx]
            else:
                nxt: list[t.Any] = []
                for n in node:
                    items = n if isinstance(n, list) else [n]
                    nxt.extend(i[part] for i in items if isinstance(i, dict) and part in i)
                node = nxt
        return [n for n in node if n is not None]
    if doc.format != "xml":
        raise ValueError("XPath on a non-XML body")
    from lxml import etree

    root = etree.fromstring(doc.text.encode("utf-8"))
    result = root.xpath(path, namespaces={"f": "http://hl7.org/fhir"})
    items = result if isinstance(result, list) else [result]
    return [i.get("value") if hasattr(i, "get") and i.get("value") is not None else str(i) for i in items]


# ------------------------------------------------------------------------------ validation
def check_validate_profile(profile_url: str | None, doc: Document | None) -> Outcome:
    """``validateProfileId``: the body parses with the fhir.resources STU3 model of its type
    (cardinality/datatypes of the base spec) and, for a non-base profile, declares it in
    ``meta.profile``; for a base profile the resource type must match. See :data:`VALIDATION_NOTE`."""
    if not profile_url:
        return Outcome(False, "validateProfileId refers to no TestScript.profile")
    if doc is None or doc.resource is None:
        return Outcome(False, "no FHIR resource to validate", [VALIDATION_NOTE])
    problems = structural_problems(doc.resource)
    base = "http://hl7.org/fhir/StructureDefinition/"
    rtype = doc.resource.get("resourceType")
    if profile_url.startswith(base):
        if profile_url[len(base):] != rtype:
            problems.insert(0, f"resource is {rtype}, profile is for {profile_url[len(base):]}")
    elif profile_url not in ((doc.resource.get("meta") or {}).get("profile") or []):
        problems.insert(0, f"meta.profile does not declare {profile_url}")
    detail = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
    return Outcome(not problems, detail or f"{rtype} valid against the base STU3 structure", [VALIDATION_NOTE])


def structural_problems(resource: dict[str, t.Any]) -> list[str]:
    from fhir.resources.STU3 import get_fhir_model_class

    try:
        model = get_fhir_model_class(str(resource.get("resourceType")))
    except Exception:  # noqa: BLE001
        return [f"unknown STU3 resource type {resource.get('resourceType')!r}"]
    try:
        model.model_validate(resource)
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError or model errors
        errors = getattr(exc, "errors", None)
        if callable(errors):
            return [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors()]
        return [str(exc)]
    return []


def check_minimum(fixture: Document | None, doc: Document | None) -> Outcome:
    """``minimumId``: every element of the minimum fixture occurs in the body (lists: each fixture item
    matched by some item); the fixture's top-level ``id``, ``meta.versionId/lastUpdated`` and ``text``
    are ignored."""
    if fixture is None or fixture.resource is None:
        return Outcome(False, "minimumId fixture not found")
    if doc is None or doc.resource is None:
        return Outcome(False, "no FHIR resource")
    wanted = dict(fixture.resource)
    for key in ("id", "text"):
        wanted.pop(key, None)
    if isinstance(wanted.get("meta"), dict):
        wanted["meta"] = {k: v for k, v in wanted["meta"].items() if k not in ("versionId", "lastUpdated")}
    missing: list[str] = []
    _subset(wanted, doc.resource, wanted.get("resourceType", ""), missing)
    return Outcome(not missing, "missing: " + ", ".join(missing[:5]) if missing else "all minimum elements present",
                   [VALIDATION_NOTE])


def _subset(want: t.Any, got: t.Any, path: str, missing: list[str]) -> None:
    if isinstance(want, dict):
        if not isinstance(got, dict):
            missing.append(path)
            return
        for key, value in want.items():
            if key not in got:
                missing.append(f"{path}.{key}")
            else:
                _subset(value, got[key], f"{path}.{key}", missing)
    elif isinstance(want, list):
        items = got if isinstance(got, list) else [got]
        for i, w in enumerate(want):
            if not any(_matches(w, g) for g in items):
                missing.append(f"{path}[{i}]")
    elif want != got:
        missing.append(f"{path} ({want!r} != {got!r})")


def _matches(want: t.Any, got: t.Any) -> bool:
    probe: list[str] = []
    _subset(want, got, "", probe)
    return not probe


# ----------------------------------------------------------------------------------- rules
def rule_kind(rule_id: str, rule_paths: t.Mapping[str, str]) -> str | None:
    """Which re-implemented Touchstone rule a ruleId names (by id or by its ``.groovy`` file name)."""
    candidates = [rule_id, rule_paths.get(rule_id, "")]
    for key, kind in RULES.items():
        if any(key.lower() in c.lower() for c in candidates):
            return kind
    return None


_REFERENCE_VALUE = re.compile(r"^([A-Z][A-Za-z]+/)?([A-Za-z0-9\-.]{1,64})$")


def check_query_params_in_self_link(ex: Exchange, doc: Document | None) -> Outcome:
    """Touchstone ``assert-response-queryParamsInSelfLink`` (fhir-content.md §1.2 #18, §7.3 (1)): every
    ``name=value`` of the URL-decoded request query occurs in the URL-decoded self link; a reference
    value may occur with or without its ``Type/`` prefix."""
    query = urllib.parse.urlsplit(ex.url).query
    if not query:
        return Outcome(True, "request has no query parameters")
    bundle_links = ((doc.resource or {}).get("link") or []) if doc else []
    links = [link.get("url", "") for link in bundle_links if link.get("relation") == "self"]
    if not links:
        return Outcome(False, "response has no self link")
    self_link = urllib.parse.unquote(links[0])
    missing = []
    for pair in urllib.parse.unquote(query).split("&"):
        if not pair or pair in self_link:
            continue
        name, _eq, value = pair.partition("=")
        match = _REFERENCE_VALUE.match(value)
        if match:
            variants = [f"{name}={match.group(2)}"] + ([f"{name}={m}/{match.group(2)}" for m in re.findall(
                r"([A-Z][A-Za-z]+)/" + re.escape(match.group(2)), self_link)] if not match.group(1) else [])
            if any(v in self_link for v in variants):
                continue
        missing.append(pair)
    if missing:
        return Outcome(False, f"not in self link {self_link!r}: {', '.join(missing)}")
    return Outcome(True, "all request parameters are in the self link")
