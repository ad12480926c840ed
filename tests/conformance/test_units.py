"""Variables, Touchstone placeholders, the fhirpathpy gap fixes (fhir-content.md §8.2) and the two
Touchstone rules, one test each."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dvza.conformance.asserts import check_query_params_in_self_link
from dvza.conformance.documents import Document
from dvza.conformance.documents import from_resource
from dvza.conformance.documents import with_status
from dvza.conformance.documents import xml_to_json
from dvza.conformance.fhirpath import evaluate
from dvza.conformance.operations import Exchange
from dvza.conformance.variables import Substitution
from dvza.conformance.variables import VariableError
from dvza.conformance.variables import token_overrides

MASKED = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}]}


def test_primitive_with_extension_sibling_compares_equal() -> None:  # gap 2
    patient = {"resourceType": "Patient", "gender": "male", "_gender": {"extension": [{"url": "x", "valueCode": "M"}]}}
    assert evaluate(patient, "Patient.gender = 'male'") == [True]
    assert evaluate(patient, "Patient.gender.toString()") == ["male"]
    assert evaluate(patient, "Patient.gender.extension.count()") == [1]


def test_repeated_primitive_with_partial_extensions() -> None:
    name = {"given": ["A", "B"], "_given": [None, {"extension": [{"url": "x"}]}]}
    patient = {"resourceType": "Patient", "name": [name]}
    assert evaluate(patient, "Patient.name.given.count()") == [2]


def test_masked_bsn_is_not_a_bsn() -> None:  # §1.2 #14
    expr = ("Patient.identifier.where(system='http://fhir.nl/fhir/NamingSystem/bsn')"
            ".where(value.empty().not() and value.extension.exists().not()).count() = 0")
    bsn = "http://fhir.nl/fhir/NamingSystem/bsn"
    masked = {"resourceType": "Patient", "identifier": [{"system": bsn, "_value": MASKED}]}
    plain = {"resourceType": "Patient", "identifier": [{"system": bsn, "value": "1"}]}
    assert evaluate(masked, expr) == [True]
    assert evaluate(plain, expr) == [False]


def test_has_value_is_available() -> None:  # gap 1
    assert evaluate({"resourceType": "Patient", "active": True}, "Patient.active.hasValue()") == [True]
    assert evaluate({"resourceType": "Patient", "_active": MASKED}, "Patient.active.hasValue()") == [False]


def test_xml_is_converted_for_fhirpath() -> None:
    doc = xml_to_json('<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><total value="1"/></Bundle>')
    assert evaluate(doc, "Bundle.total <= 1 and Bundle.type = 'searchset'") == [True]


def test_touchstone_placeholders() -> None:
    values = {"T": "${CURRENTDATE}", "x": "a"}
    subst = Substitution(values.get, today=date(2024, 1, 31))
    assert subst.substitute("${DATE, T, D, -730}") == "2022-01-31"
    assert subst.substitute("${DATE, T, M,+1}/${DATE, T, Y, -1}") == "2024-02-29/2023-01-31"
    assert len(subst.substitute("${RANDOM-10}")) == 10 and len(subst.substitute("${UUID}")) == 36
    assert subst.substitute("${x}-${CURRENTDATE}") == "a-2024-01-31"
    assert subst.substitute("${nope}", lenient=True) == "${nope}"
    with pytest.raises(VariableError):
        subst.substitute("${nope}")


def test_token_overrides_match_name_and_keep_ambiguous_default() -> None:
    entries = [{"accessToken": "Bearer v1", "resourceId": "XXXVINK", "familyName": "XXX_Vink"},
               {"accessToken": "Bearer b1", "familyName": "XXX_Bourgonjee"},
               {"accessToken": "Bearer b2", "familyName": "XXX_Bourgonjee"}]
    got = token_overrides(entries, {"patient-token-XXXVINK": "Bearer n1", "patient-token-XXX_Bourgonjee": "Bearer n2",
                                    "T": None})
    assert got == {"patient-token-XXXVINK": "Bearer v1"}


def test_query_params_in_self_link_rule() -> None:
    ex = Exchange("GET", "http://h/fhir/Task?code=http://loinc.org%7C74468-0&patient=Patient/1", {}, None)
    ok = from_resource({"resourceType": "Bundle", "link": [
        {"relation": "self", "url": "http://h/fhir/Task?code=http%3A%2F%2Floinc.org%7C74468-0&patient=1"}]})
    bad = from_resource({"resourceType": "Bundle", "link": [{"relation": "self", "url": "http://h/fhir/Task?patient=1"}]})
    assert check_query_params_in_self_link(ex, ok).ok is True
    assert check_query_params_in_self_link(ex, bad).ok is False


def test_rewrite_task_status_rule_in_both_formats() -> None:
    task = {"resourceType": "Task", "id": "t", "status": "requested", "text": {"status": "generated", "div": "<div/>"}}
    json_doc = with_status(from_resource({"resourceType": "Bundle", "entry": [{"resource": task}]}), "accepted")
    assert json_doc.resource == {"resourceType": "Task", "id": "t", "status": "accepted"}
    xml = ('<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Task><id value="t"/><text><status value="generated"/>'
           '<div xmlns="http://www.w3.org/1999/xhtml">x</div></text><status value="requested"/></Task></resource>'
           '</entry></Bundle>')
    xml_doc = with_status(Document(xml, "xml"), "rejected")
    assert xml_doc.format == "xml" and "<text" not in xml_doc.text and 'value="rejected"' in xml_doc.text
    with pytest.raises(ValueError):
        with_status(from_resource({"resourceType": "Bundle", "entry": []}), "accepted")


# ------------------------------------------------------------------------------------ exact decimals
@pytest.mark.parametrize("body, fmt", [
    ('{"resourceType": "Observation", "valueQuantity": {"value": 37.2}, "component": '
     '[{"valueQuantity": {"value": 0.1}}, {"valueQuantity": {"value": 0.2}}]}', "json"),
    ('<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="t"/></code>'
     '<valueQuantity><value value="37.2"/></valueQuantity>'
     '<component><code><text value="a"/></code><valueQuantity><value value="0.1"/></valueQuantity></component>'
     '<component><code><text value="b"/></code><valueQuantity><value value="0.2"/></valueQuantity></component>'
     '</Observation>', "xml"),
])
def test_decimals_compare_exactly(body: str, fmt: str) -> None:
    """FHIR decimals are exact (datatypes.html#decimal): a served 37.2 equals the literal 37.2, and
    0.1 + 0.2 = 0.3, which binary floats get wrong."""
    resource = Document(body, fmt).resource
    assert evaluate(resource, "Observation.valueQuantity.value = 37.2") == [True]
    assert evaluate(resource, "Observation.component[0].valueQuantity.value + "
                              "Observation.component[1].valueQuantity.value = 0.3") == [True]
    assert evaluate(resource, "Observation.valueQuantity.value") == [Decimal("37.2")]


def test_decimal_value_asserts_and_variables_use_exact_text() -> None:
    from dvza.conformance.asserts import compare
    from dvza.conformance.fhirpath import as_text

    assert as_text(evaluate(from_resource({"resourceType": "Observation", "valueQuantity": {"value": 37.2}}).resource,
                            "Observation.valueQuantity.value")[0]) == "37.2"
    assert compare(Decimal("0.3"), "equals", "0.3") and compare(Decimal("37.20"), "greaterThan", "37.19")
    assert compare(Decimal("1E+2"), "equals", "100")
