"""Parsing a FHIR search request (search.html) into conditions (:mod:`fhir_api.search.sql` turns them into SQL).

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
from datetime import datetime

from ..errors import InvalidRequest
from .params import SearchParam
from .params import params_for
from .values import date_range
from .values import names_bsn

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
    items = list(items)
    if len(items) > MAX_PARAMETERS:  # like the limits below, never ignored with handling=lenient
        raise InvalidRequest(f"At most {MAX_PARAMETERS} search parameters are accepted in one request")
    for raw_name, value in items:
        name, _, modifier = raw_name.partition(":")
        parts = _split_or(value)
        if names_bsn(value) or any(names_bsn(part) for part in parts):  # escapes removed: "bs\\n|…"
            # refused even with handling=lenient: never ignored silently
            raise InvalidRequest("A BSN is never accepted in a request to this server: the patient follows from "
                                 "the access token (MedMij core.rscint.203)")
        if len(parts) > MAX_VALUES:
            raise InvalidRequest(f"{raw_name}: at most {MAX_VALUES} values (separated by commas) are accepted")
        if any(len(part) > MAX_VALUE_LENGTH for part in parts):
            raise InvalidRequest(f"{raw_name}: a search value is at most {MAX_VALUE_LENGTH} characters long")
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
    if lastn and sum(len(c.values) for c in search.conditions if c.param.name == "code") > MAX_LASTN_CODES:
        raise InvalidRequest(f"$lastn takes at most {MAX_LASTN_CODES} codes in one request")
    return search


#: Bounds on one search, so that no request can make a statement too large for the database (SQLite refuses an
#: expression tree deeper than 1000, and a LIKE pattern that is too long) or cost minutes of CPU. Values are
#: indexed at up to 255 characters, so a longer one matches nothing anyway. ``$lastn`` compiles a statement per
#: requested code, each excluding the earlier ones: its cost grows with the square of the number of codes.
MAX_PARAMETERS = 100
MAX_VALUES = 100
MAX_VALUE_LENGTH = 512
MAX_LASTN_CODES = 20


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


# ---------------------------------------------------------------------------- date helpers
def _widen(start: str, end: str, now: str) -> tuple[str, str]:
    fmt = "%Y-%m-%dT%H:%M:%S.%f"
    s, e, n = (datetime.strptime(v, fmt) for v in (start, end, now))
    gap = abs(n - s) * 0.1
    try:
        return (s - gap).strftime(fmt), (e + gap).strftime(fmt)
    except OverflowError:  # pragma: no cover - dates at the calendar's edges
        return start, end


_TYPE_RE = re.compile(r"^[A-Z][A-Za-z]+$")


def is_type_name(text: str) -> bool:
    return bool(_TYPE_RE.match(text))


__all__ = ["Condition", "Include", "ParsedSearch", "parse", "is_type_name"]
