"""FHIR JSON/XML codecs: round trips of every Nictiz fixture, precision, ordering, hostile input."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from lxml import etree

from fhir_api import fhirjson
from fhir_api import fhirxml
from fhir_api import schema
from fhir_api.errors import FhirFormatError
from fhir_api.errors import InvalidResource
from tests.support import STU3
from tests.support import needs_shared


def fixture_files() -> list:
    return sorted(STU3.glob("*/MedMij/Cert/_reference/**/*.xml")) if STU3.is_dir() else []


def test_all_cert_fixtures_round_trip_xml_json_xml() -> None:
    needs_shared()
    files = fixture_files()
    assert len(files) > 100
    for path in files:
        resource = fhirxml.parse_xml(path.read_bytes())
        again = fhirxml.parse_xml(fhirxml.render_xml(resource))
        assert again == resource, path.name


def test_xml_fixtures_equal_their_json_twins() -> None:
    needs_shared()
    compared = 0
    for path in fixture_files():
        twin = path.with_suffix(".json")
        if not twin.exists():
            continue
        from_xml = fhirjson.canonical_order(fhirxml.parse_xml(path.read_bytes()))
        from_json = fhirjson.canonical_order(fhirjson.loads(twin.read_bytes()))
        # the narrative XHTML is serialised differently by the converter Nictiz used
        for resource in (from_xml, from_json):
            _drop_narratives(resource)
        assert from_xml == from_json, path.name
        compared += 1
    assert compared >= 5


def _drop_narratives(node: object) -> None:
    if isinstance(node, dict):
        text = node.get("text")
        if isinstance(text, dict) and "div" in text:
            node.pop("text")
        for value in node.values():
            _drop_narratives(value)
    elif isinstance(node, list):
        for item in node:
            _drop_narratives(item)


def test_decimal_precision_is_kept() -> None:
    text = '{"resourceType":"Observation","status":"final","code":{"text":"t"},"valueQuantity":{"value":36.60}}'
    resource = fhirjson.loads(text)
    assert resource["valueQuantity"]["value"] == Decimal("36.60")
    assert '"value":36.60' in fhirjson.dumps(resource)
    xml = fhirxml.render_xml(resource)
    assert '<value value="36.60"/>' in xml
    assert fhirxml.parse_xml(xml)["valueQuantity"]["value"] == Decimal("36.60")


def test_primitive_types_in_json() -> None:
    xml = ('<Patient xmlns="http://hl7.org/fhir"><active value="true"/>'
           '<multipleBirthInteger value="2"/></Patient>')
    assert fhirxml.parse_xml(xml) == {"resourceType": "Patient", "active": True, "multipleBirthInteger": 2}
    with pytest.raises(FhirFormatError, match="not a boolean"):
        fhirxml.parse_xml('<Patient xmlns="http://hl7.org/fhir"><active value="yes"/></Patient>')


def test_repeating_primitives_with_extensions_stay_aligned() -> None:
    xml = ('<Patient xmlns="http://hl7.org/fhir"><name><given value="A"/>'
           '<given><extension url="http://x"><valueCode value="c"/></extension></given>'
           '<given value="B" id="g3"/></name></Patient>')
    resource = fhirxml.parse_xml(xml)
    name = resource["name"][0]
    assert name["given"] == ["A", None, "B"]
    assert name["_given"] == [None, {"extension": [{"url": "http://x", "valueCode": "c"}]}, {"id": "g3"}]
    assert fhirxml.parse_xml(fhirxml.render_xml(resource)) == resource


def test_elements_are_written_in_specification_order() -> None:
    resource = {"resourceType": "Observation", "valueString": "x", "code": {"text": "c"}, "status": "final",
                "id": "o1"}
    xml = fhirxml.render_xml(resource)
    assert xml.index("<id ") < xml.index("<status ") < xml.index("<code>") < xml.index("<valueString ")
    assert list(fhirjson.canonical_order(resource)) == ["resourceType", "id", "status", "code", "valueString"]


def test_attribute_values_are_escaped() -> None:
    resource = {"resourceType": "Patient", "id": "p", "name": [{"text": 'A "B" <C> & D\nE\tF'}]}
    xml = fhirxml.render_xml(resource)
    etree.fromstring(xml.encode())
    assert fhirxml.parse_xml(xml) == resource


def test_narrative_is_kept_as_xhtml() -> None:
    xml = ('<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>'
           '<div xmlns="http://www.w3.org/1999/xhtml"><p>Hallo <b>wereld</b></p></div></text></Patient>')
    resource = fhirxml.parse_xml(xml)
    assert resource["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    assert fhirxml.parse_xml(fhirxml.render_xml(resource)) == resource


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ('<Patient xmlns="http://hl7.org/fhir"><bogus value="1"/></Patient>', "Unknown element"),
        ('<Patient xmlns="http://example.org"/>', "not in the FHIR namespace"),
        ('<Nonsense xmlns="http://hl7.org/fhir"/>', "Unknown resource type"),
        ('<Patient xmlns="http://hl7.org/fhir"><gender value="male"/><gender value="female"/></Patient>',
         "only once"),
        ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir">'
         '<id value="&e;"/></Patient>', "external entity"),
        ('<!DOCTYPE Patient><Patient xmlns="http://hl7.org/fhir"><id value="x"/></Patient>', "DOCTYPE"),
        ("not xml", "Invalid XML"),
        ('<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div>x</div></text></Patient>',
         "XHTML"),
    ],
)
def test_hostile_or_invalid_xml_is_refused(xml: str, message: str) -> None:
    with pytest.raises(FhirFormatError, match=message):
        fhirxml.parse_xml(xml)


def test_json_errors() -> None:
    with pytest.raises(FhirFormatError, match="Invalid JSON"):
        fhirjson.loads("{")
    with pytest.raises(FhirFormatError, match="NaN"):
        fhirjson.loads('{"a": NaN}')


def test_dumps_writes_what_simplejson_writes() -> None:
    """``dumps`` goes through orjson, falling back to simplejson: the text must be the same either way, so
    stored resources stay byte-stable and their digests (idempotent submissions) do not change."""
    import simplejson

    def reference(value: object) -> str:
        return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    every_character = "".join(chr(code) for code in range(0x80)) + "\u00e9\u2028\u2029\U0001f600 \\u0041"
    values: list[object] = [
        {"resourceType": "Observation", "valueQuantity": {"value": Decimal("36.60")}, "comment": every_character},
        {"a": [Decimal("1E+2"), Decimal("-0.00"), Decimal("0.000001"), 0, -1, True, False, None, 2**63 - 1]},
        {"beyond 64 bits": 2**70, "negative": -(2**70)},  # orjson refuses these: simplejson writes them
    ]
    if STU3.is_dir():
        fixtures = sorted(STU3.glob("*/MedMij/Cert/_reference/**/*.json"))
        values += [fhirjson.loads(path.read_bytes()) for path in fixtures]
    for value in values:
        assert fhirjson.dumps(value) == reference(value)
    with pytest.raises(TypeError):  # not JSON: refused, as simplejson refuses it
        fhirjson.dumps({"when": __import__("datetime").date(2026, 1, 1)})


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDC00", "x\\udbff", "\\ud83d\\u0041"])
def test_a_lone_surrogate_escape_is_refused(escape: str) -> None:
    with pytest.raises(FhirFormatError, match="surrogate"):
        fhirjson.loads(f'{{"resourceType":"Observation","comment":"{escape}"}}')
    with pytest.raises(FhirFormatError, match="surrogate"):
        fhirjson.loads(f'{{"resourceType":"Observation","{escape}":"key"}}'.encode())


def test_escapes_that_name_characters_are_kept() -> None:
    value = fhirjson.loads('{"a":"\\ud83d\\ude00","b":"\\\\ud800","c":"\\u00e9"}')
    assert value == {"a": "\U0001f600", "b": "\\ud800", "c": "\u00e9"}
    assert fhirjson.dumps(value) == '{"a":"\U0001f600","b":"\\\\ud800","c":"\u00e9"}'


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\ufffe", "\uffff"])
def test_a_character_xml_cannot_carry_is_refused_for_storage_and_replaced_in_answers(character: str) -> None:
    resource = {"resourceType": "Condition", "code": {"text": "t"},
                "note": [{"text": "ok"}, {"text": f"before{character}after"}]}
    with pytest.raises(InvalidResource) as refused:
        fhirxml.render_xml(resource, strict=True)
    assert refused.value.issues[0].expression == "Condition.note[1].text"
    answer = fhirxml.render_xml(resource)  # e.g. an OperationOutcome quoting what was sent
    assert character not in answer and "before\ufffdafter" in answer
    etree.fromstring(answer.encode())  # well-formed


def test_tab_newline_and_carriage_return_are_kept() -> None:
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "a\tb\nc\rd"}}
    assert fhirxml.parse_xml(fhirxml.render_xml(resource, strict=True))["code"]["text"] == "a\tb\nc\rd"


XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


@pytest.mark.parametrize("div", [
    f'<div {XHTML}>x</div></text><status value="entered-in-error"/><text><div {XHTML}>',  # closes its element
    f'<div {XHTML}>x</div><div {XHTML}>y</div>',  # two roots
    '<div>no namespace: it would land in FHIR\'s</div>',
    f'<div {XHTML}>a&nbsp;b</div>',  # an entity XML does not know
    f'<div {XHTML}>unclosed',
    "plain text",
    f'<?xml version="1.0"?><div {XHTML}>x</div>',
])
def test_a_narrative_that_is_not_one_xhtml_div_is_refused_for_storage(div: str) -> None:
    resource = {"resourceType": "Condition", "text": {"status": "generated", "div": div}, "code": {"text": "t"}}
    with pytest.raises(InvalidResource) as refused:
        fhirxml.render_xml(resource, strict=True)
    assert refused.value.issues[0].expression == "Condition.text.div"
    answer = fhirxml.render_xml(resource)  # an answer: the narrative as text, the XML well-formed
    parsed = fhirxml.parse_xml(answer)
    assert parsed["code"] == {"text": "t"} and "status" not in parsed


def test_a_well_formed_narrative_is_written_as_it_came() -> None:
    div = f'<div {XHTML} lang="nl"><p>Gewicht <b>81</b> kg</p><!-- note --><br/></div>'
    resource = {"resourceType": "Condition", "text": {"status": "generated", "div": div}, "code": {"text": "t"}}
    assert div in fhirxml.render_xml(resource, strict=True)


def test_shipped_schema_matches_the_installed_models() -> None:
    """``fhir_api/data/stu3-schema.json`` is generated; regenerate with ``python -m fhir_api.schema``."""
    shipped = json.loads(schema.SCHEMA_FILE.read_text())
    assert schema.generate() == shipped
