"""Search value semantics: date precision ranges, prefixes, tokens, references, request parsing."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_api.errors import InvalidRequest
from fhir_api.search import query
from fhir_api.search.values import date_range
from fhir_api.search.values import element_date_ranges
from fhir_api.search.values import element_tokens
from fhir_api.search.values import normalise_string
from fhir_api.search.values import parse_reference


def test_date_precision_ranges_in_utc() -> None:
    # Europe/Amsterdam is UTC+1 in winter, UTC+2 in summer
    assert date_range("2024") == ("2023-12-31T23:00:00.000000", "2024-12-31T22:59:59.999999")
    assert date_range("2024-02") == ("2024-01-31T23:00:00.000000", "2024-02-29T22:59:59.999999")
    assert date_range("2024-07-01") == ("2024-06-30T22:00:00.000000", "2024-07-01T21:59:59.999999")
    assert date_range("2024-07-01T10:00+02:00") == ("2024-07-01T08:00:00.000000", "2024-07-01T08:00:59.999999")
    assert date_range("2024-07-01T10:00:05Z") == ("2024-07-01T10:00:05.000000", "2024-07-01T10:00:05.999999")
    assert date_range("2024-07-01T10:00:05.25Z") == ("2024-07-01T10:00:05.250000", "2024-07-01T10:00:05.259999")
    with pytest.raises(ValueError):
        date_range("2024-13-01")
    with pytest.raises(ValueError):
        date_range("yesterday")


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_a_day_contains_its_own_instants(day: date) -> None:
    start, end = date_range(day.isoformat())
    noon = date_range(f"{day.isoformat()}T12:00:00+01:00")
    assert start <= noon[0] <= noon[1] <= end
    assert start < end


@given(st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2090, 1, 1)),
       st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_offsets_denote_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(microsecond=0, tzinfo=UTC)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    local = aware + timedelta(minutes=offset_minutes)
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hours:02d}:{minutes:02d}"
    assert date_range(text)[0] == aware.strftime("%Y-%m-%dT%H:%M:%S.000000")


def test_period_ranges_are_open_ended_when_a_bound_is_missing() -> None:
    assert element_date_ranges("Period", {"start": "2020-01-01"})[0][1] == "9999-12-31T23:59:59.999999"
    assert element_date_ranges("Period", {"end": "2020-01-01"})[0][0] == "0001-01-01T00:00:00.000000"
    assert element_date_ranges("DateTime", "garbage") == []


def test_token_values() -> None:
    concept = {"coding": [{"system": "http://loinc.org", "code": "85354-9"}, {"code": "x"}], "text": "BP"}
    assert element_tokens("CodeableConcept", concept) == [("http://loinc.org", "85354-9"), (None, "x")]
    assert element_tokens("Identifier", {"system": "urn:s", "value": "1"}) == [("urn:s", "1")]
    assert element_tokens("Boolean", True) == [(None, "true")]
    assert element_tokens("Code", "final") == [(None, "final")]


def test_references() -> None:
    assert parse_reference("Patient/123") == parse_reference("https://x.test/fhir/Patient/123", ["https://x.test/fhir"])
    assert parse_reference("https://other.test/fhir/Patient/123", ["https://x.test/fhir"]) is None
    assert parse_reference("#contained") is None
    assert parse_reference("urn:uuid:0b7a1b36-4e1a-4e0b-9a53-6e1f0f1b8a11") is None
    assert parse_reference("Patient/1/_history/2").id == "1"


def test_string_normalisation() -> None:
    assert normalise_string("  Ëlbrecht ") == "elbrecht"


def parse(rtype: str, qs: list[tuple[str, str]], **kw: object) -> query.ParsedSearch:
    return query.parse(rtype, qs, **kw)  # type: ignore[arg-type]


def test_request_parsing() -> None:
    parsed = parse("Observation", [("code", "http://loinc.org|1,http://loinc.org|2"), ("date", "ge2020"),
                                   ("date", "le2021"), ("_include", "Observation:specimen"), ("_count", "5"),
                                   ("_format", "json")])
    assert [c.values for c in parsed.conditions] == [("http://loinc.org|1", "http://loinc.org|2"), ("ge2020",),
                                                    ("le2021",)]
    assert parsed.count == 5
    assert parsed.includes[0].param == "specimen"
    assert parsed.used[-1] == ("_format", "json")
    assert parse("Observation", [("code", r"a\,b")]).conditions[0].values == ("a,b",)


@pytest.mark.parametrize(
    "items",
    [
        [("unknown", "1")],
        [("code:text", "x")],
        [("date", "gx2020")],
        [("date", "not-a-date")],
        [("_include", "Observation")],
        [("_include", "Observation:code")],
        [("_include", "Condition:subject")],
        [("_count", "-1")],
        [("_summary", "text")],
        [("_sort", "subject")],
        [("subject.name", "x")],
        [("code", "")],
        [("status:missing", "maybe")],
    ],
)
def test_bad_searches_are_refused(items: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest):
        parse("Observation", items)


def test_lenient_handling_ignores_unknown_parameters() -> None:
    parsed = parse("Observation", [("unknown", "1"), ("status", "final")], lenient=True)
    assert parsed.ignored == ["unknown"]
    assert parsed.used == [("status", "final")]


def test_count_is_capped() -> None:
    assert parse("Observation", [("_count", "100000")], max_count=50).count == 50
