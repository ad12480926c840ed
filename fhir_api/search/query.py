"""Parsing a FHIR search request (search.html) into conditions, and compiling them to SQL.

Supported: token (``system|code``, ``|code``, ``code``, ``system|``; ``:not``, ``:missing``), date
with prefixes ``eq ne gt lt ge le sa eb ap``, reference (``Type/id``, ``id``, absolute URL on this
server, ``:Type`` modifier), string (starts-with, ``:contains``), uri (exact). Comma = OR within one
parameter, repeated parameters = AND (search.html#combining). Result parameters: ``_include``
(incl. ``Type:param:Target`` and ``:iterate``/``:recurse``), ``_revinclude``, ``_count``,
``_offset``, ``_sort``, ``_summary=count|false``, ``_total``; ``_format``/``_pretty`` are handled
by the format layer. Anything else is refused with 400 unless ``Prefer: handling=lenient``.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import not_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy.sql.elements import ColumnElement

from ..errors import InvalidRequest
from ..models import DateIndex
from ..models import ReferenceIndex
from ..models import ResourceRow
from ..models import StringIndex
from ..models import TokenIndex
from .params import SearchParam
from .params import params_for
from .values import date_range
from .values import names_bsn
from .values import normalise_string
from .values import parse_reference

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
FORMAT_PARAMS = frozenset({"_format", "_pretty"})
RESULT_PARAMS = frozenset({"_include", "_revinclude", "_count", "_offset", "_sort", "_summary", "_total"})
_MODIFIERS = {
    "token": {"not", "missing"},
    "date": {"missing"},
    "reference": {"missing"},
    "string": {"missing", "contains"},
    "uri": {"missing"},
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One search parameter occurrence: its values are OR-ed; conditions are AND-ed."""

    param: SearchParam
    modifier: str | None
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Include:
    source_type: str
    param: str
    target_type: str | None
    iterate: bool = False
    reverse: bool = False


@dataclass(slots=True)
class ParsedSearch:
    resource_type: str
    conditions: list[Condition] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    count: int | None = None
    offset: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param, descending)
    summary_count: bool = False
    lastn_max: int | None = None
    #: parameters as applied, in request order, for the self link (search.html#conformance)
    used: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def parse(
    resource_type: str,
    items: t.Iterable[tuple[str, str]],
    *,
    lenient: bool = False,
    lastn: bool = False,
    default_count: int = 100,
    max_count: int = 1000,
) -> ParsedSearch:
    """Parse decoded query parameters; raise :class:`InvalidRequest` for anything unsupported."""
    known = params_for(resource_type)
    search = ParsedSearch(resource_type, count=default_count)
    for raw_name, value in items:
        name, _, modifier = raw_name.partition(":")
        if names_bsn(value):  # refused even with handling=lenient: never ignored silently
            raise InvalidRequest("A BSN is never accepted in a request to this server: the patient follows from "
                                 "the access token (MedMij core.rscint.203)")
        if raw_name in FORMAT_PARAMS:
            search.used.append((raw_name, value))
            continue
        try:
            if name in ("_include", "_revinclude"):
                search.includes.append(_parse_include(name, modifier, value, resource_type))
            elif name == "_count" and not modifier:
                search.count = min(_non_negative(raw_name, value), max_count)
            elif name == "_offset" and not modifier:
                search.offset = _non_negative(raw_name, value)
            elif name == "_sort" and not modifier:
                search.sort = _parse_sort(value, known)
            elif name == "_summary" and not modifier:
                if value not in ("count", "false"):
                    raise InvalidRequest(f"_summary={value} is not supported (only count and false)")
                search.summary_count = value == "count"
            elif name == "_total" and not modifier:
                if value not in ("none", "estimate", "accurate"):
                    raise InvalidRequest(f"_total={value} is not a valid value")
            elif name == "max" and lastn and not modifier:
                search.lastn_max = max(1, _non_negative(raw_name, value))
            else:
                param = known.get(name)
                if param is None or "." in name:
                    raise InvalidRequest(
                        f"Unknown search parameter {raw_name!r} for {resource_type}"
                        + (" (chained parameters are not supported)" if "." in name else "")
                    )
                search.conditions.append(_parse_condition(param, modifier or None, value))
        except InvalidRequest:
            if lenient and name not in ("_count", "_offset"):
                search.ignored.append(raw_name)
                continue
            raise
        search.used.append((raw_name, value))
    if lastn and search.lastn_max is None:
        search.lastn_max = 1
    return search


