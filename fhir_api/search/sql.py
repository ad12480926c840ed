"""Search conditions as SQL over the index tables, split into a *shape* and its *values*.

A statement is built and compiled once per shape (:mod:`fhir_api.sqlcache`); a request only computes the
shape (a tuple: which parameter kinds, modifiers and how many values) and the values, in the order the
builder hands out bind names. :func:`condition_parts` gives both for one condition;
:func:`condition_sql` turns a shape back into SQL. The two walk the same structure, so the n-th value
always lands in the n-th bind.

Semantics (search.html): comma-separated values are OR-ed, repeated parameters AND-ed; token
``system|code``, ``|code``, ``code``, ``system|``; ``:not``; ``:missing``; date prefixes on ranges; string
starts-with and ``:contains``; references by ``Type/id``, id or absolute URL on this server, ``:Type``.
A condition may *drive* the search: ``row.pk IN`` the matches of that one condition in this patient's
index rows (the indexes lead with ``patient_id, resource_type``), so the cost follows the matches.
"""

from __future__ import annotations

import typing as t
from datetime import UTC
from datetime import datetime

from sqlalchemy import Boolean
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import exists
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import not_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from ..models import DateIndex
from ..models import ReferenceIndex
from ..models import StringIndex
from ..models import TokenIndex
from .query import Condition
from .query import ParsedSearch
from .query import _date_value
from .query import _widen
from .values import normalise_string
from .values import parse_reference

Shape = tuple[t.Any, ...]
INDEX = {"token": TokenIndex, "uri": TokenIndex, "date": DateIndex, "reference": ReferenceIndex,
         "string": StringIndex}


class Binds:
    """Hands out bind names ``b0, b1, …`` in the order the values were collected; with ``values``, each
    bind carries its value (a one-off statement, not a cached one)."""

    def __init__(self, start: int = 0, values: t.Sequence[t.Any] | None = None):
        self.n = start
        self.values = values

    def __call__(self) -> t.Any:
        name = f"b{self.n}"
        self.n += 1
        if self.values is not None:
            return bindparam(name, value=self.values[self.n - 1])
        return bindparam(name)


def values_dict(values: t.Sequence[t.Any], start: int = 0) -> dict[str, t.Any]:
    return {f"b{start + i}": v for i, v in enumerate(values)}


class InJsonArray(ColumnElement[bool]):
    """``column IN`` the strings of one bound JSON array (``json.dumps`` of a list of str): any number of
    values in a single bind. An IN list has one bind per value, and databases cap those (PostgreSQL's
    protocol 65 535 parameters, SQLite 32 766 variables unless built with more), so a list that can grow
    with the data takes this form once it is long. SQLite: ``json_each`` (built in since 3.38);
    PostgreSQL: ``jsonb_array_elements_text``."""

    inherit_cache = True
    type = Boolean()
    #: a condition in itself: without this SQLAlchemy writes ``… IN (…) = 1`` on SQLite (no native boolean), and
    #: SQLite can then no longer look the ids up in the index but scans every row of the type (found in review)
    _is_implicitly_boolean = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("array", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: t.Any, array: t.Any):
        self.column, self.array = column, array

    @property
    def _from_objects(self) -> list[t.Any]:
        return list(self.column._from_objects)


@compiles(InJsonArray)
def _in_json_array_other(element: InJsonArray, compiler: t.Any, **kw: t.Any) -> str:
    raise NotImplementedError(f"InJsonArray has no form for {compiler.dialect.name}; only SQLite and PostgreSQL")


@compiles(InJsonArray, "sqlite")
def _in_json_array_sqlite(element: InJsonArray, compiler: t.Any, **kw: t.Any) -> str:
    column, array = compiler.process(element.column, **kw), compiler.process(element.array, **kw)
    return f"{column} IN (SELECT value FROM json_each({array}))"


@compiles(InJsonArray, "postgresql")
def _in_json_array_postgresql(element: InJsonArray, compiler: t.Any, **kw: t.Any) -> str:
    column, array = compiler.process(element.column, **kw), compiler.process(element.array, **kw)
    return f"{column} IN (SELECT jsonb_array_elements_text(CAST({array} AS JSONB)))"


