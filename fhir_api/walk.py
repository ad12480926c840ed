"""Typed traversal of FHIR JSON using the STU3 element schema.

FHIR JSON carries no type names below the resource, so rules such as "every Reference has a
display" (fhir-content.md §1.2 #12) or "index every reference" need the schema to know that
``Observation.subject`` is a Reference and ``Extension.valueReference`` is one too. These helpers
give (type, value, path) for every element, including inside extensions and contained resources.
"""

from __future__ import annotations

import typing as t

from .schema import stu3

Node = tuple[str, t.Any, str]  # (FHIR type name, JSON value, FHIRPath-like location)


def iter_typed(resource: dict[str, t.Any]) -> t.Iterator[Node]:
    """Yield every complex and primitive element of ``resource`` with its type, depth first."""
    type_name = resource.get("resourceType")
    if not isinstance(type_name, str) or not stu3().has_type(type_name):
        return
    yield type_name, resource, type_name
    yield from _iter_children(resource, type_name, type_name)


def _iter_children(node: dict[str, t.Any], type_name: str, path: str) -> t.Iterator[Node]:
    elements = stu3().elements(type_name)
    for key, value in node.items():
        if key.startswith("_") or key == "resourceType":
            base = key[1:]
            if key.startswith("_") and base in elements:
                for index, ext in _items(value):
                    if isinstance(ext, dict):
                        yield from _iter_children(ext, "Element", f"{path}.{base}{index}")
            continue
        element = elements.get(key)
        if element is None:
            continue
        for index, item in _items(value):
            location = f"{path}.{key}{index}"
            if element.kind == "p":
                yield element.type, item, location
            elif element.kind == "r":
                if isinstance(item, dict):
                    inner_type = item.get("resourceType")
                    if isinstance(inner_type, str) and stu3().has_type(inner_type):
                        yield inner_type, item, location
                        yield from _iter_children(item, inner_type, location)
            elif isinstance(item, dict):
                yield element.type, item, location
                yield from _iter_children(item, element.type, location)


def _items(value: t.Any) -> t.Iterator[tuple[str, t.Any]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield f"[{index}]", item
    else:
        yield "", value


def resolve(resource: dict[str, t.Any], path: str) -> list[tuple[str, t.Any]]:
    """Values at a dotted ``path`` below the resource, with their types.

    A step ending in ``[x]`` matches every choice variant (``effective[x]`` → ``effectiveDateTime``,
    ``effectivePeriod``); lists are flattened, as FHIRPath does.
    """
    type_name = resource["resourceType"]
    current: list[tuple[str, t.Any]] = [(type_name, resource)]
    for step in path.split("."):
        following: list[tuple[str, t.Any]] = []
        for node_type, node in current:
            if not isinstance(node, dict) or not stu3().has_type(node_type):
                continue
            elements = stu3().elements(node_type)
            if step.endswith("[x]"):
                prefix = step[:-3]
                names = [n for n in elements if n.startswith(prefix) and n[len(prefix):][:1].isupper()]
            else:
                names = [step] if step in elements else []
            for name in names:
                if name not in node:
                    continue
                element = elements[name]
                for _, item in _items(node[name]):
                    if element.kind == "r" and isinstance(item, dict):
                        following.append((item.get("resourceType", "Resource"), item))
                    else:
                        following.append((element.type, item))
        current = following
    return current