_COUNT_RE = re.compile(r"[0-9]{1,9}", re.ASCII)


def _non_negative(name: str, value: str) -> int:
    """A non-negative integer parameter (``_count``, ``_offset``, ``max``): ASCII digits only, at most
    nine of them (search.html#count: "a number"; anything larger pages nowhere)."""
    if not _COUNT_RE.fullmatch(value):
        raise InvalidRequest(f"{name} must be a non-negative integer below 10^9, got {value[:20]!r}")
    return int(value)


def _parse_sort(value: str, known: dict[str, SearchParam]) -> list[tuple[str, bool]]:
    keys = []
    for item in value.split(","):
        descending = item.startswith("-")
        name = item[1:] if descending else item
        if name not in known or known[name].type == "reference":
            raise InvalidRequest(f"Cannot sort on {name!r}")
        keys.append((name, descending))
    return keys


def _parse_include(kind: str, modifier: str, value: str, resource_type: str) -> Include:
    if modifier not in ("", "iterate", "recurse"):
        raise InvalidRequest(f"{kind}:{modifier} is not supported")
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise InvalidRequest(f"{kind}={value!r}: expected SourceType:parameter[:TargetType]")
    source, param_name = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    param = params_for(source).get(param_name)
    if param is None or param.type != "reference":
        raise InvalidRequest(f"{kind}={value!r}: {source} has no reference parameter {param_name!r}")
    if kind == "_include" and source != resource_type and not modifier:
        raise InvalidRequest(f"_include={value!r} does not start from {resource_type}")
    return Include(source, param_name, target, iterate=bool(modifier), reverse=kind == "_revinclude")


def _split_or(value: str) -> tuple[str, ...]:
    """Split on unescaped commas (search.html#escaping: ``\\,`` is a literal comma)."""
    parts, current, escaped = [], [], False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return tuple(parts)


def _parse_condition(param: SearchParam, modifier: str | None, value: str) -> Condition:
    if modifier is not None and param.type == "reference" and modifier[:1].isupper():
        return Condition(param, modifier, _split_or(value))  # :Type modifier
    if modifier is not None and modifier not in _MODIFIERS.get(param.type, set()):
        raise InvalidRequest(f"Modifier :{modifier} is not supported on {param.name} ({param.type})")
    if modifier == "missing":
        if value not in ("true", "false"):
            raise InvalidRequest(f"{param.name}:missing must be true or false")
        return Condition(param, modifier, (value,))
    values = _split_or(value)
    if any(v == "" for v in values):
        raise InvalidRequest(f"Empty value in {param.name}={value!r}")
    if param.type == "date":
        for v in values:
            _date_value(param.name, v)
    return Condition(param, modifier, values)


def _date_value(name: str, value: str) -> tuple[str, tuple[str, str]]:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    try:
        return prefix, date_range(text)
    except ValueError:
        raise InvalidRequest(f"{name}={value!r} is not a valid date search value") from None


# ------------------------------------------------------------------------------------ compiling
def condition_sql(condition: Condition, row: t.Any, local_bases: t.Sequence[str] = ()) -> ColumnElement[bool]:
    """SQL truth of one condition for ``row`` (a ResourceRow alias)."""
    param, modifier = condition.param, condition.modifier
    if param.name == "_id":
        clause = row.logical_id.in_(condition.values)
        return not_(clause) if modifier == "not" else clause
    index = {"token": TokenIndex, "uri": TokenIndex, "date": DateIndex, "reference": ReferenceIndex,
             "string": StringIndex}[param.type]
    linked = and_(index.resource_pk == row.pk, index.param == param.name)
    if modifier == "missing":
        has_value = exists(select(index.id).where(linked))
        return not_(has_value) if condition.values[0] == "true" else has_value
    alternatives = [_value_sql(param, modifier, value, local_bases) for value in condition.values]
    matched = exists(select(index.id).where(linked, or_(*alternatives)))
    return not_(matched) if modifier == "not" else matched