# --------------------------------------------------------------------------------- condition parts
def _value_parts(param_type: str, modifier: str | None, value: str, bases: t.Sequence[str]
                 ) -> tuple[Shape, list[t.Any]]:
    if param_type == "token":
        if "|" in value:
            system, _, code = value.partition("|")
            shape = ("sys" if system else "nosys", bool(code))
            return shape, ([system] if system else []) + ([code] if code else [])
        return ("code",), [value]
    if param_type == "uri":
        return ("code",), [value]
    if param_type == "string":
        needle = normalise_string(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return ("like",), [f"%{needle}%" if modifier == "contains" else f"{needle}%"]
    if param_type == "reference":
        target_type = modifier if modifier and modifier[:1].isupper() else None
        target = parse_reference(value, bases)
        if target is not None:
            if target_type and target.type != target_type:
                return ("false",), []
            return ("typed",), [target.type, target.id]
        if "/" in value or "://" in value:
            return ("false",), []
        return (("typed",), [target_type, value]) if target_type else (("id",), [value])
    if param_type == "date":
        prefix, (start, end) = _date_value("date", value)
        if prefix == "ap":
            start, end = _widen(start, end, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"))
        return (prefix,), [start, end]
    raise ValueError(param_type)  # pragma: no cover - parse() refuses other types


def condition_parts(condition: Condition, bases: t.Sequence[str]) -> tuple[Shape, list[t.Any]]:
    """The shape of one condition and its values in bind order."""
    param, modifier = condition.param, condition.modifier
    if param.name == "_id":
        return ("_id", modifier == "not", len(condition.values)), list(condition.values)
    if modifier == "missing":
        return ("missing", param.type, condition.values[0] == "true"), [param.name]
    alternatives = [_value_parts(param.type, modifier, v, bases) for v in condition.values]
    shape = ("values", param.type, modifier == "not", tuple(a[0] for a in alternatives))
    return shape, [param.name] + [v for a in alternatives for v in a[1]]


def _alternative_sql(index: t.Any, shape: Shape, b: Binds) -> ColumnElement[bool]:
    kind = shape[0]
    if index is TokenIndex:
        if kind == "code":
            return index.code == b()
        if kind == "sys":
            system = index.system == b()
            return and_(system, index.code == b()) if shape[1] else system
        return and_(index.system.is_(None), index.code == b()) if shape[1] else index.system.is_(None)
    if index is StringIndex:
        return index.value.like(b(), escape="\\")
    if index is ReferenceIndex:
        if kind == "false":
            return false()
        if kind == "typed":
            return and_(index.target_type == b(), index.target_id == b())
        return index.target_id == b()
    return _date_sql(kind, index, b(), b())


def _date_sql(prefix: str, index: t.Any, start: t.Any, end: t.Any) -> ColumnElement[bool]:
    """search.html#prefix on ranges: resource range [rs, re] vs search range [start, end]."""
    rs, re_ = index.start, index.end
    return {
        "eq": lambda: and_(rs >= start, re_ <= end), "ne": lambda: or_(rs < start, re_ > end),
        "gt": lambda: re_ > end, "lt": lambda: rs < start, "ge": lambda: re_ >= start, "le": lambda: rs <= end,
        "sa": lambda: rs > end, "eb": lambda: re_ < start, "ap": lambda: and_(rs <= end, re_ >= start),
    }[prefix]()


def condition_sql(shape: Shape, row: t.Any, b: Binds, *, drive: t.Any = None) -> ColumnElement[bool]:
    """SQL truth of a condition of ``shape`` for ``row``. With ``drive`` = (patient bind, type bind) the
    condition is written as ``row.pk IN (this patient's matching index rows)``."""
    kind = shape[0]
    if kind == "_id":
        clause = row.logical_id.in_([b() for _ in range(shape[2])])
        return not_(clause) if shape[1] else clause
    if kind == "missing":
        index = INDEX[shape[1]]
        has_value = exists(select(literal(1)).where(index.resource_pk == row.pk, index.param == b()))
        return not_(has_value) if shape[2] else has_value
    _, param_type, negated, alternatives = shape
    index = INDEX[param_type]
    param = index.param == b()
    matched = or_(*[_alternative_sql(index, a, b) for a in alternatives])
    if drive is not None and not negated:
        patient, rtype = drive
        return row.pk.in_(select(index.resource_pk).where(index.patient_id == patient, index.resource_type == rtype,
                                                          param, matched))
    found = exists(select(literal(1)).where(index.resource_pk == row.pk, param, matched))
    return not_(found) if negated else found


def can_drive(shape: Shape) -> bool:
    """Conditions that can lead: positive value conditions on an index with few matches per value."""
    return shape[0] == "values" and not shape[2] and shape[1] in ("token", "uri", "reference", "string") and \
        all(a[0] != "false" for a in shape[3])


# ------------------------------------------------------------------------------------------ sort
def sort_parts(search: ParsedSearch, known: t.Mapping[str, t.Any]) -> tuple[Shape, list[t.Any]]:
    shape, values = [], []
    for name, descending in search.sort:
        if name in ("_id", "_lastUpdated"):
            shape.append((name, descending))
        else:
            shape.append((known[name].type, descending))
            values.append(name)
    return tuple(shape), values


def sort_sql(shape: Shape, row: t.Any, b: Binds) -> list[t.Any]:
    """ORDER BY for ``_sort``; insertion order (pk) breaks ties and is the default."""
    order: list[t.Any] = []
    for kind, descending in shape:
        if kind == "_id":
            key: t.Any = row.logical_id
        elif kind == "_lastUpdated":
            key = row.last_updated
        else:
            index = INDEX[kind]
            column = getattr(index, {TokenIndex: "code", DateIndex: "start", StringIndex: "value"}[index])
            agg = func.max(column) if descending else func.min(column)
            key = select(agg).where(index.resource_pk == row.pk, index.param == b()).scalar_subquery()
        order.append(key.desc() if descending else key.asc())
    order.append(row.pk.asc())
    return order
