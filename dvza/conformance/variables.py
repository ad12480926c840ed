"""TestScript variables and Touchstone placeholders (fhir-content.md §7.3, §8.1).

* ``${name}``: a ``TestScript.variable`` (https://hl7.org/fhir/STU3/testscript-definitions.html#TestScript.variable):
  its ``expression`` (FHIRPath), ``path`` (XPath/JSONPath) or ``headerField`` evaluated over the fixture
  or response named by ``sourceId`` at the moment it is used, else its ``defaultValue``;
* Touchstone built-ins: ``${UUID}`` (a new UUID each time), ``${CURRENTDATE}`` (yyyy-MM-dd),
  ``${RANDOM-N}`` (N random digits), ``${DATE, T, D|M|Y, ±n}`` (variable T plus n days/months/years, §1.1).
"""

from __future__ import annotations

import calendar
import random
import re
import typing as t
import uuid
from datetime import date
from datetime import timedelta

_PLACEHOLDER = re.compile(r"\$\{([^${}]+)\}")
_DATE = re.compile(r"^DATE\s*,\s*([^,]+?)\s*,\s*([DMY])\s*,\s*([+-]?\s*\d+)\s*$")
_RANDOM = re.compile(r"^RANDOM-(\d+)$")


class VariableError(ValueError):
    """A placeholder cannot be resolved."""


def add_to_date(base: date, unit: str, amount: int) -> date:
    """``${DATE, T, unit, amount}``: days, or calendar months/years (day clipped to the month's end)."""
    if unit == "D":
        return base + timedelta(days=amount)
    months = amount * (12 if unit == "Y" else 1)
    month_index = base.year * 12 + base.month - 1 + months
    year, month = divmod(month_index, 12)
    day = min(base.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day)


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise VariableError(f"not a date: {value!r}") from exc


class Substitution:
    """Resolves placeholders; ``lookup(name)`` returns a variable's current value or None if unknown."""

    def __init__(self, lookup: t.Callable[[str], str | None], today: date | None = None) -> None:
        self.lookup = lookup
        self.today = today or date.today()

    def builtin(self, name: str) -> str | None:
        if name == "UUID":
            return str(uuid.uuid4())
        if name == "CURRENTDATE":
            return self.today.isoformat()
        match = _RANDOM.match(name)
        if match:
            return "".join(random.choice("0123456789") for _ in range(int(match.group(1))))  # noqa: S311
        match = _DATE.match(name)
        if match:
            var, unit, amount = match.groups()
            base_text = self.resolve(var.strip(), depth=1)
            return add_to_date(_parse_date(base_text), unit, int(amount.replace(" ", ""))).isoformat()
        return None

    def resolve(self, name: str, depth: int = 0) -> str:
        """The value of ``${name}``; raises :class:`VariableError` when nothing defines it."""
        if depth > 10:
            raise VariableError(f"variable {name!r} refers to itself")
        value = self.lookup(name)
        if value is None:
            value = self.builtin(name)
        if value is None:
            raise VariableError(f"undefined variable ${{{name}}}")
        return self.substitute(value, depth + 1)

    def substitute(self, text: str, depth: int = 0, *, lenient: bool = False) -> str:
        """Replace every ``${…}`` in ``text``; with ``lenient`` (fixture bodies, as Touchstone does)
        a placeholder that nothing defines is left as it is."""
        if "${" not in text:
            return text

        def one(match: re.Match[str]) -> str:
            try:
                return self.resolve(match.group(1).strip(), depth)
            except VariableError:
                if lenient:
                    return match.group(0)
                raise

        return _PLACEHOLDER.sub(one, text)


def token_overrides(entries: t.Sequence[t.Mapping[str, t.Any]],
                    variables: t.Mapping[str, str | None]) -> dict[str, str]:
    """Map the scripts' ``patient-token-<name>`` variables to the tokens of a QualificationTokens.json-style
    file (list of ``{"accessToken", "resourceId", "familyName", "qualificationScript"}``; §2.3, §7.3).

    The scripts carry the Nictiz token as ``defaultValue`` (``Bearer <uuid>``). An entry whose accessToken
    equals that default wins; otherwise the entry whose ``resourceId`` or ``familyName`` matches ``<name>``
    (case-insensitive, ``_`` ignored) — when several entries match, the variable keeps its default unless
    they all carry the same token. Returns {variable name: "Bearer …"}."""

    def norm(value: t.Any) -> str:
        return str(value or "").replace("_", "").replace("-", "").upper()

    out: dict[str, str] = {}
    for name, default in variables.items():
        if not name.startswith("patient-token-"):
            continue
        if default and any(e.get("accessToken") == default for e in entries):
            continue
        key = norm(name[len("patient-token-"):])
        tokens = {str(e.get("accessToken")) for e in entries
                  if key in (norm(e.get("resourceId")), norm(e.get("familyName"))) and e.get("accessToken")}
        if len(tokens) == 1:
            token = tokens.pop()
            out[name] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
    return out
