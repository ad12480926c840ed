"""Turning element values into index values, and search strings into comparable values.

* Dates become closed UTC ranges by precision (search.html#date: "the precision of the value
  defines an implicit range"); a value without a timezone is read in the server's zone
  (default Europe/Amsterdam, configurable).
* Tokens become (system, code) pairs (search.html#token).
* References become (type, id) (search.html#reference), relative or absolute on this server.
* Strings are compared case- and accent-insensitively (search.html#string).
"""

from __future__ import annotations

import re
import typing as t
import unicodedata
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import tzinfo
from zoneinfo import ZoneInfo

MIN_INSTANT = "0001-01-01T00:00:00.000000"
MAX_INSTANT = "9999-12-31T23:59:59.999999"

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$",
    re.ASCII,
)

_DEFAULT_ZONE: tzinfo = ZoneInfo("Europe/Amsterdam")


def set_default_zone(name: str) -> None:
    """Set the zone used for dates and times written without an offset."""
    global _DEFAULT_ZONE
    _DEFAULT_ZONE = ZoneInfo(name)


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def date_range(value: str) -> tuple[str, str]:
    """The UTC range ``[start, end]`` a FHIR date/dateTime/instant value stands for.

    ``2020`` → the whole year, ``2020-05`` → the month, ``2020-05-03`` → the day,
    ``2020-05-03T10:00+02:00`` → that minute, seconds → that second, fractions → that fraction.
    Raises ValueError for text that is not a FHIR date.
    """
    match = _DATE_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a valid date")
    parts = match.groupdict()
    year, month, day = int(parts["y"]), int(parts["m"] or 1), int(parts["d"] or 1)
    hour, minute = int(parts["H"] or 0), int(parts["M"] or 0)
    second = int(parts["S"] or 0)
    fraction = parts["f"] or ""
    micro = int((fraction + "000000")[:6]) if fraction else 0
    zone: tzinfo = _DEFAULT_ZONE
    if parts["tz"]:
        zone = UTC if parts["tz"] == "Z" else datetime.strptime(parts["tz"], "%z").tzinfo  # type: ignore[assignment]
    try:
        start = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        if parts["m"] is None:
            end = start.replace(year=year + 1)
        elif parts["d"] is None:
            end = start.replace(year=year + (month == 12), month=month % 12 + 1)
        elif parts["H"] is None:
            end = start + timedelta(days=1)
        elif parts["S"] is None:
            end = start + timedelta(minutes=1)
        elif not fraction:
            end = start + timedelta(seconds=1)
        else:
            end = start + timedelta(microseconds=max(1, 10 ** max(0, 6 - len(fraction))))
        return _fmt(start), _fmt(end - timedelta(microseconds=1))
    except OverflowError:  # at the calendar's edges (year 1 or 9999 with an offset)
        raise ValueError(f"{value!r} is outside the supported date range") from None


def element_date_ranges(fhir_type: str, value: t.Any) -> list[tuple[str, str]]:
    """Index ranges for a date-typed element (date, dateTime, instant, Period)."""
    try:
        if fhir_type in ("Date", "DateTime", "Instant") and isinstance(value, str):
            return [date_range(value)]
        if fhir_type == "Period" and isinstance(value, dict):
            start = date_range(value["start"])[0] if value.get("start") else MIN_INSTANT
            end = date_range(value["end"])[1] if value.get("end") else MAX_INSTANT
            return [(start, end)]
    except ValueError:
        return []
    return []


def element_tokens(fhir_type: str, value: t.Any) -> list[tuple[str | None, str]]:
    """(system, code) pairs for a token-typed element."""
    if fhir_type == "CodeableConcept" and isinstance(value, dict):
        return [(c.get("system"), c["code"]) for c in value.get("coding", []) if c.get("code")]
    if fhir_type == "Coding" and isinstance(value, dict):
        return [(value.get("system"), value["code"])] if value.get("code") else []
    if fhir_type == "Identifier" and isinstance(value, dict):
        return [(value.get("system"), value["value"])] if value.get("value") else []
    if fhir_type == "ContactPoint" and isinstance(value, dict):
        return [(value.get("system"), value["value"])] if value.get("value") else []
    if fhir_type == "Boolean" and isinstance(value, bool):
        return [(None, "true" if value else "false")]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [(None, str(value))]
    return []


def normalise_string(text: str) -> str:
    """Case- and accent-insensitive form used for string search."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def element_strings(fhir_type: str, value: t.Any) -> list[str]:
    """Normalised strings for a string-typed element (string, HumanName, Address)."""
    texts: list[str] = []
    if isinstance(value, str):
        texts = [value]
    elif fhir_type == "HumanName" and isinstance(value, dict):
        texts = [value.get("text", ""), value.get("family", ""), *value.get("given", []),
                 *value.get("prefix", []), *value.get("suffix", [])]
    elif fhir_type == "Address" and isinstance(value, dict):
        texts = [value.get("text", ""), *value.get("line", []), value.get("city", ""),
                 value.get("district", ""), value.get("state", ""), value.get("postalCode", ""),
                 value.get("country", "")]
    return [normalise_string(s)[:255] for s in texts if isinstance(s, str) and s.strip()]


@dataclass(frozen=True, slots=True)
class ReferenceTarget:
    type: str
    id: str


BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"


def names_bsn(search_value: str) -> bool:
    """Does a token search value (``system|code``, comma-separated alternatives) name a BSN? The PGO-facing API
    refuses it (MedMij core.rscint.203: the patient follows from the token, never from the request)."""
    for part in search_value.split(","):
        system, sep, code = part.partition("|")
        if sep and system.strip() == BSN_SYSTEM and code.strip():
            return True
    return False


_REF_RE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-\.]{1,64})(?:/_history/[^/]+)?$")


def parse_reference(reference: str, local_bases: t.Iterable[str] = ()) -> ReferenceTarget | None:
    """``Type/id`` (relative or absolute on one of ``local_bases``) → target; else None.

    Contained (``#x``), ``urn:uuid:``/``urn:oid:`` and references to other servers are not
    local targets (references.html#literal).
    """
    if not reference or reference.startswith("#") or reference.startswith("urn:"):
        return None
    if "://" in reference:
        for base in local_bases:
            prefix = base.rstrip("/") + "/"
            if reference.startswith(prefix):
                reference = reference[len(prefix):]
                break
        else:
            return None
    match = _REF_RE.match(reference)
    if not match:
        return None
    return ReferenceTarget(match["type"], match["id"])
