"""Typed traversal of FHIR JSON using the STU3 element schema.

FHIR JSON carries no type names below the resource, so rules such as "every Reference has a
display" (fhir-content.md §1.2 #12) or "index every reference" need the schema to know that
``Observation.subject`` is a Reference and ``Extension.valueReference`` is one too. :func:`iter_typed`
gives (type, value, path) for every complex element, including inside extensions (also those on
primitives, ``_name``) and contained resources; :func:`resolve` reads values, primitives included, at a path.
"""

from __future__ import annotations

import typing as t

from .schema import stu3

Node = tuple[str, t.Any, str]  # (FHIR type name, JSON value, FHIRPath-like location)


def iter_typed(resource: dict[str, t.Any]) -> t.Iterator[Node]:
    """Yield ``resource`` and every complex element and contained resource in it with its type, depth first.

    Primitives are not yielded: every rule that walks a resource looks at complex types (Reference,
    Attachment, Identifier, Coding, Extension, …) and reads their primitives itself. The nodes are collected
    in one recursive pass before the first is yielded — on the write path, where several rules walk each
    resource, a chain of nested generators and a path for every primitive were most of the walk's time
    (profiled). A caller may change the values it is given; elements it adds are not visited.
    """
    type_name = resource.get("resourceType")
    schema = stu3()
    if not isinstance(type_name, str) or not schema.has_type(type_name):
        return iter(())
    nodes: list[Node] = [(type_name, resource, type_name)]
    _collect(resource, type_name, type_name, nodes, schema.elements, schema.has_type)
    return iter(nodes)


def _collect(node: dict[str, t.Any], type_name: str, path: str, nodes: list[Node],
             elements_of: t.Callable[[str], dict[str, t.Any]], has_type: t.Callable[[str], bool]) -> None:
    elements = elements_of(type_name)
    for key, value in node.items():
        element = elements.get(key)
        if element is None:  # resourceType, an unknown name, or the ``_name`` sibling of a primitive
            base = key[1:]
            if key[:1] == "_" and base in elements:
                for location, ext in _items(value, f"{path}.{base}"):
                    if isinstance(ext, dict):
                        _collect(ext, "Element", location, nodes, elements_of, has_type)
            continue
        kind = element.kind
        if kind == "p":
            continue
        for location, item in _items(value, f"{path}.{key}"):
            if not isinstance(item, dict):
                continue
            if kind == "r":
                inner_type = item.get("resourceType")
                if isinstance(inner_type, str) and has_type(inner_type):
                    nodes.append((inner_type, item, location))
                    _collect(item, inner_type, location, nodes, elements_of, has_type)
            else:
                nodes.append((element.type, item, location))
                _collect(item, element.type, location, nodes, elements_of, has_type)


def _items(value: t.Any, location: str) -> t.Sequence[tuple[str, t.Any]]:
    if isinstance(value, list):
        return [(f"{location}[{index}]", item) for index, item in enumerate(value)]
    return ((location, value),)


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
                value = node[name]
                for item in value if isinstance(value, list) else (value,):
                    if element.kind == "r" and isinstance(item, dict):
                        following.append((item.get("resourceType", "Resource"), item))
                    else:
                        following.append((element.type, item))
        current = following
    return current


#: Where a resource names another by its literal address (references.html#literal): Reference.reference, and
#: Attachment.url, which points at a Binary (DocumentReference.content.attachment.url = Binary/x).
LITERAL_REFERENCE_KEYS = {"Reference": "reference", "Attachment": "url"}


def literal_references(resource: dict[str, t.Any]) -> t.Iterator[tuple[dict[str, t.Any], str, str, str]]:
    """(element, key, value, path) of every literal reference in ``resource`` that is a string; the caller
    may replace ``element[key]``."""
    for fhir_type, node, path in iter_typed(resource):
        key = LITERAL_REFERENCE_KEYS.get(fhir_type)
        if key is not None and isinstance(node.get(key), str):
            yield node, key, node[key], path
