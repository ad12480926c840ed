"""Resource storage and patient-scoped retrieval.

Writes (:class:`ResourceStore`) validate, apply the content rules, compute the Patient
compartment, stamp ``meta``, render JSON and XML once, and replace the index rows — all in the
caller's transaction. Reads go through :class:`PatientView`, which only ever returns:

* resources in the grant's patient compartment, of types its gegevensdiensten may read, and
  matching those gegevensdiensten' filters; and
* shared resources (no patient) reachable from those through references — e.g. the
  Practitioner of a Condition (transitively through other shared resources, never through
  another patient's data);
* a Binary (a document) only when a resource of the patient that this grant may read points at
  it directly, and no other patient's resource does (IHE MHD: the document belongs to its
  DocumentReference's patient; a document two patients claim is served to neither).

Anything else is indistinguishable from a resource that does not exist (404), so nothing leaks
across patients. Nothing a PGO sent is served before the hospital accepts it (``hidden_by``).
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import false
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from . import compartment
from . import content_rules
from . import fhirjson
from . import fhirxml
from .access import Scope
from .errors import InvalidResource
from .errors import Issue
from .models import DateIndex
from .models import ReferenceIndex
from .models import ResourceRow
from .models import StringIndex
from .models import TokenIndex
from .search import index as search_index
from .search.params import params_for
from .search.query import Condition
from .search.query import Include
from .search.query import ParsedSearch
from .search.query import all_conditions_sql
from .search.query import sort_sql
from .search.values import parse_reference
from .validation import validate_structure

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


def valid_id(logical_id: str) -> bool:
    """datatypes.html#id: ``[A-Za-z0-9\\-\\.]{1,64}``."""
    return 0 < len(logical_id) <= 64 and all(ch in _ID_CHARS for ch in logical_id)


