"""Dutch presentation for the person-facing pages: local times and durations in words.

The pages speak Dutch at B1 level in the local time zone (the app's ``TIMEZONE``, default
Europe/Amsterdam), never in UTC: "28 november 2026, 14:05". Dates and durations are formatted with
Babel's CLDR data for ``nl`` (month names, plural forms: "15 minuten", "6 maanden"); small numbers are
written as words, as the MedMij consent text does ("zes maanden", Toestemmingsverklaring 2.2.4).
"""

from __future__ import annotations

import re
import typing as t
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.dates import format_datetime
from babel.dates import format_timedelta

LOCALE = "nl"
DEFAULT_ZONE = "Europe/Amsterdam"
#: Dutch number words for the counts a duration shows (1–12)
NUMBER_WORDS = ("", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen", "tien", "elf", "twaalf")


def _moment(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # stored times without a zone are UTC


def local_time(value: datetime | str | None, zone: str = DEFAULT_ZONE) -> str:
    """``28 november 2026, 14:05`` in ``zone``; a naive datetime is taken as UTC. Empty for None."""
    if value is None or value == "":
        return ""
    return format_datetime(_moment(value), "d MMMM y, HH:mm", tzinfo=ZoneInfo(zone), locale=LOCALE)


def fhir_time(value: str | None, zone: str = DEFAULT_ZONE) -> str:
    """A FHIR ``date``/``dateTime``/``instant`` for people: with a time of day it is shown in ``zone``
    ("3 maart 2026, 09:30"); a date alone (or year-month, year) stays as precise as it was given."""
    if not value:
        return ""
    text = str(value)
    if "T" in text:
        try:
            return local_time(text, zone)
        except ValueError:
            return text
    return local_date(text)


def local_date(value: date | str | None) -> str:
    """``12 maart 1980``; ``maart 1980`` and ``1980`` for partial FHIR dates."""
    if value is None or value == "":
        return ""
    if isinstance(value, date):
        return format_date(value, "d MMMM y", locale=LOCALE)
    text = str(value)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return format_date(date.fromisoformat(text), "d MMMM y", locale=LOCALE)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            return format_date(date.fromisoformat(text + "-01"), "MMMM y", locale=LOCALE)
    except ValueError:
        return text
    return text


def duration_in_words(value: timedelta) -> str:
    """``15 minuten``, ``één uur``, ``zes maanden``: the largest unit that fits (CLDR plural rules)."""
    text = format_timedelta(value, locale=LOCALE, threshold=1)
    count, _, unit = text.partition(" ")
    if count.isdigit() and 0 < int(count) < len(NUMBER_WORDS):
        return f"{NUMBER_WORDS[int(count)]} {unit}"
    return text


def register(app: t.Any, zone: t.Callable[[], str]) -> None:
    """Jinja filters for every template of the app: ``local_time``, ``fhir_time``, ``local_date``,
    ``duration_in_words``; ``zone()`` gives the configured time zone at render time."""
    app.add_template_filter(lambda value: local_time(value, zone()), "local_time")
    app.add_template_filter(lambda value: fhir_time(value, zone()), "fhir_time")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(duration_in_words, "duration_in_words")