def _value_sql(param: SearchParam, modifier: str | None, value: str,
               local_bases: t.Sequence[str]) -> ColumnElement[bool]:
    if param.type == "token":
        if "|" in value:
            system, _, code = value.partition("|")
            parts = []
            parts.append(TokenIndex.system.is_(None) if system == "" else TokenIndex.system == system)
            if code:
                parts.append(TokenIndex.code == code)
            return and_(*parts)
        return TokenIndex.code == value
    if param.type == "uri":
        return TokenIndex.code == value
    if param.type == "string":
        needle = normalise_string(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{needle}%" if modifier == "contains" else f"{needle}%"
        return StringIndex.value.like(pattern, escape="\\")
    if param.type == "reference":
        target_type = modifier if modifier and modifier[:1].isupper() else None
        target = parse_reference(value, local_bases)
        if target is not None:
            if target_type and target.type != target_type:
                return false()
            return and_(ReferenceIndex.target_type == target.type, ReferenceIndex.target_id == target.id)
        if "/" in value or "://" in value:
            return false()
        clause = ReferenceIndex.target_id == value
        return and_(clause, ReferenceIndex.target_type == target_type) if target_type else clause
    if param.type == "date":
        prefix, (start, end) = _date_value(param.name, value)
        return _date_sql(prefix, start, end)
    raise InvalidRequest(f"Search parameter type {param.type} is not supported")  # pragma: no cover


def _date_sql(prefix: str, start: str, end: str) -> ColumnElement[bool]:
    """search.html#prefix on ranges: resource range [rs, re] vs search range [start, end]."""
    rs, re_ = DateIndex.start, DateIndex.end
    if prefix == "eq":
        return and_(rs >= start, re_ <= end)
    if prefix == "ne":
        return or_(rs < start, re_ > end)
    if prefix == "gt":
        return re_ > end
    if prefix == "lt":
        return rs < start
    if prefix == "ge":
        return re_ >= start
    if prefix == "le":
        return rs <= end
    if prefix == "sa":
        return rs > end
    if prefix == "eb":
        return re_ < start
    # ap: overlap with the search range widened by 10 % of its distance to now
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    lo, hi = _widen(start, end, now)
    return and_(rs <= hi, re_ >= lo)


def _widen(start: str, end: str, now: str) -> tuple[str, str]:
    fmt = "%Y-%m-%dT%H:%M:%S.%f"
    s, e, n = (datetime.strptime(v, fmt) for v in (start, end, now))
    gap = abs(n - s) * 0.1
    try:
        return (s - gap).strftime(fmt), (e + gap).strftime(fmt)
    except OverflowError:  # pragma: no cover - dates at the calendar's edges
        return start, end


def sort_sql(search: ParsedSearch, row: t.Any) -> list[t.Any]:
    """ORDER BY clauses for ``_sort``; insertion order (pk) breaks ties and is the default."""
    known = params_for(search.resource_type)
    order: list[t.Any] = []
    for name, descending in search.sort:
        if name == "_id":
            key: t.Any = row.logical_id
        elif name == "_lastUpdated":
            key = row.last_updated
        else:
            param = known[name]
            index = {"token": TokenIndex, "uri": TokenIndex, "date": DateIndex, "string": StringIndex}[param.type]
            column = {TokenIndex: TokenIndex.code, DateIndex: DateIndex.start, StringIndex: StringIndex.value}[index]
            agg = func.max(column) if descending else func.min(column)
            key = (
                select(agg).where(index.resource_pk == row.pk, index.param == name).scalar_subquery()
            )
        order.append(key.desc() if descending else key.asc())
    order.append(row.pk.asc())
    return order


def all_conditions_sql(conditions: t.Iterable[Condition], row: t.Any,
                       local_bases: t.Sequence[str] = ()) -> ColumnElement[bool]:
    clauses = [condition_sql(c, row, local_bases) for c in conditions]
    return and_(true(), *clauses)


_TYPE_RE = re.compile(r"^[A-Z][A-Za-z]+$")


def is_type_name(text: str) -> bool:
    return bool(_TYPE_RE.match(text))


__all__ = [
    "Condition", "Include", "ParsedSearch", "parse", "condition_sql", "sort_sql", "all_conditions_sql",
    "ResourceRow", "is_type_name",
]
