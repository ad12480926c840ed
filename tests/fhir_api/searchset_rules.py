"""An independent check of the rules every MedMij search response must meet (fhir-content.md §1.2),
written with FHIRPath (fhirpathpy) so it does not share code with the server's own rule checks."""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl
from urllib.parse import unquote
from urllib.parse import urlsplit

from fhirpathpy import evaluate
from fhirpathpy.models import models

BSN = "http://fhir.nl/fhir/NamingSystem/bsn"

RULES: dict[str, str] = {
    "type is searchset": "Bundle.type = 'searchset'",
    "entries have resource ids": "Bundle.entry.all(resource.id.exists())",
    "resources carry meta.profile": (
        "Bundle.entry.resource.where((is(OperationOutcome) or is(Binary)).not() and meta.profile.empty()).empty()"
    ),
    "fullUrl ends with the id": "Bundle.entry.all(fullUrl.endsWith(resource.id))",
    "fullUrl is absolute": "Bundle.entry.all(fullUrl.startsWith('http://') or fullUrl.startsWith('https://'))",
    "codings have system and code": "Bundle.descendants().where(is(Coding)).all(system.exists() and code.exists())",
    "no zib value set OID as system": (
        "Bundle.descendants().where(is(Coding) and system.startsWith('urn:oid:2.16.840.1.113883.2.4.3.11.60.40.2'))"
        ".empty()"
    ),
    "concepts have display or text": (
        "Bundle.descendants().where(is(CodeableConcept)).all(coding.display.exists() or text.exists() "
        "or extension.exists())"
    ),
    "references have display": (
        "Bundle.descendants().where(is(Reference)).all(display.exists() or extension.where(url = "
        "'http://hl7.org/fhir/StructureDefinition/data-absent-reason' or url = "
        "'http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor').exists())"
    ),
    "identifiers have system/type and value": (
        "Bundle.descendants().where(is(Identifier)).all((system.exists() or type.exists()) and value.exists())"
    ),
    "no BSN in clear": (
        f"Bundle.descendants().where(is(Identifier) and system = '{BSN}' and value.exists() "
        "and value.extension.empty()).empty()"
    ),
    "total counts matches only": (
        "Bundle.total.exists() and Bundle.total = Bundle.entry.where(search.mode = 'match').count()"
    ),
    "self link present": "Bundle.link.where(relation = 'self' and url.exists()).count() = 1",
    "self link has no BSN": f"Bundle.link.url.contains('{BSN}').not()",
}


def violations(bundle: dict[str, t.Any], request_query: str = "", *, paged: bool = False) -> list[str]:
    """The rules ``bundle`` breaks (empty list when it is a conformant MedMij searchset)."""
    failed = []
    for name, expression in RULES.items():
        if paged and name == "total counts matches only":
            expression = "Bundle.total >= Bundle.entry.where(search.mode = 'match').count()"
        result = evaluate(bundle, expression, {}, models["stu3"])
        if result != [True]:
            failed.append(f"{name}: {result}")
    if any(node.get("system") == BSN and "value" in node for node in _dicts(bundle)):
        failed.append("a BSN value is present")
    self_links = [link["url"] for link in bundle.get("link", []) if link.get("relation") == "self"]
    if self_links and request_query:
        decoded = unquote(self_links[0])
        for name, value in parse_qsl(request_query, keep_blank_values=True):
            if f"{name}={value}" not in decoded:
                failed.append(f"self link lacks {name}={value}")
    return failed


def _dicts(node: t.Any) -> t.Iterator[dict[str, t.Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dicts(item)


def counts(bundle: dict[str, t.Any]) -> dict[str, int]:
    result: dict[str, int] = {}
    for entry in bundle.get("entry", []):
        rtype = entry["resource"]["resourceType"]
        result[rtype] = result.get(rtype, 0) + 1
    return result


def query_of(url: str) -> str:
    return urlsplit(url).query
