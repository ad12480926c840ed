"""Searchset Bundles assembled from stored bytes (https://hl7.org/fhir/STU3/bundle.html,
search.html#conformance).

The resources inside were rendered once, on write, in both formats; a search response only wraps
them. ``total`` counts matches only, not ``_include``d resources (search.html#total); every entry
has an absolute ``fullUrl`` and ``search.mode`` ``match`` or ``include``; the ``self`` link carries
the parameters that were applied.
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass

import simplejson

from .fhirxml import FHIR_NS
from .fhirxml import escape_attr as xml_attr
from .formats import XML


@dataclass(frozen=True, slots=True)
class Entry:
    full_url: str
    content: str  # stored JSON or XML text of the resource
    mode: str  # match | include | outcome


def searchset(
    fmt: str,
    *,
    total: int,
    self_url: str,
    entries: t.Sequence[Entry],
    next_url: str | None = None,
    last_updated: str,
) -> str:
    """The whole Bundle as text in ``fmt``."""
    bundle_id = str(uuid.uuid4())
    links = [("self", self_url)] + ([("next", next_url)] if next_url else [])
    if fmt == XML:
        parts = [
            f'<?xml version="1.0" encoding="UTF-8"?><Bundle xmlns="{FHIR_NS}"><id value="{bundle_id}"/>',
            f'<meta><lastUpdated value="{last_updated}"/></meta><type value="searchset"/>',
            f'<total value="{total}"/>',
        ]
        parts += [f'<link><relation value="{r}"/><url value="{xml_attr(u)}"/></link>' for r, u in links]
        for entry in entries:
            parts.append(
                f'<entry><fullUrl value="{xml_attr(entry.full_url)}"/><resource>{entry.content}</resource>'
                f'<search><mode value="{entry.mode}"/></search></entry>'
            )
        parts.append("</Bundle>")
        return "".join(parts)
    dumps = simplejson.dumps
    head = (
        f'{{"resourceType":"Bundle","id":"{bundle_id}","meta":{{"lastUpdated":"{last_updated}"}},'
        f'"type":"searchset","total":{total},"link":['
        + ",".join(f'{{"relation":"{r}","url":{dumps(u)}}}' for r, u in links)
        + "]"
    )
    if not entries:
        return head + "}"
    body = ",".join(
        f'{{"fullUrl":{dumps(e.full_url)},"resource":{e.content},"search":{{"mode":"{e.mode}"}}}}'
        for e in entries
    )
    return f'{head},"entry":[{body}]}}'
