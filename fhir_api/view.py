"""Patient-scoped retrieval: what one grant (patient + gegevensdiensten) may read.

:class:`PatientView` only ever returns

* resources in the grant's patient compartment (STU3 compartmentdefinition-patient.html), of types its
  gegevensdiensten may read and matching those gegevensdiensten' filters (MedMij core.rscint.203: the
  patient follows from the OAuth grant, never from the request);
* shared resources (no patient) reachable from those through references — the Practitioner of a
  Condition — passing only through other shared resources, never through another patient's data;
* a Binary (a document) only when a resource of the patient that this grant may read points at it
  directly, and no other patient's resource does (IHE MHD: the document belongs to its
  DocumentReference's patient; a document two patients claim is served to neither).

Anything else is indistinguishable from a resource that does not exist (404). Nothing a PGO sent is
served before the hospital accepts it (``hidden_by``).

Cost (issue 12): every statement is built and compiled once per shape (:mod:`fhir_api.sqlcache`) and
runs on the request's own connection. A search is driven by its most selective condition through the
patient-led index rows, so it costs what it finds, not what the patient has; ``_include`` follows only
the references of the page (a target reached from a visible resource is itself visible, or not, by the
rules above — no walk over the record); ``$lastn`` reads the newest per code from ``fhir_index_lastn``.
Shared data asked for by itself (a read of a Practitioner, a search of Medication) is found by walking the
references level by level, one indexed query per level, so neither other patients' data nor unreferenced
shared rows add to its cost.
"""

from __future__ import annotations

import functools
import json
import typing as t
from dataclasses import dataclass

from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import literal_column
from sqlalchemy import not_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy import union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from . import compartment
from .access import Scope
from .models import LastnIndex
from .models import ReferenceIndex
from .models import ResourceRow
from .search import index as search_index
from .search.params import params_for
from .search.query import Condition
from .search.query import Include
from .search.query import ParsedSearch
from .search.sql import Binds
from .search.sql import InJsonArray
from .search.sql import Shape
from .search.sql import can_drive
from .search.sql import condition_parts
from .search.sql import condition_sql
from .search.sql import sort_parts
from .search.sql import sort_sql
from .search.sql import values_dict
from .sqlcache import STATEMENTS

ALL = search_index.ALL_REFERENCES
T = t.TypeVar("T")
#: types whose resources always belong to a patient (written into the statement): a walk through shared data
#: skips them in SQL — a record's every resource refers to its Patient
_NEVER_SHARED = [literal_column(f"'{name}'") for name in sorted({"Patient", *compartment.OWNED})]
_R = ResourceRow.__table__.c


@dataclass(slots=True)
class Page:
    """A search result: the page of matches, the total, and the included resources."""

    total: int
    matches: list[t.Any]
    included: list[t.Any]
    next_offset: int | None


#: reached ids of one type up to this many are bound one by one (an IN list, padded to a few shapes);
#: more go in one JSON array bind (:class:`~fhir_api.search.sql.InJsonArray`), as drivers cap binds
LONGEST_ID_LIST = 1024


def _bucket(n: int) -> int:
    """IN-list sizes are padded to a power of two, so list lengths share a few compiled statements."""
    size = 1
    while size < n:
        size *= 2
    return size


def _padded(values: t.Sequence[t.Any]) -> list[t.Any]:
    return list(values) + [values[-1]] * (_bucket(len(values)) - len(values))


def _columns(row: t.Any, column: str) -> list[t.Any]:
    return [row.pk, row.resource_type, row.logical_id, row.patient_id, row.version_id, row.last_updated,
            getattr(row, column).label("content")]


