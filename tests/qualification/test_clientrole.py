"""Evaluating client-role TestScripts against recorded traffic (dvza.conformance.clientrole), on a small
handwritten script: matching as Touchstone does, best-fit assignment, "never requested", tokens."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from dvza.conformance.clientrole import ClientScript
from dvza.conformance.clientrole import Recorded
from dvza.conformance.clientrole import evaluate_session
from dvza.conformance.clientrole import expected_shape
from dvza.conformance.clientrole import normalise_query
from dvza.conformance.clientrole import recorded_shape
from dvza.conformance.documents import Document
from dvza.conformance.runner import FAIL
from dvza.conformance.runner import PASS
from dvza.conformance.testscript import Operation
from dvza.conformance.testscript import parse_testscript

BASE = "https://dvza.test/fhir"
TOKENS = {"Bearer token-of-a": "patient-a", "Bearer token-of-b": "patient-b"}

SCRIPT = """<TestScript xmlns="http://hl7.org/fhir">
  <id value="client-test"/><name value="client test"/><status value="active"/>
  <origin>
    <extension url="http://fhir.interoplab.eu/fhir/StructureDefinition/Interoplab-CL-ext-SUT">
      <valueBoolean value="true"/></extension>
    <index value="1"/><profile><code value="FHIR-Client"/></profile>
  </origin>
  <destination><index value="1"/><profile><code value="FHIR-Server"/></profile></destination>
  <variable><name value="T"/><defaultValue value="${CURRENTDATE}"/></variable>
  {tests}
</TestScript>"""

TEST = """<test id="{id}"><name value="{id}"/>
  <action><operation><type><system value="http://hl7.org/fhir/restful-interaction"/><code value="search"/></type>
    <resource value="Observation"/><origin value="1"/><destination value="1"/>
    <params value="{params}"/>
    <requestHeader><field value="Authorization"/><value value="{token}"/></requestHeader></operation></action>
  <action><assert><description value="token"/><direction value="request"/><headerField value="Authorization"/>
    <value value="{token}"/></assert></action>
  <action><assert><description value="no patient="/><direction value="request"/><operator value="notContains"/>
    <requestURL value="patient="/></assert></action>
  <action><assert><description value="ok"/><operator value="in"/><responseCode value="200,201"/></assert></action>
  <action><assert><description value="count"/><direction value="response"/>
    <expression value="Bundle.entry.count() = {count}"/></assert></action>
