"""FHIR JSON (https://hl7.org/fhir/STU3/json.html) reading and canonical writing.

Decimals keep their precision: the specification says "decimal values ... precision SHALL be
preserved" (datatypes.html#decimal), so ``36.60`` stays ``36.60``. Numbers with a fraction or an
exponent are read as :class:`decimal.Decimal` and written back with the same digits, which the
standard ``json`` module cannot do; ``simplejson`` reads them, and :func:`dumps` writes them through
``orjson`` (each Decimal as a pre-written ``orjson.Fragment`` of its own digits), several times faster
than simplejson and the same text for what FHIR JSON holds; ``simplejson`` still writes what orjson
refuses (integers beyond 64 bits) and pretty output.

JSON text is Unicode (RFC 8259 §8.2): a ``\\uD800``–``\\uDFFF`` escape that is not half of a pair names
no character, so :func:`loads` refuses it rather than hand on a string that cannot be stored or sent.

The canonical form written by :func:`dumps` is compact, UTF-8, with ``resourceType`` first and
the other properties in specification order (:func:`canonical_order`), so stored resources are
byte-stable and their XML rendering needs no re-sorting.
"""

from __future__ import annotations

import re
import typing as t
from decimal import Decimal

import orjson
import simplejson

from .errors import FhirFormatError
from .schema import stu3

__all__ = ["loads", "dumps", "canonical_order", "check_depth", "Decimal", "MAX_DEPTH"]


def _reject_constant(name: str) -> t.NoReturn:
    raise FhirFormatError(f"JSON constant {name} is not allowed in FHIR JSON")


def loads(data: bytes | str) -> t.Any:
    """Parse JSON text, keeping decimal precision; raise :class:`FhirFormatError` on bad input."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FhirFormatError("FHIR JSON must be UTF-8 encoded") from exc
    try:
        value = simplejson.loads(data, use_decimal=True, parse_constant=_reject_constant)
    except simplejson.JSONDecodeError as exc:
        raise FhirFormatError(f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        raise FhirFormatError(f"The JSON is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise FhirFormatError(f"Invalid JSON number: {exc}") from None
    check_depth(value)
    if _SURROGATE_ESCAPE.search(data):
        try:
            dumps(value).encode("utf-8")
        except UnicodeEncodeError:
            raise FhirFormatError("The JSON contains a \\u escape of half a surrogate pair, which is no Unicode "
                                  "character (RFC 8259 section 8.2)") from None
    return value


#: Where a lone surrogate can come from: only an escape (the UTF-8 decoding above refuses encoded ones).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


#: FHIR resources nest far less deep (a QuestionnaireResponse 10 groups deep is about 40 levels);
#: every deeper document is refused before recursive code (ordering, validation, indexing) sees it.
MAX_DEPTH = 100


def check_depth(value: t.Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`FhirFormatError` when JSON ``value`` nests deeper than ``limit`` (no recursion)."""
    stack: list[tuple[t.Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise FhirFormatError(f"The document is nested more than {limit} levels deep")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))


def dumps(value: t.Any, *, pretty: bool = False) -> str:
    """Write JSON with decimals as written; compact unless ``pretty``."""
    if pretty:
        return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, indent=2, allow_nan=False)
    try:
        return orjson.dumps(value, default=_decimal_fragment, option=_AS_SIMPLEJSON).decode("utf-8")
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate, a type orjson does not write
        pass
    return simplejson.dumps(
        value, use_decimal=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


#: dates and dataclasses go to ``default`` (and so to simplejson, which refuses them) instead of being written;
#: floats, which FHIR JSON read by :func:`loads` never holds, are orjson's (it writes NaN as null)
_AS_SIMPLEJSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _decimal_fragment(value: t.Any) -> t.Any:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON")


def canonical_order(resource: dict[str, t.Any]) -> dict[str, t.Any]:
    """Return a copy of ``resource`` with properties in specification order.

    ``resourceType`` comes first; each element is followed by its ``_element`` sibling. Unknown
    properties are kept at the end (validation, not ordering, decides whether they are allowed).
    """
    return _order(resource, resource.get("resourceType"))


def _order(node: t.Any, type_name: str | None) -> t.Any:
    if isinstance(node, list):
        return [_order(item, type_name) for item in node]
    if not isinstance(node, dict):
        return node
    schema = stu3()
    if node.get("resourceType") and schema.has_type(node["resourceType"]):
        type_name = node["resourceType"]
    if type_name is None or not schema.has_type(type_name):
        return dict(node)
    elements = schema.elements(type_name)
    out: dict[str, t.Any] = {}
    if "resourceType" in node:
        out["resourceType"] = node["resourceType"]
    for name, element in elements.items():
        if name in node:
            value = node[name]
            if element.kind == "c":
                out[name] = _order(value, element.type)
            elif element.kind == "r":
                out[name] = _order(value, None)
            else:
                out[name] = value
        ext = "_" + name
        if ext in node:
            out[ext] = _order(node[ext], "Element")
    for key, value in node.items():
        if key not in out:
            out[key] = value
    return out
