"""Index extraction at write time: one pass over a resource gives every index row it needs."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field

from ..walk import literal_references
from ..walk import resolve
from .params import params_for
from .values import element_date_ranges
from .values import element_strings
from .values import element_tokens
from .values import parse_reference

#: ``param`` value of the generic reference edges (every Reference and local attachment URL).
ALL_REFERENCES = "*"


@dataclass(slots=True)
class ResourceIndex:
    tokens: list[tuple[str, str | None, str]] = field(default_factory=list)
    dates: list[tuple[str, str, str]] = field(default_factory=list)
    references: list[tuple[str, str, str]] = field(default_factory=list)
    strings: list[tuple[str, str]] = field(default_factory=list)
    #: Observation only: (system, code, position) of each ``Observation.code`` coding, and the effective
    #: date ``$lastn`` orders by (the latest start of the ``date`` values; "" when there is none)
    lastn: list[tuple[str, str, int]] = field(default_factory=list)
    effective: str = ""


def extract(resource: dict[str, t.Any], local_bases: t.Sequence[str] = ()) -> ResourceIndex:
    """All index values of ``resource``: its search parameters plus the generic reference edges."""
    index = ResourceIndex()
    for param in params_for(resource["resourceType"]).values():
        for path in param.paths:
            for fhir_type, value in resolve(resource, path):
                if param.type == "token":
                    for system, code in element_tokens(fhir_type, value):
                        index.tokens.append((param.name, system, code[:255]))
                elif param.type == "uri":
                    if isinstance(value, str):
                        index.tokens.append((param.name, None, value[:255]))
                elif param.type == "date":
                    for start, end in element_date_ranges(fhir_type, value):
                        index.dates.append((param.name, start, end))
                elif param.type == "string":
                    for text in element_strings(fhir_type, value):
                        index.strings.append((param.name, text))
                elif param.type == "reference" and isinstance(value, dict):
                    target = parse_reference(value.get("reference", ""), local_bases)
                    if target and (not param.targets or target.type in param.targets):
                        index.references.append((param.name, target.type, target.id))
    seen: set[tuple[str, str]] = set()
    for target in local_targets(resource, local_bases):
        if (target.type, target.id) not in seen:
            seen.add((target.type, target.id))
            index.references.append((ALL_REFERENCES, target.type, target.id))
    if resource["resourceType"] == "Observation":
        code = resource.get("code")
        codings = code.get("coding") if isinstance(code, dict) else None
        for position, coding in enumerate(codings if isinstance(codings, list) else []):
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                system = coding.get("system") if isinstance(coding.get("system"), str) else ""
                index.lastn.append((system[:255], coding["code"][:255], position))
        index.effective = max((start for param, start, _ in index.dates if param == "date"), default="")
    index.tokens = sorted(set(index.tokens), key=lambda row: (row[0], row[1] or "", row[2]))
    index.dates = sorted(set(index.dates))
    index.references = sorted(set(index.references))
    index.strings = sorted(set(index.strings))
    return index


def local_targets(resource: dict[str, t.Any], local_bases: t.Sequence[str] = ()) -> t.Iterator[t.Any]:
    """Every local resource this one points at: References anywhere (extensions included) and
    attachment URLs such as ``DocumentReference.content.attachment.url = Binary/x``."""
    for _, _, value, _ in literal_references(resource):
        target = parse_reference(value, local_bases)
        if target is not None:
            yield target