</test>"""


def script(tmp_path: Path, *tests: dict[str, t.Any]) -> ClientScript:
    path = tmp_path / "client-json.xml"
    path.write_text(SCRIPT.replace("{tests}", "".join(TEST.format(**test) for test in tests)))
    return ClientScript(parse_testscript(path), {"T": "2024-03-01"})


def exchange(seq: int, url: str, patient: str | None, entries: int, status: int = 200) -> Recorded:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Observation"}}]
              * entries}
    return Recorded(method="GET", url=BASE + url, request_headers={"Authorization": "Bearer [access token abc123]"},
                    request=None, status=status, response_headers={"Content-Type": "application/fhir+json"},
                    response=Document(json.dumps(bundle), "json"), seq=seq, recorded_at="2024-03-01T10:00:00+00:00",
                    patient_id=patient, token_label="access token abc123", base_url=BASE)


def run(cs: ClientScript, traffic: list[Recorded]) -> dict[str, list[tuple[str, str, str]]]:
    evaluation = evaluate_session([cs], traffic, token_patient=TOKENS.get)
    return {test.name: [(a.title, a.status, a.request) for a in test.asserts] for test in evaluation.results[0].tests}


def test_query_normalisation_ignores_order_encoding_and_format() -> None:
    assert normalise_query("code=http://loinc.org%7C1,http://loinc.org%7C2&date=ge2024&_format=json") == \
        normalise_query("date=ge2024&code=http://loinc.org|2,http://loinc.org|1")


@pytest.mark.parametrize(("method", "path", "shape"), [
    ("GET", "/Observation?code=x", ("search", "Observation", "")),
    ("GET", "/Observation/$lastn?code=x", ("search", "Observation", "/$lastn")),
    ("GET", "/Binary/b1", ("read", "Binary", "/b1")),
    ("PUT", "/Task/t1", ("update", "Task", "/t1")),
    ("DELETE", "/Task/t1", ("delete", "Task", "/t1")),
    ("POST", "/Observation", ("create", "Observation", "")),
])
def test_recorded_interactions(method: str, path: str, shape: tuple[str, str, str]) -> None:
    found = recorded_shape(Recorded(method=method, url=BASE + path, request_headers={}, request=None), BASE)
    assert (found.interaction, found.resource, found.path) == shape


def test_transaction_and_batch_are_told_apart_by_the_body() -> None:
    for kind in ("transaction", "batch"):
        body = Document(json.dumps({"resourceType": "Bundle", "type": kind}), "json")
        assert recorded_shape(Recorded(method="POST", url=BASE, request_headers={}, request=body), BASE).interaction \
            == kind


def test_expected_shape_substitutes_variables() -> None:
    op = Operation("http://hl7.org/fhir/restful-interaction", "search", resource="Observation",
                   params="/$lastn?date=ge${X}&code=a|1")
    assert expected_shape(op, lambda s: s.replace("${X}", "2024-01-01")) == recorded_shape(
        Recorded(method="GET", url=BASE + "/Observation/$lastn?code=a%7C1&date=ge2024-01-01", request_headers={},
                 request=None), BASE)


def test_the_right_requests_pass_every_assert(tmp_path: Path) -> None:
    cs = script(tmp_path, {"id": "one", "params": "?code=a|1", "token": "Bearer token-of-a", "count": 2})
    results = run(cs, [exchange(1, "/Observation?code=a%7C1", "patient-a", 2)])
    assert [status for _, status, _ in results["one"]] == [PASS] * 4
    assert all(request.startswith("#1 GET /Observation?code=a%7C1") for _, _, request in results["one"])


def test_a_missing_request_fails_as_never_requested_and_names_the_closest(tmp_path: Path) -> None:
    cs = script(tmp_path, {"id": "one", "params": "?code=a|1", "token": "Bearer token-of-a", "count": 2})
    results = run(cs, [exchange(1, "/Observation?code=a%7C2", "patient-a", 2)])
    statuses = {status for _, status, _ in results["one"]}
    assert statuses == {FAIL}
    evaluation = evaluate_session([cs], [exchange(1, "/Observation?code=a%7C2", "patient-a", 2)],
                                  token_patient=TOKENS.get)
    detail = evaluation.results[0].tests[0].asserts[0].detail
    assert detail.startswith("never requested: search Observation?code=a|1 with a token of patient patient-a")
    assert "closest request made: #1 GET /Observation?code=a%7C2" in detail
    assert [ex.seq for ex in evaluation.unmatched] == [1]


def test_same_requests_of_two_persons_are_assigned_by_best_fit_in_any_order(tmp_path: Path) -> None:
    cs = script(tmp_path, {"id": "a", "params": "?code=a|1", "token": "Bearer token-of-a", "count": 3},
                {"id": "b", "params": "?code=a|1", "token": "Bearer token-of-b", "count": 0})
    # b's request came first, and a asked twice (the second time is a reload)
    traffic = [exchange(1, "/Observation?code=a%7C1", "patient-b", 0),
               exchange(2, "/Observation?code=a%7C1", "patient-a", 3),
               exchange(3, "/Observation?code=a%7C1", "patient-a", 3)]
    results = run(cs, traffic)
    assert {status for _, status, _ in results["a"] + results["b"]} == {PASS}
    assert results["a"][0][2].startswith("#2 ") and results["b"][0][2].startswith("#1 ")


def test_a_token_of_another_person_fails_the_authorization_assert(tmp_path: Path) -> None:
    cs = script(tmp_path, {"id": "a", "params": "?code=a|1", "token": "Bearer token-of-a", "count": 1})
    results = run(cs, [exchange(1, "/Observation?code=a%7C1", "patient-b", 1)])
    assert [status for _, status, _ in results["a"]] == [FAIL, PASS, PASS, PASS]
    evaluation = evaluate_session([cs], [exchange(1, "/Observation?code=a%7C1", "patient-b", 1)],
                                  token_patient=TOKENS.get)
    detail = evaluation.results[0].tests[0].asserts[0].detail
    assert "expected a token of patient patient-a" in detail and "of patient patient-b" in detail
    assert "token-of-a" not in detail  # the script's token is shown masked


def test_patient_parameter_in_the_url_fails(tmp_path: Path) -> None:
    cs = script(tmp_path, {"id": "a", "params": "?code=a|1&amp;patient=Patient/1", "token": "Bearer token-of-a",
                           "count": 1})
    results = run(cs, [exchange(1, "/Observation?patient=Patient/1&code=a%7C1", "patient-a", 1)])
    assert [status for title, status, _ in results["a"] if title == "no patient="] == [FAIL]


def test_a_wrong_answer_is_reported_with_the_request_it_looked_at(tmp_path: Path) -> None:
    cs = script(tmp_path, {"id": "a", "params": "", "token": "Bearer token-of-a", "count": 1})
    results = run(cs, [exchange(7, "/Observation", "patient-a", 0, status=200)])
    failed = [(title, request) for title, status, request in results["a"] if status == FAIL]
    assert failed == [("count", "#7 GET /Observation → 200, token of patient-a")]