def now_instant() -> str:
    """An FHIR instant for ``meta.lastUpdated`` (UTC, millisecond precision)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Written:
    row: ResourceRow
    created: bool
    #: BSNs removed from the resource (for the identity link of a Patient)
    bsns: tuple[str, ...]


class ResourceStore:
    """Write access to the resource tables within one SQLAlchemy session."""

    def __init__(self, session: Session, *, local_bases: t.Sequence[str] = ()):
        self.session = session
        self.local_bases = tuple(local_bases)

    # ------------------------------------------------------------------ lookups (unscoped, internal)
    def get(self, resource_type: str, logical_id: str) -> ResourceRow | None:
        return self.session.scalar(
            select(ResourceRow).where(
                ResourceRow.resource_type == resource_type, ResourceRow.logical_id == logical_id
            )
        )

    def load(self, resource_type: str, logical_id: str) -> dict[str, t.Any] | None:
        row = self.get(resource_type, logical_id)
        return fhirjson.loads(row.json_text) if row else None

    def display_for(self, resource_type: str, logical_id: str) -> str | None:
        resource = self.load(resource_type, logical_id)
        return display_of(resource) if resource else None

    # ---------------------------------------------------------------------------------- writing
    def prepare(self, resource: dict[str, t.Any], *, display_for: t.Callable[[str, str], str | None] | None = None
                ) -> tuple[dict[str, t.Any], tuple[str, ...]]:
        """Validate and fix a resource for storage; returns it with the BSNs that were masked.

        Raises :class:`InvalidResource` with every violated rule when it cannot be stored.
        """
        validate_structure(resource)
        bsns = tuple(content_rules.mask_bsn(resource))
        content_rules.fill_reference_displays(resource, display_for or self.display_for, self.local_bases)
        issues = content_rules.check(resource)
        issues += document_issues(resource, lambda t_, i: self.get(t_, i) is not None, self.local_bases)
        if issues:
            raise InvalidResource(
                f"{resource['resourceType']}/{resource.get('id', '')} breaks the MedMij content rules",
                issues=issues,
            )
        return resource, bsns

    def put(self, resource: dict[str, t.Any], *, prepared: bool = False,
            display_for: t.Callable[[str, str], str | None] | None = None, hidden_by: str | None = None) -> Written:
        """Create or update ``resource`` under its own id (FHIR update, http.html#update)."""
        logical_id = resource.get("id")
        if not isinstance(logical_id, str) or not valid_id(logical_id):
            raise InvalidResource(f"Resource id {logical_id!r} is not a valid FHIR id")
        bsns: tuple[str, ...] = ()
        if not prepared:
            resource, bsns = self.prepare(resource, display_for=display_for)
        patient_id = compartment.owner(resource, self.local_bases)
        existing = self.get(resource["resourceType"], logical_id)
        if existing is not None and existing.hidden_by is not None:
            raise InvalidResource(f"{resource['resourceType']}/{logical_id} is awaiting review and cannot change")
        if existing is not None and existing.patient_id != patient_id:
            raise InvalidResource(
                f"{resource['resourceType']}/{logical_id} belongs to another patient and cannot move"
            )
        return self._save(existing, resource, patient_id, hidden_by=hidden_by, bsns=bsns)

    def _save(self, existing: ResourceRow | None, resource: dict[str, t.Any], patient_id: str | None, *,
              hidden_by: str | None = None, bsns: tuple[str, ...] = ()) -> Written:
        """Store ``resource`` as the next version of ``existing`` (or as version 1): ``meta``, JSON, XML, index."""
        logical_id = resource["id"]
        version = existing.version_id + 1 if existing else 1
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = now_instant()
        resource = dict(resource)
        resource["meta"] = meta
        resource = fhirjson.canonical_order(resource)
        json_text = fhirjson.dumps(resource)
        xml_text = fhirxml.render_xml(resource)
        if existing is None:
            row = ResourceRow(
                resource_type=resource["resourceType"], logical_id=logical_id, patient_id=patient_id,
                version_id=version, last_updated=meta["lastUpdated"], json_text=json_text, xml_text=xml_text,
                hidden_by=hidden_by,
            )
            self.session.add(row)
            self.session.flush()
        else:
            row = existing
            row.version_id, row.last_updated = version, meta["lastUpdated"]
            row.json_text, row.xml_text = json_text, xml_text
            row.patient_id = patient_id
            self._drop_index(row.pk)
        self._write_index(row.pk, resource)
        return Written(row, existing is None, bsns)

    def move_to_patient(self, row: ResourceRow, resource: dict[str, t.Any], patient_id: str) -> Written:
        """Store ``resource`` (already prepared) as the next version of ``row`` in another patient's compartment.

        Only for merging two records of one person (``dvza.source``: ``Patient/$merge``, after the hospital's
        own system said they are one person); :meth:`put` never moves a resource between compartments. A row
        awaiting review keeps its ``hidden_by``.
        """
        if resource.get("resourceType") != row.resource_type or resource.get("id") != row.logical_id:
            raise InvalidResource("move_to_patient: the resource is not this row")
        if compartment.owner(resource, self.local_bases) != patient_id:
            raise InvalidResource(f"{row.resource_type}/{row.logical_id} does not refer to Patient/{patient_id}")
        return self._save(row, resource, patient_id, hidden_by=row.hidden_by)

    def unchanged(self, row: ResourceRow, prepared: dict[str, t.Any]) -> bool:
        """Is ``prepared`` (a resource after :meth:`prepare`) what ``row`` holds, ``meta.versionId`` and
        ``meta.lastUpdated`` aside? An idempotent upsert stores nothing new then."""
        stored = fhirjson.loads(row.json_text)
        return _without_version(stored) == _without_version(prepared)

    def delete(self, row: ResourceRow) -> None:
        """Remove one resource and its index rows (FHIR delete, http.html#delete; no history is kept)."""
        self._drop_index(row.pk)
        self.session.execute(delete(ResourceRow).where(ResourceRow.pk == row.pk))

    def claimed_by_other_patients(self, row: ResourceRow, patient_id: str) -> bool:
        """Does a resource of a patient other than ``patient_id`` refer to this (shared) row?"""
        source = aliased(ResourceRow)
        return self.session.scalar(
            select(ReferenceIndex.id).join(source, source.pk == ReferenceIndex.resource_pk).where(
                ReferenceIndex.target_type == row.resource_type, ReferenceIndex.target_id == row.logical_id,
                ReferenceIndex.param == search_index.ALL_REFERENCES, source.patient_id.is_not(None),
                source.patient_id != patient_id).limit(1)
        ) is not None

    def same_content(self, row: ResourceRow, resource: dict[str, t.Any]) -> bool:
        """Would storing ``resource`` leave ``row`` as it is (``meta.versionId``/``lastUpdated`` aside)?"""
        try:
            prepared, _ = self.prepare(dict(resource))
        except InvalidResource:
            return False
        stored = fhirjson.loads(row.json_text)
        for candidate in (prepared, stored):
            meta = dict(candidate.get("meta") or {})
            meta.pop("versionId", None)
            meta.pop("lastUpdated", None)
            candidate["meta"] = meta
        return fhirjson.dumps(fhirjson.canonical_order(prepared)) == fhirjson.dumps(fhirjson.canonical_order(stored))

    def create(self, resource: dict[str, t.Any], **kwargs: t.Any) -> Written:
        """FHIR create: the server assigns the id (a UUID)."""
        resource = dict(resource)
        resource["id"] = str(uuid.uuid4())
        return self.put(resource, **kwargs)

    def delete_patient_data(self, patient_id: str) -> int:
        """Remove every resource in a patient's compartment (test-data purge); returns the count."""
        pks = list(self.session.scalars(select(ResourceRow.pk).where(ResourceRow.patient_id == patient_id)))
        for pk in pks:
            self._drop_index(pk)
        if pks:
            self.session.execute(delete(ResourceRow).where(ResourceRow.pk.in_(pks)))
        return len(pks)

    def _drop_index(self, pk: int) -> None:
        for table in (TokenIndex, DateIndex, ReferenceIndex, StringIndex):
            self.session.execute(delete(table).where(table.resource_pk == pk))

    def _write_index(self, pk: int, resource: dict[str, t.Any]) -> None:
        extracted = search_index.extract(resource, self.local_bases)
        rows: list[t.Any] = []
        rows += [TokenIndex(resource_pk=pk, param=p, system=s, code=c) for p, s, c in extracted.tokens]
        rows += [DateIndex(resource_pk=pk, param=p, start=s, end=e) for p, s, e in extracted.dates]
        rows += [ReferenceIndex(resource_pk=pk, param=p, target_type=ty, target_id=i)
                 for p, ty, i in extracted.references]
        rows += [StringIndex(resource_pk=pk, param=p, value=v) for p, v in extracted.strings]
        self.session.add_all(rows)


def _without_version(resource: dict[str, t.Any]) -> str:
    """Canonical JSON of ``resource`` without ``meta.versionId``/``meta.lastUpdated`` (content comparison)."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    candidate = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        candidate["meta"] = meta
    return fhirjson.dumps(fhirjson.canonical_order(candidate))


def display_of(resource: dict[str, t.Any]) -> str | None:
    """A human-readable name for a resource, used to fill missing Reference.display."""
    names = resource.get("name")
    if isinstance(names, list) and names:
        name = names[0]
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        text = " ".join(p for p in parts if isinstance(p, str) and p)
        if text:
            return text
    if isinstance(names, str) and names:
        return names
    for key in ("title", "description"):
        if isinstance(resource.get(key), str) and resource[key]:
            return str(resource[key])
    code = resource.get("code")
    if isinstance(code, dict):
        if code.get("text"):
            return str(code["text"])
        for coding in code.get("coding", []):
            if coding.get("display"):
                return str(coding["display"])
    return None


@dataclass(slots=True)
class Page:
    """A search result: the page of matches, the total, and the included resources."""

    total: int
    matches: list[t.Any]
    included: list[t.Any]
    next_offset: int | None


# Aliases for the self-joins of the reachability CTE, built once (aliasing per query is costly).
_SEED_SOURCE = aliased(ResourceRow, name="seed_source")
_STEP_SHARED = aliased(ResourceRow, name="step_shared")
_STEP_EDGE = aliased(ReferenceIndex, name="step_edge")
_DOC_EDGE = aliased(ReferenceIndex, name="doc_edge")
_DOC_SOURCE = aliased(ResourceRow, name="doc_source")
_DOC_OTHER_EDGE = aliased(ReferenceIndex, name="doc_other_edge")
_DOC_OTHER_SOURCE = aliased(ResourceRow, name="doc_other_source")


class PatientView:
    """Read access for one grant: patient + gegevensdienst scope (see module docstring)."""

    def __init__(self, session: Session, patient_id: str, scope: Scope, *, local_bases: t.Sequence[str] = ()):
        self.session = session
        self.patient_id = patient_id
        self.scope = scope
        self.local_bases = tuple(local_bases)

    # ------------------------------------------------------------------------ visibility in SQL
    def compartment_visible(self, row: t.Any, resource_type: str | None = None) -> ColumnElement[bool]:
        """Patient-compartment resources this grant may see (type allowed and filters met)."""
        types = [resource_type] if resource_type else list(self.scope.read)
        unfiltered = [name for name in types if self.scope.can_read(name) and self.scope.filters(name) is None]
        clauses: list[ColumnElement[bool]] = []
        if len(unfiltered) == 1:
            clauses.append(row.resource_type == unfiltered[0])
        elif unfiltered:
            clauses.append(row.resource_type.in_(unfiltered))
        for type_name in types:
            filters = self.scope.filters(type_name) if self.scope.can_read(type_name) else None
            if not filters:
                continue
            known = params_for(type_name)
            alternatives = [
                all_conditions_sql([Condition(known[name], None, (value,)) for name, value in filter_set], row,
                                   self.local_bases)
                for filter_set in filters
            ]
            clauses.append(and_(row.resource_type == type_name, or_(*alternatives)))
        if not clauses:
            return false()
        return and_(row.patient_id == self.patient_id, row.hidden_by.is_(None),
                    or_(*clauses) if len(clauses) > 1 else clauses[0])

    def reachable(self) -> t.Any:
        """Recursive CTE of (type, id) reachable from visible compartment resources through
        references, passing only through shared resources."""
        source, edge = _SEED_SOURCE, ReferenceIndex
        seed = (
            select(edge.target_type.label("rtype"), edge.target_id.label("rid"))
            .join(source, source.pk == edge.resource_pk)
            .where(edge.param == search_index.ALL_REFERENCES, self.compartment_visible(source))
        )
        reach = seed.cte("reach", recursive=True)
        shared, edge2 = _STEP_SHARED, _STEP_EDGE
        step = (
            select(edge2.target_type, edge2.target_id)
            .join(shared, shared.pk == edge2.resource_pk)
            .join(reach, and_(shared.resource_type == reach.c.rtype, shared.logical_id == reach.c.rid))
            .where(shared.patient_id.is_(None), shared.hidden_by.is_(None), edge2.param == search_index.ALL_REFERENCES)
        )
        return reach.union(step)

    def visible(self, row: t.Any, resource_type: str) -> ColumnElement[bool]:
        """Visibility of ``row`` (an alias of ResourceRow) of the given type."""
        if compartment.is_patient_data(resource_type):
            return self.compartment_visible(row, resource_type)
        if resource_type == "Binary":
            return and_(row.patient_id.is_(None), row.hidden_by.is_(None), self.own_document(row))
        reach = self.reachable()
        shared = and_(
            row.patient_id.is_(None),
            row.hidden_by.is_(None),
            exists(select(reach.c.rtype).where(reach.c.rtype == row.resource_type, reach.c.rid == row.logical_id)),
        )
        if resource_type in compartment.OPTIONALLY_OWNED:  # the patient's own, or a shared one in reach
            return or_(self.compartment_visible(row, resource_type), shared)
        return shared

    def own_document(self, row: t.Any) -> ColumnElement[bool]:
        """A Binary is this patient's when a resource this grant may read refers to it directly
        and no resource of another patient does (visible or not)."""
        edge, source = _DOC_EDGE, _DOC_SOURCE
        claimed_by_own = exists(
            select(edge.id).join(source, source.pk == edge.resource_pk).where(
                edge.target_type == row.resource_type, edge.target_id == row.logical_id,
                edge.param == search_index.ALL_REFERENCES, self.compartment_visible(source))
        )
        other_edge, other_source = _DOC_OTHER_EDGE, _DOC_OTHER_SOURCE
        claimed_by_other = exists(
            select(other_edge.id).join(other_source, other_source.pk == other_edge.resource_pk).where(
                other_edge.target_type == row.resource_type, other_edge.target_id == row.logical_id,
                other_edge.param == search_index.ALL_REFERENCES, other_source.patient_id.is_not(None),
                other_source.patient_id != self.patient_id)
        )
        return and_(claimed_by_own, ~claimed_by_other)

    def may_read_type(self, resource_type: str) -> bool:
        """Can this grant read resources of this type at all (directly or as referenced data)?"""
        return self.scope.can_read(resource_type) or not compartment.is_patient_data(resource_type)

    # ---------------------------------------------------------------------------------- reading
    def read(self, resource_type: str, logical_id: str, column: str = "json_text") -> ResourceRow | None:
        row = ResourceRow
        statement = select(row).where(
            row.resource_type == resource_type, row.logical_id == logical_id, self.visible(row, resource_type)
        )
        return self.session.scalar(statement)

    def search(self, search: ParsedSearch, column: str = "json_text") -> Page:
        row = ResourceRow
        where = and_(
            row.resource_type == search.resource_type,
            self.visible(row, search.resource_type),
            all_conditions_sql(search.conditions, row, self.local_bases),
        )
        pks = list(self.session.scalars(select(row.pk).where(where).order_by(*sort_sql(search, row))))
        if search.lastn_max is not None:
            pks = self._lastn(pks, search)
        total = len(pks)
        if search.summary_count:
            return Page(total, [], [], None)
        count = search.count if search.count is not None else total
        page_pks = pks[search.offset: search.offset + count]
        next_offset = search.offset + count if search.offset + count < total else None
        matches = self._rows(page_pks, column)
        included = self._includes(search.includes, matches, column) if matches else []
        return Page(total, matches, included, next_offset)

    def _rows(self, pks: t.Sequence[int], column: str) -> list[t.Any]:
        if not pks:
            return []
        content = getattr(ResourceRow, column)
        found = {
            r.pk: r
            for r in self.session.execute(
                select(ResourceRow.pk, ResourceRow.resource_type, ResourceRow.logical_id,
                       ResourceRow.version_id, ResourceRow.last_updated, content.label("content"))
                .where(ResourceRow.pk.in_(list(pks)))
            )
        }
        return [found[pk] for pk in pks if pk in found]

    def _includes(self, includes: list[Include], matches: list[t.Any], column: str) -> list[t.Any]:
        """Resources named by ``_include``/``_revinclude`` (search.html#include), each visible to this
        grant, not already in the result; ``:iterate`` repeats on what was included."""
        seen = {(r.resource_type, r.logical_id) for r in matches}
        result: list[t.Any] = []
        frontier = list(matches)
        first = True
        while frontier and includes:
            wanted: list[tuple[str, str]] = []
            for include in includes:
                if not first and not include.iterate:
                    continue
                sources = [r for r in frontier if r.resource_type == include.source_type or include.reverse]
                if sources:
                    for key in self._include_targets(include, sources):
                        if key not in seen and self.may_read_type(key[0]):
                            seen.add(key)
                            wanted.append(key)
            found = self._visible_rows(wanted, column)
            result.extend(found)
            frontier = found
            first = False
        return result

    def _visible_rows(self, keys: list[tuple[str, str]], column: str) -> list[t.Any]:
        """The rows of ``keys`` this grant may see, in the order of ``keys`` (one query per type)."""
        by_type: dict[str, list[str]] = {}
        for type_name, logical_id in keys:
            by_type.setdefault(type_name, []).append(logical_id)
        pks: dict[tuple[str, str], int] = {}
        for type_name, ids in by_type.items():
            row = ResourceRow
            statement = select(row.pk, row.logical_id).where(
                row.resource_type == type_name, row.logical_id.in_(ids), self.visible(row, type_name)
            )
            for pk, logical_id in self.session.execute(statement):
                pks[(type_name, logical_id)] = pk
        return self._rows([pks[key] for key in keys if key in pks], column)

    def _include_targets(self, include: Include, sources: list[t.Any]) -> list[tuple[str, str]]:
        if include.reverse:
            keys = [(s.resource_type, s.logical_id) for s in sources]
            src = ResourceRow
            statement = (
                select(src.resource_type, src.logical_id)
                .join(ReferenceIndex, ReferenceIndex.resource_pk == src.pk)
                .where(
                    src.resource_type == include.source_type, ReferenceIndex.param == include.param,
                    or_(*[and_(ReferenceIndex.target_type == t_, ReferenceIndex.target_id == i) for t_, i in keys]),
                )
                .order_by(src.pk)
            )
            if include.target_type:
                statement = statement.where(ReferenceIndex.target_type == include.target_type)
            return [(r[0], r[1]) for r in self.session.execute(statement)]
        statement = (
            select(ReferenceIndex.target_type, ReferenceIndex.target_id)
            .where(ReferenceIndex.resource_pk.in_([s.pk for s in sources]), ReferenceIndex.param == include.param)
            .order_by(ReferenceIndex.resource_pk, ReferenceIndex.id)
        )
        if include.target_type:
            statement = statement.where(ReferenceIndex.target_type == include.target_type)
        return [(r[0], r[1]) for r in self.session.execute(statement)]

    def _lastn(self, pks: list[int], search: ParsedSearch) -> list[int]:
        """Observation/$lastn: the newest ``max`` Observations per code (fhir-content.md §1.5).

        Observations are grouped by the requested code they match when ``code`` was given,
        otherwise by their first ``Observation.code`` coding; newest = latest effective date,
        then latest update.
        """
        if not pks:
            return []
        requested = [
            value for c in search.conditions if c.param.name == "code" and c.modifier is None for value in c.values
        ]
        rows = {
            r.pk: r for r in self.session.execute(
                select(ResourceRow.pk, ResourceRow.json_text, ResourceRow.last_updated)
                .where(ResourceRow.pk.in_(pks))
            )
        }
        effective: dict[int, str] = {}
        for pk, start in self.session.execute(
            select(DateIndex.resource_pk, DateIndex.start).where(
                DateIndex.resource_pk.in_(pks), DateIndex.param == "date"
            )
        ):
            effective[pk] = max(effective.get(pk, ""), start)
        groups: dict[str, list[int]] = {}
        order: list[str] = []
        for pk in pks:
            resource = fhirjson.loads(rows[pk].json_text)
            key = _lastn_key(resource, requested)
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(pk)
        result: list[int] = []
        for key in order:
            members = sorted(
                groups[key], key=lambda pk: (effective.get(pk, ""), rows[pk].last_updated, pk), reverse=True
            )
            result.extend(members[: search.lastn_max or 1])
        return result


def _lastn_key(resource: dict[str, t.Any], requested: list[str]) -> str:
    codings = [c for c in (resource.get("code") or {}).get("coding", []) if isinstance(c, dict)]
    for value in requested:
        system, sep, code = value.rpartition("|") if "|" in value else ("", "", value)
        for coding in codings:
            if coding.get("code") == code and (not sep or (coding.get("system") or "") == system):
                return value
    if codings:
        return f"{codings[0].get('system', '')}|{codings[0].get('code', '')}"
    return f"id:{resource.get('id')}"




def document_issues(resource: dict[str, t.Any], exists_: t.Callable[[str, str], bool],
                    local_bases: t.Sequence[str]) -> list[Issue]:
    """A DocumentReference is only served when this server holds its document (IHE MHD: the
    attachment URL is where the PGO retrieves it, with its token, from this resource server).

    Every attachment must point at a Binary held here; external URLs and unknown Binaries are
    refused (the loader imports external documents first).
    """
    if resource.get("resourceType") != "DocumentReference":
        return []
    issues = []
    for index, content in enumerate(resource.get("content", [])):
        attachment = content.get("attachment") or {}
        url = attachment.get("url")
        if not url:
            if not attachment.get("data"):
                issues.append(Issue("invalid", f"DocumentReference.content[{index}] has no document"))
            continue
        target = parse_reference(url, local_bases)
        if target is None:
            issues.append(Issue("invalid", f"DocumentReference.content[{index}].attachment.url {url!r} "
                                           "is not a document on this server"))
        elif target.type != "Binary" or not exists_(target.type, target.id):
            issues.append(Issue("invalid", f"DocumentReference.content[{index}].attachment.url {url!r} "
                                           "points at a document this server does not hold"))
    return issues
