"""The PGO simulator's building blocks without a network: searches, batches, documents, questionnaires,
the granted scope, and where a token may be sent."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dvza.pgo import measurements as ms
from dvza.pgo import questionnaires as qs
from dvza.pgo.cli import default_redirect_uri
from dvza.pgo.client import Aanbieder
from dvza.pgo.client import TokenGrant
from dvza.pgo.documents import DocumentError
from dvza.pgo.documents import binary_path
from dvza.pgo.documents import document_bundle
from dvza.pgo.documents import documents_query

AANBIEDER = Aanbieder("umcdemo@medmij", "UMC Demo", "https://dvza.test/oauth/authorize", "https://dvza.test/oauth/token",
                      "https://dvza.test/fhir", ("48", "51"))
PDF = b"%PDF-1.4\n%test\n"


@pytest.mark.parametrize(("choice", "query"), [
    ({"kind": ms.ALL}, "Observation?category=vital-signs"),
    ({"kind": "bloeddruk"}, "Observation?code=http://loinc.org|85354-9"),
    ({"kind": "gewicht", "latest": True}, "Observation/$lastn?code=http://loinc.org|29463-7"),
    ({"kind": "glucose"}, "Observation?code=http://loinc.org|14743-9,http://loinc.org|14760-3,http://loinc.org|14770-2"),
    ({"kind": "bloeddruk", "since": date(2026, 1, 1), "until": date(2026, 2, 1)},
     "Observation?code=http://loinc.org|85354-9&date=ge2026-01-01&date=le2026-02-01"),
])
def test_measurement_searches(choice: dict[str, object], query: str) -> None:
    assert ms.search_query(**choice) == query  # type: ignore[arg-type]


def test_the_four_focus_measurements_are_six_codes() -> None:
    query = ms.search_query(ms.MAIN)
    assert query.count("http://loinc.org|") == 6 and "8867-4" in query and "29463-7" in query


@pytest.mark.parametrize(("spec", "problem"), [
    ("bloeddruk=80/120", "lager"), ("gewicht=0", "kan niet kloppen"), ("hartslag=snel", "schrijf soort=waarde"),
    ("lengte=180", "Kies wat je hebt gemeten"), ("bloeddruk=120", "bovendruk en de onderdruk"),
    ("gewicht=70@gisteren", "geen moment"),
])
def test_wrong_measurements_are_explained_in_dutch(spec: str, problem: str) -> None:
    with pytest.raises(ms.MeasurementError, match=problem):
        ms.parse(spec)


def test_a_batch_of_measurements_follows_the_zibs() -> None:
    when = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    bundle = ms.batch([ms.parse("bloeddruk=128/84@2026-10-01T08:00+00:00"), ms.make("glucose", ["5,4"], when),
                       ms.make("gewicht", ["72.5"], when)])
    assert bundle["type"] == "batch" and [e["request"]["url"] for e in bundle["entry"]] == \
        ["Patient", "Observation", "Observation", "Observation"]
    patient_url = bundle["entry"][0]["fullUrl"]
    pressure, glucose, weight = (e["resource"] for e in bundle["entry"][1:])
    assert pressure["subject"]["reference"] == patient_url and pressure["performer"][0]["reference"] == patient_url
    assert [c["valueQuantity"]["value"] for c in pressure["component"]] == [128, 84]
    assert glucose["category"][0]["coding"][0]["code"] == "49581000146104"
    assert glucose["valueQuantity"] == {"value": 5.4, "unit": "mmol/l", "system": "http://unitsofmeasure.org",
                                        "code": "mmol/L"}
    assert weight["meta"]["profile"] == ["http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight"]
    json.dumps(bundle)  # plain JSON, no Decimal left
    assert ms.make("gewicht", ["72,50"], when).values == (Decimal("72.50"),)


@pytest.mark.parametrize(("scope", "granted"), [
    ("48", ["48"]), ("48 51", ["48", "51"]), ("umcdemo~48", ["48"]), ("umcdemo", ["48", "51"]), ("", ["48", "51"]),
])
def test_only_the_granted_gegevensdiensten(scope: str, granted: list[str]) -> None:
    assert TokenGrant("t", 900, scope).granted(["48", "51"]) == granted


@pytest.mark.parametrize(("url", "path"), [
    ("Binary/pdfa-binary1", "Binary/pdfa-binary1"),
    ("https://dvza.test/fhir/Binary/x", "Binary/x"),
    ("https://elders.example/fhir/Binary/x", None),  # the token never goes to another host
    ("https://dvza.test/fhir/../admin/Binary/x", None),
    ("Binary/x?_format=json", None), ("Patient/1", None), ("", None),
])
def test_documents_are_opened_only_on_the_aanbieder_s_own_base(url: str, path: str | None) -> None:
    assert binary_path(AANBIEDER, url) == path


def test_a_period_of_documents() -> None:
    assert documents_query(date(2024, 1, 1), date(2025, 1, 1)) == \
        "DocumentReference?status=current&indexed=ge2024-01-01&indexed=le2025-01-01"


def test_document_bundles_one_and_a_set() -> None:
    one = document_bundle([("Brief", PDF)])
    assert [e["resource"]["resourceType"] for e in one["entry"]] == ["Patient", "DocumentReference", "Binary"]
    reference, binary = one["entry"][1], one["entry"][2]
    assert reference["resource"]["content"][0]["attachment"]["url"] == binary["fullUrl"]
    assert all(e["fullUrl"].startswith("urn:uuid:") and "id" not in e["resource"] for e in one["entry"])
    two = document_bundle([("A", PDF), ("B", PDF)], description="Twee")
    kinds = [e["resource"]["resourceType"] for e in two["entry"]]
    assert kinds.count("DocumentManifest") == 1 and kinds.count("DocumentReference") == 2 and kinds.count("Binary") == 2
    manifest = next(e["resource"] for e in two["entry"] if e["resource"]["resourceType"] == "DocumentManifest")
    assert [c["pReference"]["display"] for c in manifest["content"]] == ["A", "B"]
    with pytest.raises(DocumentError, match="geen PDF"):
        document_bundle([("x", b"GIF89a")])
    with pytest.raises(DocumentError):
        document_bundle([])


TASK = {"resourceType": "Task", "id": "t1", "status": "requested", "text": {"div": "<div/>"},
        "input": [{"type": {"text": "Questionnaire"}, "valueReference": {"reference": "Questionnaire/Q1",
                                                                          "display": "Vragenlijst: Test"}},
                  {"type": {"text": "Subject"}, "valueReference": {"reference": "Patient/p1", "display": "P. Een"}}]}
QUESTIONNAIRE = {"resourceType": "Questionnaire", "id": "Q1", "url": "http://example.org/Questionnaire/q1",
                 "title": "Test", "item": [
                     {"linkId": "g", "type": "group", "text": "Groep", "item": [
                         {"linkId": "n", "type": "decimal", "text": "Gewicht", "required": True},
                         {"linkId": "b", "type": "boolean", "text": "Rookt u?"},
                         {"linkId": "c", "type": "choice", "text": "Hoe vaak?", "option": [
                             {"valueCoding": {"code": "DAG", "display": "Dagelijks"}}]},
                         {"linkId": "d", "type": "date", "text": "Wanneer?"}]},
                     {"linkId": "i", "type": "display", "text": "Uitleg"}]}


def test_a_questionnaire_is_answered_and_completes_its_task() -> None:
    form = {"q:n": ["72,5"], "q:b": ["nee"], "q:c": ["DAG"], "q:d": ["2026-10-01"]}
    response, problems = qs.build_response(QUESTIONNAIRE, TASK, form)
    assert problems == {}
    answers = response["item"][0]["item"]
    assert [a["answer"][0] for a in answers] == [{"valueDecimal": 72.5}, {"valueBoolean": False},
                                                  {"valueCoding": {"code": "DAG", "display": "Dagelijks"}},
                                                  {"valueDate": "2026-10-01"}]
    assert response["questionnaire"]["reference"] == "http://example.org/Questionnaire/q1"
    assert response["subject"] == {"reference": "Patient/p1", "display": "P. Een"} == response["author"]
    bundle = qs.answers_transaction(AANBIEDER, qs.with_status(TASK, "accepted"), response)
    task_entry, response_entry = bundle["entry"]
    assert task_entry["fullUrl"] == "https://dvza.test/fhir/Task/t1" and task_entry["request"]["method"] == "PUT"
    assert task_entry["resource"]["status"] == "completed" and "text" not in task_entry["resource"]
    assert task_entry["resource"]["output"][0]["valueReference"]["reference"] == response_entry["fullUrl"]
    assert response_entry["request"] == {"method": "POST", "url": "QuestionnaireResponse"}


def test_wrong_answers_are_explained_per_question() -> None:
    _, problems = qs.build_response(QUESTIONNAIRE, TASK, {"q:b": ["misschien"], "q:c": ["NOOIT"], "q:d": ["morgen"]})
    assert problems == {"n": "Deze vraag moet je beantwoorden.", "b": "Kies ja of nee.",
                        "c": "Kies een van de antwoorden.", "d": "Vul een datum in, bijvoorbeeld 2026-10-01."}


def test_a_questionnaire_elsewhere_is_not_retrieved_with_the_token() -> None:
    assert qs.local_path(AANBIEDER, "Questionnaire/Q1") == "Questionnaire/Q1"
    assert qs.local_path(AANBIEDER, "https://dvza.test/fhir/Questionnaire/Q1") == "Questionnaire/Q1"
    assert qs.local_path(AANBIEDER, "http://example.org/Questionnaire/onvindbaar") is None
    assert qs.local_path(AANBIEDER, None) is None


def test_dvza_pgo_finds_the_simulator_callback_next_to_the_lists(tmp_path: Path) -> None:
    (tmp_path / "demo-network.json").write_text(json.dumps(
        {"pgo": {"hostname": "pgo.localhost", "redirect_uri": "https://pgo.localhost:8444/callback"}}))
    assert default_redirect_uri(str(tmp_path), "pgo.localhost") == "https://pgo.localhost:8444/callback"
    assert default_redirect_uri(str(tmp_path), "andere-pgo.example") is None
    assert default_redirect_uri(str(tmp_path / "nope"), "pgo.localhost") is None