class PatientView:
    """Read access for one grant: patient + gegevensdienst scope (see module docstring)."""

    def __init__(self, source: Session | Connection, patient_id: str, scope: Scope, *,
                 local_bases: t.Sequence[str] = ()):
        #: where to read: a Core connection (the read path), or a session (inside a write)
        self.source = source
        self.patient_id = patient_id
        self.scope = scope
        self.local_bases = tuple(local_bases)
        self._filters: dict[str, tuple[Shape, list[t.Any]]] = {}
        self._reached: dict[str, list[str]] | None = None
        self._connection: t.Any = None

    # --------------------------------------------------------------------------------- plumbing
    def _run(self, key: t.Hashable, build: t.Callable[[], t.Any], values: t.Sequence[t.Any]) -> list[t.Any]:
        connection = self._connection
        if connection is None or connection.closed:
            source = self.source
            connection = self._connection = source if isinstance(source, Connection) else source.connection()
        compiled = STATEMENTS.get(connection, key, build)
        return compiled.rows(connection, values_dict(values))

    def may_read_type(self, resource_type: str) -> bool:
        """Can this grant read resources of this type at all (directly or as referenced data)?"""
        return self.scope.can_read(resource_type) or not compartment.is_patient_data(resource_type)

    # ------------------------------------------------------------------------- visibility parts
    def _filter_parts(self, resource_type: str) -> tuple[Shape, list[t.Any]]:
        """The gegevensdienst filters on ``resource_type`` (e.g. Zelfmetingen: vital signs only)."""
        cached = self._filters.get(resource_type)
        if cached is not None:
            return cached
        filters = self.scope.filters(resource_type) if self.scope.can_read(resource_type) else ()
        known = params_for(resource_type)
        if filters is None:
            parts: tuple[Shape, list[t.Any]] = (("all",), [])
        else:
            shapes, values = [], []
            for filter_set in filters:
                conds = [condition_parts(Condition(known[name], None, (value,)), self.local_bases)
                         for name, value in filter_set]
                shapes.append(tuple(c[0] for c in conds))
                values += [v for c in conds for v in c[1]]
            parts = (("any", tuple(shapes)), values)
        self._filters[resource_type] = parts
        return parts

    def compartment_parts(self, resource_type: str) -> tuple[Shape, list[t.Any]]:
        """Shape and values of "``row`` is this patient's, of this type, accepted, filters met"."""
        if not self.scope.can_read(resource_type) or not compartment.is_patient_data(resource_type) and \
                resource_type not in compartment.OPTIONALLY_OWNED:
            return ("none",), []
        shape, values = self._filter_parts(resource_type)
        return ("compartment", shape), [self.patient_id, resource_type, *values]

    @staticmethod
    def compartment_sql(shape: Shape, row: t.Any, b: Binds) -> ColumnElement[bool]:
        if shape[0] == "none":
            return false()
        base = and_(row.patient_id == b(), row.resource_type == b(), row.hidden_by.is_(None))
        filters = shape[1]
        if filters[0] == "all":
            return base
        alternatives = _filter_set_clauses(filters[1], row, b)
        return and_(base, or_(*alternatives)) if alternatives else false()

    def compartment_visible(self, row: t.Any, resource_type: str | None = None) -> ColumnElement[bool]:
        """SQL (values bound) for "``row`` is a resource of this patient this grant may read" — for callers
        outside the read path (the availability check, a source's full replace)."""
        if resource_type is not None:
            shape, values = self.compartment_parts(resource_type)
            return self.compartment_sql(shape, row, Binds(values=values))
        shape, values = self._any_compartment_parts()
        return self._any_compartment_sql(shape, row, Binds(values=values))

    def _any_compartment_parts(self) -> tuple[Shape, list[t.Any]]:
        """"A resource of this patient that this grant may read", whatever its type."""
        unfiltered, filtered, values = [], [], []
        for name in sorted(self.scope.read):
            if not (compartment.is_patient_data(name) or name in compartment.OPTIONALLY_OWNED):
                continue
            shape, filter_values = self._filter_parts(name)
            if shape[0] == "all":
                unfiltered.append(name)
            else:
                filtered.append(shape)
                values += [name, *filter_values]
        return (len(unfiltered), tuple(filtered)), [self.patient_id, *unfiltered, *values]

    @staticmethod
    def _any_compartment_sql(shape: Shape, row: t.Any, b: Binds) -> ColumnElement[bool]:
        unfiltered, filtered = shape
        patient = row.patient_id == b()
        alternatives = []
        if unfiltered:
            alternatives.append(row.resource_type.in_([b() for _ in range(unfiltered)]))
        for filter_shape in filtered:
            type_clause = row.resource_type == b()
            sets = _filter_set_clauses(filter_shape[1], row, b)
            alternatives.append(and_(type_clause, or_(*sets)) if sets else false())
        if not alternatives:
            return false()
        return and_(patient, row.hidden_by.is_(None), or_(*alternatives))

    def _visible_parts(self, resource_type: str, *, via_reference: bool, known_id: str | None = None,
                       scan: bool = False) -> tuple[Shape, list[t.Any]]:
        """Shape and values of "``row`` of this type is visible to the grant" (module docstring);
        ``via_reference``: the row was reached through a reference of a visible resource; ``known_id``: the one
        row asked for (a read), so a shared resource is judged by walking back from it instead of forward over
        the whole record; ``scan``: a search — a Binary is then found from this patient's references, not by
        judging every Binary (whose number grows with other patients' documents, issue 12)."""
        if compartment.is_patient_data(resource_type):
            shape, values = self.compartment_parts(resource_type)
            return ("patient", shape), values
        if resource_type == "Binary":
            any_shape, any_values = self._any_compartment_parts()
            shared: tuple[Shape, list[t.Any]] = (("binary", any_shape, scan), [self.patient_id, *any_values,
                                                                               self.patient_id])
        elif via_reference:
            shared = (("shared-ref",), [])
        elif known_id is not None:
            shared = (("shared-ref",), []) if self._reached_back(resource_type, known_id) else (("nothing",), [])
        else:
            ids = self._reach().get(resource_type, [])
            if len(ids) > LONGEST_ID_LIST:  # a record can refer to any number of shared resources
                shared = (("shared-json",), [json.dumps(ids)])
            else:
                shared = (("shared-ids", _bucket(len(ids))), _padded(ids)) if ids else (("nothing",), [])
        if resource_type in compartment.OPTIONALLY_OWNED:
            own_shape, own_values = self.compartment_parts(resource_type)
            if scan and shared[0][0] in ("shared-ids", "shared-json"):
                return ("optional-union", own_shape, shared[0]), [*own_values, resource_type, *shared[1]]
            return ("optional", own_shape, shared[0]), [*own_values, *shared[1]]
        return shared

    def _visible_sql(self, shape: Shape, row: t.Any, b: Binds) -> ColumnElement[bool]:
        kind = shape[0]
        if kind == "patient":
            return self.compartment_sql(shape[1], row, b)
        if kind == "optional":
            own = self.compartment_sql(shape[1], row, b)
            return or_(own, self._visible_sql(shape[2], row, b))
        if kind == "optional-union":
            # a search of a type a patient may own or share (Device): "own OR reached" written as one OR made
            # SQLite take the type's common term and read every row of the type, other patients' too (issue 12,
            # tests/fhir_api/test_search_cost.py); as the union of two indexed lookups it reads what it returns
            own_row, shared_row = aliased(ResourceRow, name="o"), aliased(ResourceRow, name="sh")
            own_rows = select(own_row.pk).where(self.compartment_sql(shape[1], own_row, b))
            shared_rows = select(shared_row.pk).where(shared_row.resource_type == b(),
                                                      self._visible_sql(shape[2], shared_row, b))
            return row.pk.in_(union_all(own_rows, shared_rows))
        if kind == "nothing":
            return false()
        base = and_(row.patient_id.is_(None), row.hidden_by.is_(None))
        if kind == "shared-ref":
            return base
        if kind == "binary":
            return and_(base, self._not_claimed_by_others(row, b),
                        self._claimed_by_own(shape[1], row, b, scan=shape[2]))
        if kind == "shared-json":  # as "shared-ids", in one bind
            return and_(base, InJsonArray(row.logical_id, b()))
        # "shared-ids": the ids of this type the forward walk reached (_reach)
        return and_(base, row.logical_id.in_([b() for _ in range(shape[1])]))

    @staticmethod
    def _not_claimed_by_others(row: t.Any, b: Binds) -> ColumnElement[bool]:
        edge = aliased(ReferenceIndex)
        return not_(exists(select(literal(1)).where(
            edge.target_type == row.resource_type, edge.target_id == row.logical_id, edge.param == ALL,
            edge.patient_id.is_not(None), edge.patient_id != b())))

    def _claimed_by_own(self, any_shape: Shape, row: t.Any, b: Binds, *, scan: bool = False) -> ColumnElement[bool]:
        """A resource this grant may read points at ``row`` (a Binary) directly. ``scan``: written as "``row`` is
        among the Binaries this patient's data points at", so a search starts from the patient's references."""
        edge, source = aliased(ReferenceIndex), aliased(ResourceRow)
        visible = self._any_compartment_sql(any_shape, source, b)
        claims = select(edge.target_id).select_from(edge).join(source, source.pk == edge.resource_pk)
        if scan:
            return row.logical_id.in_(claims.where(
                edge.patient_id == b(), edge.target_type == literal_column("'Binary'"), edge.param == ALL, visible))
        return exists(claims.where(
            edge.target_type == row.resource_type, edge.target_id == row.logical_id, edge.param == ALL,
            edge.patient_id == b(), visible))

    # ------------------------------------------------------------------- walks through shared data
    # Both walks go level by level in Python, indexed queries over the keys found so far (forward: one per level;
    # back: per level and type, asking first whether this patient's data refers to any of them). A
    # recursive CTE did the same in one statement, but no planner can estimate its size: SQLite, given statistics,
    # built Bloom filters and automatic indexes over every shared row and edge at each step, so a patient's read
    # of a Practitioner cost more with every other patient's data (issue 12). Here each query's size is known.

    def _reach(self) -> dict[str, list[str]]:
        """The shared resources this grant reaches, by type: referred to by a resource of this patient the grant may
        read, directly or through other shared resources (never through a Binary, another patient's data or data
        awaiting review). Walked once per view."""
        if self._reached is not None:
            return self._reached
        any_shape, any_values = self._any_compartment_parts()

        def build_seed() -> t.Any:
            b = Binds()
            edge, source = aliased(ReferenceIndex, name="e"), aliased(ResourceRow, name="s")
            patient = edge.patient_id == b()
            # no DISTINCT (deduplicated below): SQLite would answer it by scanning the whole target index in order
            return (select(edge.target_type, edge.target_id).select_from(edge)
                    .join(source, source.pk == edge.resource_pk)
                    .where(edge.param == ALL, patient, edge.target_type.not_in(_NEVER_SHARED),
                           self._any_compartment_sql(any_shape, source, b)))

        found: dict[tuple[str, str], None] = {}
        seeds = self._run(("reach", any_shape), build_seed, [self.patient_id, *any_values])
        frontier = list(dict.fromkeys((r[0], r[1]) for r in seeds))
        while frontier:
            found.update(dict.fromkeys(frontier))
            step: list[tuple[str, str]] = []
            passable = [key for key in frontier if key[0] != "Binary"]  # a document is reached only directly
            for padded in _chunks(passable):  # one query per level, whatever the types
                step += [(r[0], r[1]) for r in self._run(("reach-step", len(padded)),
                                                         functools.partial(_referred_by_shared, len(padded)),
                                                         [value for key in padded for value in key])]
            frontier = [key for key in dict.fromkeys(step) if key not in found
                        and not compartment.is_patient_data(key[0])]
        self._reached = _by_type(found)
        return self._reached

    def _reached_back(self, resource_type: str, logical_id: str) -> bool:
        """Is this one shared resource referred to by a resource of this patient the grant may read, directly or
        through other shared resources (same passage rules as :meth:`_reach`)? Walks back from it, so a read costs
        what refers to that resource, not the size of the record."""
        any_shape, any_values = self._any_compartment_parts()

        def build_claim(size: int) -> t.Any:
            b = Binds()
            edge, source = aliased(ReferenceIndex, name="e"), aliased(ResourceRow, name="s")
            return (select(literal(1)).select_from(edge).join(source, source.pk == edge.resource_pk)
                    .where(edge.target_type == b(), edge.target_id.in_([b() for _ in range(size)]), edge.param == ALL,
                           edge.patient_id == b(), self._any_compartment_sql(any_shape, source, b))
                    .limit(1))

        seen = {(resource_type, logical_id)}
        frontier = [(resource_type, logical_id)]
        while frontier:
            step: list[tuple[str, str]] = []
            for type_name, ids in _by_type(frontier).items():
                for padded in _chunks(ids):
                    if self._run(("claimed", any_shape, len(padded)), functools.partial(build_claim, len(padded)),
                                 [type_name, *padded, self.patient_id, *any_values]):
                        return True
                    step += [(r[0], r[1]) for r in self._run(("back-step", len(padded)),
                                                             functools.partial(_shared_referrers, len(padded)),
                                                             [type_name, *padded])]
            frontier = [key for key in dict.fromkeys(step) if key not in seen]
            seen.update(frontier)
        return False

    # ---------------------------------------------------------------------------------- reading
    def read(self, resource_type: str, logical_id: str, column: str = "json_text") -> t.Any | None:
        """One resource by type and id if this grant may see it (its row: pk, resource_type,
        logical_id, patient_id, version_id, last_updated and ``column``)."""
        vshape, vvalues = self._visible_parts(resource_type, via_reference=False, known_id=logical_id)

        def build() -> t.Any:
            b = Binds()
            row = aliased(ResourceRow, name="r")
            where = and_(row.resource_type == b(), row.logical_id == b(),
                         self._visible_sql(vshape, row, b))
            cols = [row.pk, row.resource_type, row.logical_id, row.patient_id, row.version_id, row.last_updated,
                    getattr(row, column)]
            return select(*cols).where(where)

        found = self._run(("read", resource_type, column, vshape), build, [resource_type, logical_id, *vvalues])
        return found[0] if found else None

    def search(self, search: ParsedSearch, column: str = "json_text") -> Page:
        if search.lastn_max is not None:
            rows = self._lastn(search, column)
            total = len(rows)
            if search.summary_count:
                return Page(total, [], [], None)
            count = search.count if search.count is not None else total
            page = rows[search.offset: search.offset + count]
            next_offset = search.offset + count if 0 < count and search.offset + count < total else None
            return Page(total, page, self._includes(search.includes, page, column) if page else [], next_offset)
        rtype = search.resource_type
        vshape, vvalues = self._visible_parts(rtype, via_reference=False, scan=True)
        conds = [condition_parts(c, self.local_bases) for c in search.conditions]
        patient_data = compartment.is_patient_data(rtype)
        driver = next((i for i, c in enumerate(conds) if can_drive(c[0])), None) if patient_data else None
        cond_shapes = tuple(c[0] for c in conds)
        known = params_for(rtype)
        sshape, svalues = sort_parts(search, known)
        where_values = [*vvalues, *([self.patient_id, rtype] if driver is not None else []),
                        *[v for c in conds for v in c[1]]]

        def where(row: t.Any, b: Binds) -> ColumnElement[bool]:
            clauses = [row.resource_type == b(), self._visible_sql(vshape, row, b)]
            drive = (b(), b()) if driver is not None else None
            for i, shape in enumerate(cond_shapes):
                clauses.append(condition_sql(shape, row, b, drive=drive if i == driver else None))
            return and_(*clauses)

        base_key = (rtype, vshape, cond_shapes, driver)
        if search.summary_count:
            return Page(self._count(base_key, where, [rtype, *where_values]), [], [], None)
        count = search.count if search.count is not None else 1_000_000

        def build_page() -> t.Any:
            b = Binds()
            row = aliased(ResourceRow, name="r")
            clause = where(row, b)
            order = sort_sql(sshape, row, b)
            # LIMIT written into the statement: a prepared statement's generic plan knows it (PostgreSQL)
            return (select(*_columns(row, column)).where(clause).order_by(*order)
                    .limit(literal_column(str(int(count)))).offset(b()))

        matches = self._run(("page", column, sshape, count, *base_key), build_page,
                            [rtype, *where_values, *svalues, search.offset])
        if len(matches) < count and (matches or search.offset == 0):
            total = search.offset + len(matches)
        else:
            total = self._count(base_key, where, [rtype, *where_values])
        next_offset = search.offset + count if 0 < count and search.offset + count < total else None
        included = self._includes(search.includes, matches, column) if matches else []
        return Page(total, matches, included, next_offset)

    def _count(self, key: t.Hashable, where: t.Callable[[t.Any, Binds], t.Any], values: list[t.Any]) -> int:
        def build() -> t.Any:
            row = aliased(ResourceRow, name="r")
            return select(func.count()).select_from(row).where(where(row, Binds()))

        return int(self._run(("count", *key), build, values)[0][0])

    # ------------------------------------------------------------------------------------ $lastn
    def _lastn(self, search: ParsedSearch, column: str) -> list[t.Any]:
        """Observation/$lastn (fhir-content.md §1.5): the newest ``max`` Observations per code.

        With ``code``: per requested code value in request order, the newest matches of that value that
        match no earlier value (an Observation counts for the first requested code it has). Without:
        grouped by the Observation's first coding, groups in the order of their first Observation.
        Newest = latest effective date, then latest update; read from ``fhir_index_lastn`` in index order.
        """
        rtype = "Observation"
        vshape, vvalues = self._visible_parts(rtype, via_reference=False)
        code_conditions = [c for c in search.conditions if c.param.name == "code" and c.modifier is None]
        requested = [v for c in code_conditions for v in c.values]
        # one code condition is what the groups are: each group's index rows already match it, so it is
        # not repeated (and cannot mislead a generic plan into starting from that code's matches)
        rest = [c for c in search.conditions if not (len(code_conditions) == 1 and c is code_conditions[0])]
        conds = [condition_parts(c, self.local_bases) for c in rest]
        cond_shapes = tuple(c[0] for c in conds)
        cond_values = [v for c in conds for v in c[1]]
        maximum = search.lastn_max or 1
        if not requested:
            return self._lastn_grouped(vshape, vvalues, cond_shapes, cond_values, maximum, column)
        rows: list[t.Any] = []
        seen: set[int] = set()
        keys = [self._code_key(v) for v in requested]
        for index, value in enumerate(requested):
            system, sep, code = value.rpartition("|") if "|" in value else ("", "", value)
            earlier = keys[:index]
            value_shape = (bool(sep), tuple(bool(s) for s, _ in earlier))
            values = [self.patient_id, code, *([system] if sep else []), *vvalues, *cond_values,
                      *[x for s, c in earlier for x in ([s, c] if s else [c])]]

            def build(value_shape: Shape = value_shape) -> t.Any:
                b = Binds()
                row = aliased(ResourceRow, name="r")
                entry = aliased(LastnIndex, name="l")
                clauses = [entry.patient_id == b(), entry.code == b()]
                if value_shape[0]:
                    clauses.append(entry.system == b())
                # visibility is asked of each index row in turn (EXISTS on its own alias), not joined in as
                # conditions on ``r``: so the only way into this query is the ordered index, read newest first
                # until ``maximum`` are found. With conditions on ``r`` SQLite's planner, misled by averaged
                # statistics, could start from all of the patient's Observations and sort them (issue 12).
                visible = aliased(ResourceRow, name="v")
                clauses.append(exists(select(literal(1)).where(
                    visible.pk == entry.resource_pk, self._visible_sql(vshape, visible, b),
                    *[condition_sql(shape, visible, b) for shape in cond_shapes])))
                for has_system in value_shape[1]:
                    other = aliased(LastnIndex)
                    match = [other.resource_pk == entry.resource_pk]
                    if has_system:
                        match.append(other.system == b())
                    match.append(other.code == b())
                    clauses.append(not_(exists(select(literal(1)).where(*match))))
                return (select(*_columns(row, column)).select_from(entry).join(row, row.pk == entry.resource_pk)
                        .where(*clauses)
                        .order_by(entry.effective.desc(), entry.last_updated.desc(), entry.resource_pk.desc())
                        .limit(literal_column(str(int(maximum)))))

            for found in self._run(("lastn", column, vshape, cond_shapes, value_shape, maximum), build, values):
                if found.pk not in seen:
                    seen.add(found.pk)
                    rows.append(found)
        return rows

    @staticmethod
    def _code_key(value: str) -> tuple[str, str]:
        system, sep, code = value.rpartition("|") if "|" in value else ("", "", value)
        return (system if sep else "", code)

    def _lastn_grouped(self, vshape: Shape, vvalues: list[t.Any], cond_shapes: Shape, cond_values: list[t.Any],
                       maximum: int, column: str) -> list[t.Any]:
        rtype = "Observation"
        driver = next((i for i, shape in enumerate(cond_shapes) if can_drive(shape)), None)

        def build() -> t.Any:
            b = Binds()
            row = aliased(ResourceRow, name="r")
            entry = aliased(LastnIndex, name="l")
            clauses = [row.resource_type == b(), self._visible_sql(vshape, row, b)]
            drive = (b(), b()) if driver is not None else None
            clauses += [condition_sql(shape, row, b, drive=drive if i == driver else None)
                        for i, shape in enumerate(cond_shapes)]
            group = (entry.system, entry.code, func.coalesce(entry.code, row.logical_id))
            ranked = (select(*_columns(row, column),
                             func.row_number().over(partition_by=group, order_by=(
                                 entry.effective.desc(), entry.last_updated.desc(), row.pk.desc())).label("n"),
                             func.min(row.pk).over(partition_by=group).label("first"))
                      .select_from(row)
                      .outerjoin(entry, and_(entry.resource_pk == row.pk, entry.position == 0))
                      .where(*clauses).subquery("ranked"))
            return (select(ranked.c.pk, ranked.c.resource_type, ranked.c.logical_id, ranked.c.patient_id,
                           ranked.c.version_id, ranked.c.last_updated, ranked.c.content)
                    .where(ranked.c.n <= b()).order_by(ranked.c.first, ranked.c.n))

        values = [rtype, *vvalues, *([self.patient_id, rtype] if driver is not None else []), *cond_values, maximum]
        return self._run(("lastn-grouped", column, vshape, cond_shapes, driver), build, values)

    # ---------------------------------------------------------------------------------- includes
    def _includes(self, includes: list[Include], matches: list[t.Any], column: str) -> list[t.Any]:
        """Resources named by ``_include``/``_revinclude`` (search.html#include), each visible to this
        grant, not already in the result; ``:iterate`` repeats on what was included."""
        seen = {(r.resource_type, r.logical_id) for r in matches}
        result: list[t.Any] = []
        frontier = list(matches)
        first = True
        while frontier and includes:
            # a target of a visible resource's reference is judged as reached through it; a resource
            # that refers to a visible one (_revinclude) is judged on its own
            wanted: dict[bool, list[tuple[str, str]]] = {True: [], False: []}
            for include in includes:
                if not first and not include.iterate:
                    continue
                sources = [r for r in frontier if r.resource_type == include.source_type or include.reverse]
                if sources:
                    for key in self._include_targets(include, sources):
                        if key not in seen and self.may_read_type(key[0]):
                            seen.add(key)
                            wanted[not include.reverse].append(key)
            found = self._visible_rows(wanted[True], column, via_reference=True)
            found += self._visible_rows(wanted[False], column, via_reference=False)
            result.extend(found)
            frontier = found
            first = False
        return result

    def _visible_rows(self, keys: list[tuple[str, str]], column: str, *, via_reference: bool) -> list[t.Any]:
        """The rows of ``keys`` this grant may see, in the order of ``keys`` (one query per type)."""
        if not keys:
            return []
        found: dict[tuple[str, str], t.Any] = {}
        for type_name, ids in _by_type(keys).items():
            vshape, vvalues = self._visible_parts(type_name, via_reference=via_reference)
            padded = _padded(ids)

            def build(vshape: Shape = vshape, size: int = len(padded), type_name: str = type_name) -> t.Any:
                b = Binds()
                row = aliased(ResourceRow, name="r")
                return select(*_columns(row, column)).where(
                    row.resource_type == b(), row.logical_id.in_([b() for _ in range(size)]),
                    self._visible_sql(vshape, row, b))

            for row in self._run(("rows", column, type_name, vshape, len(padded), via_reference), build,
                                 [type_name, *padded, *vvalues]):
                found[(row.resource_type, row.logical_id)] = row
        return [found[key] for key in keys if key in found]

    def _include_targets(self, include: Include, sources: list[t.Any]) -> list[tuple[str, str]]:
        if include.reverse:
            targets: list[tuple[str, str]] = []
            for type_name, ids in _by_type((s.resource_type, s.logical_id) for s in sources).items():
                if include.target_type and include.target_type != type_name:
                    continue
                padded = _padded(ids)

                def build(size: int = len(padded)) -> t.Any:
                    b = Binds()
                    edge = aliased(ReferenceIndex, name="e")
                    return (select(edge.resource_type, edge.resource_pk, edge.patient_id)
                            .where(edge.resource_type == b(), edge.param == b(), edge.target_type == b(),
                                   edge.target_id.in_([b() for _ in range(size)]),
                                   or_(edge.patient_id == b(), edge.patient_id.is_(None)))
                            .order_by(edge.resource_pk))

                pks = [r.resource_pk for r in self._run(("revinclude", len(padded)), build, [
                    include.source_type, include.param, type_name, *padded, self.patient_id])]
                targets += self._keys_of(pks)
            return targets
        pks = [s.pk for s in sources]
        padded = _padded(pks)
        typed = include.target_type is not None

        def build_forward(size: int = len(padded)) -> t.Any:
            b = Binds()
            edge = aliased(ReferenceIndex, name="e")
            clauses = [edge.resource_pk.in_([b() for _ in range(size)]), edge.param == b()]
            if typed:
                clauses.append(edge.target_type == b())
            return select(edge.target_type, edge.target_id).where(*clauses).order_by(edge.resource_pk, edge.id)

        values = [*padded, include.param, *([include.target_type] if typed else [])]
        rows = self._run(("include", len(padded), typed), build_forward, values)
        ordered: dict[tuple[str, str], None] = {}
        for r in rows:
            ordered[(r[0], r[1])] = None
        return list(ordered)

    def _keys_of(self, pks: list[int]) -> list[tuple[str, str]]:
        if not pks:
            return []
        unique = list(dict.fromkeys(pks))
        padded = _padded(unique)

        def build(size: int = len(padded)) -> t.Any:
            b = Binds()
            row = aliased(ResourceRow, name="r")
            return select(row.pk, row.resource_type, row.logical_id).where(row.pk.in_([b() for _ in range(size)]))

        found = {r[0]: (r[1], r[2]) for r in self._run(("keys", len(padded)), build, padded)}
        return [found[pk] for pk in unique if pk in found]

    # ------------------------------------------------------------------------------- existence
    def any_data(self, *, exclude: t.Collection[str] = ()) -> bool:
        """Does this grant see any resource of its patient (types in ``exclude`` aside)?"""
        for type_name in sorted(self.scope.read):
            if type_name in exclude or not compartment.is_patient_data(type_name):
                continue
            shape, values = self.compartment_parts(type_name)

            def build(shape: Shape = shape) -> t.Any:
                b = Binds()
                row = aliased(ResourceRow, name="r")
                return select(row.pk).where(self.compartment_sql(shape, row, b)).limit(1)

            if self._run(("any", shape), build, values):
                return True
        return False


