"""Literal references rewritten on the way in (https://hl7.org/fhir/STU3/references.html#literal,
http.html#transaction).

A Bundle's entries refer to each other by their ``fullUrl`` (``urn:uuid:``, ``urn:oid:``); the server
replaces those by the ``Type/id`` each entry is stored under. A reference that spells out this server's
own base (``https://dvza.example/fhir/Patient/1``) is stored relative (``Patient/1``), so the same target
has one spelling in the index and in what is served. One function does both, for the PGO's submissions
and for the hospital's source API.
"""

from __future__ import annotations

import typing as t

from .search.values import parse_reference
from .walk import literal_references


def rewrite_references(resource: dict[str, t.Any], *, placeholders: t.Mapping[str, str] | None = None,
                       local_bases: t.Sequence[str] = ()) -> list[tuple[str, str]]:
    """Rewrite the literal references of ``resource`` in place: a ``placeholders`` key (a Bundle entry's
    fullUrl) becomes its value (that entry's ``Type/id``); an absolute URL on one of ``local_bases`` becomes
    relative. Returns ``(path, value)`` for each ``urn:`` reference that names no entry, for the caller to
    refuse."""
    unresolved: list[tuple[str, str]] = []
    for node, key, value, path in literal_references(resource):
        if placeholders and value in placeholders:
            node[key] = placeholders[value]
        elif value.startswith("urn:"):
            unresolved.append((path, value))
        elif local_bases and "://" in value:
            target = parse_reference(value, local_bases)
            if target is not None:
                node[key] = f"{target.type}/{target.id}"
    return unresolved
