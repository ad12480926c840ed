"""Zelfmetingen 2.x: serving (fhir-content.md §5.2) and receiving (§5.3) on the Cert data."""

from __future__ import annotations

import json
import typing as t
from datetime import date
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func
from sqlalchemy import select

from dvza.returnqueue.models import QueueItem
from fhir_api import fhirxml
from fhir_api.models import ResourceRow
from tests.fhir_api.searchset_rules import counts
from tests.fhir_api.searchset_rules import violations
from tests.support import CERT_SETS
from tests.support import bearer
from tests.support import fixture_text
from tests.support import load_cert_data
from tests.support import submit_headers

BOURGONJEE = "selfmeasurement-patient-kwalificatie1"
BERGZOON = "selfmeasurement-patient-kwalificatie2"
GLUCOSE = "http://loinc.org|14760-3,http://loinc.org|14743-9,http://loinc.org|14770-2"
ALL_CODES = ("http://loinc.org|85354-9,http://loinc.org|29463-7,http://loinc.org|14760-3,http://loinc.org|14743-9,"
             "http://loinc.org|14770-2,http://loinc.org|8867-4")
RECEIVE = CERT_SETS["selfmeasurements"] / "_reference" / "resources-serve-receive"


def ago(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


SERVING = [
    ("1.1", f"Observation?code={quote('http://loinc.org|85354-9')}", 2),
    ("1.2", f"Observation/$lastn?code={quote('http://loinc.org|29463-7')}", 1),
    ("1.3", f"Observation?code={quote(GLUCOSE)}", 3),
    ("1.4", f"Observation?code={quote('http://loinc.org|8867-4')}", 2),
    ("1.5", f"Observation?code={quote('http://loinc.org|85354-9')}&date=ge{ago(100)}&date=le{ago(50)}", 0),
    ("1.6", f"Observation?code={quote(ALL_CODES)}&date=ge{ago(30)}&date=le{ago(0)}", 8),
    ("1.7", "Observation?category=vital-signs", 6),
]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(("scenario", "url", "expected"), SERVING, ids=[s[0] for s in SERVING])
def test_serving(cert_client: t.Any, scenario: str, url: str, expected: int, fmt: str) -> None:
    mime = f"application/fhir+{fmt}"
    response = cert_client.get(f"/fhir/{url}", headers=bearer(BOURGONJEE) | {"Accept": mime})
    assert response.status_code == 200
    bundle = fhirxml.parse_xml(response.data) if fmt == "xml" else response.get_json()
    assert counts(bundle).get("Observation", 0) == expected
    assert violations(bundle, url.partition("?")[2]) == []


def test_category_with_system_equals_without(cert_client: t.Any) -> None:
    plain = cert_client.get("/fhir/Observation?category=vital-signs", headers=bearer(BOURGONJEE)).get_json()
    full = cert_client.get("/fhir/Observation?category=" + quote("http://hl7.org/fhir/observation-category|vital-signs"),
                           headers=bearer(BOURGONJEE)).get_json()
    assert plain["total"] == full["total"] == 6


@pytest.fixture()
def receiving(app: t.Any) -> t.Any:
    load_cert_data(app, "selfmeasurements")
    return app


def row_count(app: t.Any) -> tuple[int, int]:
    with app.extensions["dvza.db"].sessionmaker() as session:
        return (session.scalar(select(func.count()).select_from(ResourceRow)),
                session.scalar(select(func.count()).select_from(QueueItem)))


RECEIVING = [("2.1", 1, "29463-7"), ("2.2", 4, "85354-9"), ("2.3", 13, None)]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(("scenario", "observations", "code"), RECEIVING, ids=[r[0] for r in RECEIVING])
def test_receiving(receiving: t.Any, scenario: str, observations: int, code: str | None, fmt: str) -> None:
    client = receiving.test_client()
    name = f"medmij-selfmeasurements-serve-receive-scenario-{scenario.replace('.', '-')}-bundle.{fmt}"
    body = fixture_text(RECEIVE / name)
    response = client.post("/fhir/", data=body, headers=submit_headers(BERGZOON, fmt))
    assert response.status_code in (200, 201), response.get_data(as_text=True)[:1000]
    bundle = fhirxml.parse_xml(response.data) if fmt == "xml" else response.get_json()
    assert bundle["type"] == "batch-response"
    assert counts(bundle) == {"Patient": 1, "Observation": observations}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert resource["id"] and resource["meta"]["profile"] and entry["fullUrl"].endswith(resource["id"])
        if resource["resourceType"] == "Observation":
            assert entry["response"]["status"].startswith("201")
            assert resource["subject"]["reference"] == f"Patient/{BERGZOON}"
        else:
            assert resource["id"] == BERGZOON and entry["response"]["status"].startswith("200")
    if code:
        assert any(c["code"] == code for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
                   for c in e["resource"]["code"]["coding"])
    rules = [v for v in violations({**bundle, "type": "searchset", "link": [{"relation": "self", "url": "x"}]})
             if not v.startswith(("type is searchset", "total counts"))]
    assert rules == []


def test_received_data_waits_for_the_hospital(receiving: t.Any) -> None:
    client = receiving.test_client()
    body = fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-1-bundle.json")
    created = client.post("/fhir/", data=body, headers=submit_headers(BERGZOON)).get_json()
    observation = next(e["resource"] for e in created["entry"] if e["resource"]["resourceType"] == "Observation")
    assert client.get(f"/fhir/Observation/{observation['id']}", headers=bearer(BERGZOON)).status_code == 404
    queue = receiving.extensions["dvza.queue"]
    [item] = queue.claim("epd", max_items=5)
    assert item.kind == "vitalsigns" and item.patient_id == BERGZOON and item.gegevensdienst == "53"
    assert f"Observation/{observation['id']}" in item.resources and "1× lichaamsgewicht" in item.summary
    queue.accept(item.id, "epd")
    assert client.get(f"/fhir/Observation/{observation['id']}", headers=bearer(BERGZOON)).status_code == 200


def _mutated(mutate: t.Callable[[dict[str, t.Any]], None]) -> str:
    bundle = json.loads(fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-2-bundle.json"))
    mutate(bundle)
    return json.dumps(bundle)


def _observations(bundle: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]


REFUSALS = {
    "another patient": (lambda b: b["entry"][0]["resource"].update(birthDate="1970-01-01"), 422, "not the patient"),
    "clear BSN": (lambda b: b["entry"][0]["resource"]["identifier"][0].update(value="999911259"), 422, "BSN"),
    # a BSN reaches the DVZA only from the hospital's own systems (issue 16), never inside what a PGO sends
    "clear BSN in a measurement": (lambda b: _observations(b)[0].update(identifier=[{
        "system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911259"}]), 422, "BSN in clear"),
    "wrong unit": (lambda b: _observations(b)[1]["component"][0]["valueQuantity"].update(code="kPa"), 422, "unit"),
    "missing diastolic": (lambda b: _observations(b)[0]["component"].pop(1), 422, "8462-4"),
    "implausible value": (lambda b: _observations(b)[0]["component"][0]["valueQuantity"].update(value=4000), 422,
                          "outside"),
    "unknown profile": (lambda b: _observations(b)[0]["meta"].update(profile=["http://example.org/x"]), 422,
                        "vital-sign profile"),
    "dangling reference": (lambda b: _observations(b)[0]["subject"].update(reference="urn:uuid:"
                           "00000000-0000-4000-8000-000000000000"), 400, "not an entry"),
    "not a vital sign": (lambda b: b["entry"].append({"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
                         "resource": {"resourceType": "Condition", "subject": {"reference": b["entry"][0]["fullUrl"]}},
                         "request": {"method": "POST", "url": "Condition"}}),
                         422, "accepts self-measurements"),
    "invalid structure": (lambda b: _observations(b)[0].update(effectiveDateTime="yesterday"), 400, "DateTime"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_submissions_change_nothing(receiving: t.Any, case: str) -> None:
    mutate, status, message = REFUSALS[case]
    before = row_count(receiving)
    response = receiving.test_client().post("/fhir/", data=_mutated(mutate), headers=submit_headers(BERGZOON))
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert message in json.dumps(body)
    assert row_count(receiving) == before


def test_retries_are_idempotent(receiving: t.Any) -> None:
    client = receiving.test_client()
    body = fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-2-bundle.json")
    first = client.post("/fhir/", data=body, headers=submit_headers(BERGZOON, request_id="retry-1"))
    before = row_count(receiving)
    again = client.post("/fhir/", data=body, headers=submit_headers(BERGZOON, request_id="retry-1"))
    assert again.status_code == 200
    assert [e["fullUrl"] for e in again.get_json()["entry"]] == [e["fullUrl"] for e in first.get_json()["entry"]]
    assert row_count(receiving) == before
    as_xml = client.post("/fhir/", data=body, headers=submit_headers(BERGZOON, request_id="retry-1") | {
        "Accept": "application/fhir+xml"})
    assert fhirxml.parse_xml(as_xml.data)["entry"][1]["fullUrl"] == first.get_json()["entry"][1]["fullUrl"]
    other = client.post("/fhir/", data=body.replace('"value": 124', '"value": 125'),
                        headers=submit_headers(BERGZOON, request_id="retry-1"))
    assert other.status_code == 409
    assert row_count(receiving) == before


def test_a_replay_answers_only_the_patient_it_was_for(receiving: t.Any) -> None:
    """One PGO, two patients, the same MedMij-Request-ID and body: the stored answer holds the first patient's
    data, so the second patient's token gets the refusal a different body gets, and nothing is stored."""
    from oauth.tokens import ACCESS
    from oauth.tokens import store_token

    with receiving.app_context(), receiving.extensions["dvza.db"].sessionmaker() as session:
        for patient, token in ((BERGZOON, "shared-pgo-bergzoon"), (BOURGONJEE, "shared-pgo-bourgonjee")):
            store_token(session, token, kind=ACCESS, patient_id=patient, gegevensdiensten=["52", "53"],
                        client_id="pgo.example.nl", lifetime=timedelta(hours=1))
        session.commit()
    client = receiving.test_client()
    body = fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-2-bundle.json")

    def headers(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json",
                "Accept": "application/fhir+json", "MedMij-Request-ID": "shared-request-1"}

    first = client.post("/fhir/", data=body, headers=headers("shared-pgo-bergzoon"))
    assert first.status_code == 200, first.get_data(as_text=True)[:300]
    before = row_count(receiving)
    other = client.post("/fhir/", data=body, headers=headers("shared-pgo-bourgonjee"))
    assert other.status_code == 409, other.get_data(as_text=True)[:300]
    assert BERGZOON not in other.get_data(as_text=True)
    assert row_count(receiving) == before
    again = client.post("/fhir/", data=body, headers=headers("shared-pgo-bergzoon"))  # the real retry still works
    assert again.status_code == 200 and again.get_json()["entry"] == first.get_json()["entry"]


def test_submissions_need_the_sending_gegevensdienst(receiving: t.Any) -> None:
    from oauth.tokens import ACCESS
    from oauth.tokens import store_token

    with receiving.extensions["dvza.db"].sessionmaker() as session:
        store_token(session, "read-only-52-0000000000000000", kind=ACCESS, patient_id=BERGZOON,
                    gegevensdiensten=["52"], lifetime=timedelta(minutes=15), client_id="pgo.test")
        session.commit()
    body = fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-1-bundle.json")
    headers = submit_headers(BERGZOON) | {"Authorization": "Bearer read-only-52-0000000000000000"}
    assert receiving.test_client().post("/fhir/", data=body, headers=headers).status_code == 403


def test_limits(receiving: t.Any) -> None:
    client = receiving.test_client()
    limits = receiving.extensions["fhir_api"].limits
    body = fixture_text(RECEIVE / "medmij-selfmeasurements-serve-receive-scenario-2-3-bundle.json")
    limits.max_bundle_entries = 5
    assert client.post("/fhir/", data=body, headers=submit_headers(BERGZOON)).status_code == 413
    limits.max_bundle_entries, limits.max_body_bytes = 200, 1000
    assert client.post("/fhir/", data=body, headers=submit_headers(BERGZOON)).status_code == 413
    assert row_count(receiving)[1] == 0


def test_bad_bundles(receiving: t.Any) -> None:
    client = receiving.test_client()
    for body in ('{"resourceType": "Bundle", "type": "collection", "entry": []}',
                 '{"resourceType": "Bundle", "type": "batch", "entry": []}',
                 '{"resourceType": "Patient"}'):
        response = client.post("/fhir/", data=body, headers=submit_headers(BERGZOON))
        assert response.status_code == 400
        assert response.get_json()["resourceType"] == "OperationOutcome"