def _referred_by_shared(size: int) -> t.Any:
    """What the shared resources named by ``size`` (type, id) pairs (binds) refer to (a forward step): each pair one
    lookup in the unique index (an OR of pairs, which SQLite and PostgreSQL both run as a union of lookups)."""
    b = Binds()
    shared, edge = aliased(ResourceRow, name="s"), aliased(ReferenceIndex, name="e")
    named = or_(*[and_(shared.resource_type == b(), shared.logical_id == b()) for _ in range(size)])
    return (select(edge.target_type, edge.target_id).select_from(shared).join(edge, edge.resource_pk == shared.pk)
            .where(named, *_shared_hop(edge, shared)))


def _shared_referrers(size: int) -> t.Any:
    """The shared resources that refer to one type's ``size`` ids (binds) — a step back."""
    b = Binds()
    edge, shared = aliased(ReferenceIndex, name="e"), aliased(ResourceRow, name="s")
    return (select(shared.resource_type, shared.logical_id).select_from(edge)
            .join(shared, shared.pk == edge.resource_pk)
            .where(edge.target_type == b(), edge.target_id.in_([b() for _ in range(size)]), *_shared_hop(edge, shared)))


def _by_type(keys: t.Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for type_name, logical_id in keys:
        grouped.setdefault(type_name, []).append(logical_id)
    return grouped


def _chunks(ids: t.Sequence[T], size: int = 256) -> t.Iterator[list[T]]:
    """``ids`` (or keys) in padded slices (:func:`_padded`), so lists of binds stay few shapes and within any
    driver's limits."""
    for start in range(0, len(ids), size):
        yield _padded(ids[start:start + size])


def _shared_hop(edge: t.Any, shared: t.Any) -> tuple[ColumnElement[bool], ...]:
    """The one rule for a step of the reference walks through shared resources (both directions): a reference
    edge (``*``) out of ``shared``, a served resource of no patient, never a Binary — a document is reached only
    directly from the patient's own data, never through a shared resource."""
    return (edge.param == ALL, edge.patient_id.is_(None), shared.patient_id.is_(None), shared.hidden_by.is_(None),
            shared.resource_type != "Binary")


def _filter_set_clauses(filter_sets: t.Iterable[t.Any], row: t.Any, b: Binds) -> list[ColumnElement[bool]]:
    """One AND clause per filter set (the sets are OR-ed by the caller: fhir_api.access.Scope.filters)."""
    return [and_(true(), *[condition_sql(c, row, b) for c in filter_set]) for filter_set in filter_sets]
