"""HTTP behaviour of the resource server: formats, errors as OperationOutcome, tokens, metadata."""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest

from fhir_api import fhirxml
from oauth.tokens import ACCESS
from oauth.tokens import store_token
from oauth.tokens import utcnow
from tests.support import bearer

HELLEMAN = "medmij-bgz-patient-ts-01"


def outcome(response: t.Any) -> dict[str, t.Any]:
    if response.mimetype == "application/fhir+xml":
        return fhirxml.parse_xml(response.data)
    return response.get_json()


@pytest.mark.parametrize(
    ("accept", "format_param", "expected"),
    [
        (None, None, "application/fhir+json"),
        ("*/*", None, "application/fhir+json"),
        ("application/fhir+xml", None, "application/fhir+xml"),
        ("application/xml", None, "application/fhir+xml"),
        ("application/json", None, "application/fhir+json"),
        ("application/fhir+json; fhirVersion=3.0", None, "application/fhir+json"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, "application/fhir+xml"),
        ("application/fhir+json", "xml", "application/fhir+xml"),
        ("application/fhir+xml", "application/fhir+json", "application/fhir+json"),
    ],
)
def test_content_negotiation(cert_client: t.Any, accept: str | None, format_param: str | None, expected: str) -> None:
    headers = bearer(HELLEMAN) | ({"Accept": accept} if accept else {})
    url = "/fhir/Patient" + (f"?_format={format_param}" if format_param else "")
    response = cert_client.get(url, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == expected
    assert response.headers["Content-Type"].endswith("charset=utf-8")


def test_unsupported_accept_is_406_and_unknown_format_too(cert_client: t.Any) -> None:
    response = cert_client.get("/fhir/Patient", headers=bearer(HELLEMAN) | {"Accept": "text/html"})
    assert response.status_code == 406
    assert outcome(response)["issue"][0]["code"] == "not-supported"
    assert cert_client.get("/fhir/Patient?_format=turtle", headers=bearer(HELLEMAN)).status_code == 406


@pytest.mark.parametrize("fmt", ["application/fhir+json", "application/fhir+xml"])
def test_errors_are_operation_outcomes_in_the_negotiated_format(cert_client: t.Any, fmt: str) -> None:
    cases = {
        "/fhir/Patient?bogus=1": (400, "invalid"),
        "/fhir/Observation?date=yesterday": (400, "invalid"),
        "/fhir/Claim": (404, "not-supported"),
        "/fhir/NotAType": (404, "not-supported"),
        "/fhir/Patient/does-not-exist": (404, "not-found"),
        "/fhir/Patient/bad!id": (400, "invalid"),
        "/fhir/Patient/x/y/z": (400, "invalid"),
    }
    for url, (status, code) in cases.items():
        response = cert_client.get(url, headers=bearer(HELLEMAN) | {"Accept": fmt})
        assert response.status_code == status, url
        assert response.mimetype == fmt, url
        body = outcome(response)
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == code, url
        assert body["issue"][0]["diagnostics"]


def test_delete_is_not_allowed(cert_client: t.Any) -> None:
    response = cert_client.delete("/fhir/Patient/" + HELLEMAN, headers=bearer(HELLEMAN))
    assert response.status_code == 405
    assert outcome(response)["resourceType"] == "OperationOutcome"


def test_missing_and_bad_tokens(cert_client: t.Any) -> None:
    response = cert_client.get("/fhir/Patient")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="medmij-dvza"'
    assert outcome(response)["issue"][0]["code"] == "login"
    response = cert_client.get("/fhir/Patient", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    response = cert_client.get("/fhir/Patient", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    # a token in the query string is not accepted (core.rscint.200: header only)
    response = cert_client.get("/fhir/Patient?access_token=" + "93cde269-ce35-4077-a39d-19296670e949")
    assert response.status_code == 401


def test_expired_and_revoked_tokens(cert_app: t.Any) -> None:
    database = cert_app.extensions["dvza.db"]
    with database.sessionmaker() as session:
        store_token(session, "expired-token-value-000000000000", kind=ACCESS, patient_id=HELLEMAN,
                    gegevensdiensten=["48"], lifetime=timedelta(seconds=900), now=utcnow() - timedelta(seconds=901))
        revoked = store_token(session, "revoked-token-value-000000000000", kind=ACCESS, patient_id=HELLEMAN,
                              gegevensdiensten=["48"], lifetime=timedelta(seconds=900))
        revoked.revoked_at = utcnow()
        session.commit()
    client = cert_app.test_client()
    for value, reason in (("expired-token-value-000000000000", "expired"),
                          ("revoked-token-value-000000000000", "revoked")):
        response = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {value}"})
        assert response.status_code == 401
        assert reason in response.headers["WWW-Authenticate"]


def test_qualification_tokens_need_qualification_mode(cert_app: t.Any) -> None:
    resolver = cert_app.extensions["fhir_api"].access
    resolver.qualification_mode = False
    try:
        response = cert_app.test_client().get("/fhir/Patient", headers=bearer(HELLEMAN))
        assert response.status_code == 401
    finally:
        resolver.qualification_mode = True


def test_post_search_equals_get_search(cert_client: t.Any) -> None:
    get = cert_client.get("/fhir/Observation?code=http://snomed.info/sct|228366006", headers=bearer(HELLEMAN))
    post = cert_client.post("/fhir/Observation/_search", data={"code": "http://snomed.info/sct|228366006"},
                            headers=bearer(HELLEMAN))
    assert post.status_code == 200
    ids = [e["resource"]["id"] for e in get.get_json()["entry"]]
    assert [e["resource"]["id"] for e in post.get_json()["entry"]] == ids
    # _format in the body, like any other parameter of a POST _search (it overrides Accept)
    xml = cert_client.post("/fhir/Observation/_search", data={"code": "http://snomed.info/sct|228366006",
                                                              "_format": "xml"},
                           headers=bearer(HELLEMAN) | {"Accept": "application/fhir+json"})
    assert xml.status_code == 200 and xml.mimetype == "application/fhir+xml"
    assert xml.get_data(as_text=True).count("<entry>") == len(ids)
    refused = cert_client.post("/fhir/Observation/_search", data={"_format": "text/csv"}, headers=bearer(HELLEMAN))
    assert refused.status_code == 406 and refused.mimetype == "application/fhir+json"


def test_paging_with_count_and_offset(cert_client: t.Any) -> None:
    first = cert_client.get("/fhir/Condition?_count=4", headers=bearer(HELLEMAN)).get_json()
    assert first["total"] == 6 and len(first["entry"]) == 4
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = cert_client.get(next_url.replace("http://localhost", ""), headers=bearer(HELLEMAN)).get_json()
    assert len(second["entry"]) == 2
    assert not [link for link in second["link"] if link["relation"] == "next"]
    ids = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert len(set(ids)) == 6
    summary = cert_client.get("/fhir/Condition?_summary=count", headers=bearer(HELLEMAN)).get_json()
    assert summary["total"] == 6 and "entry" not in summary


def test_sort(cert_client: t.Any) -> None:
    def effective(entry: dict[str, t.Any]) -> str:
        resource = entry["resource"]
        return resource.get("effectiveDateTime") or resource.get("effectivePeriod", {}).get("start", "")

    ascending = cert_client.get("/fhir/Observation?_sort=date", headers=bearer(HELLEMAN)).get_json()
    descending = cert_client.get("/fhir/Observation?_sort=-date", headers=bearer(HELLEMAN)).get_json()
    dated = [e for e in ascending["entry"] if effective(e)]
    assert len(dated) >= 5
    from fhir_api.search.values import date_range

    starts = [date_range(effective(e))[0] for e in dated]
    assert starts == sorted(starts)
    starts_desc = [date_range(effective(e))[0] for e in descending["entry"] if effective(e)]
    assert starts_desc == sorted(starts_desc, reverse=True)
    assert starts_desc[0] > starts_desc[-1]


@pytest.mark.parametrize("fmt", ["application/fhir+json", "application/fhir+xml"])
def test_capability_statement(cert_client: t.Any, fmt: str) -> None:
    response = cert_client.get("/fhir/metadata", headers={"Accept": fmt})
    assert response.status_code == 200
    statement = outcome(response)
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "3.0.2"
    assert set(statement["format"]) == {"application/fhir+json", "application/fhir+xml"}
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Observation", "DocumentReference", "Binary", "Practitioner"} <= set(resources)
    assert "Claim" not in resources
    params = {p["name"] for p in resources["Observation"]["searchParam"]}
    assert {"code", "category", "date", "status", "_id"} <= params
    assert "Coverage:payor" in resources["Coverage"]["searchInclude"]
    assert statement["rest"][0]["operation"][0]["name"] == "lastn"


def test_capability_statement_is_valid_stu3(cert_client: t.Any) -> None:
    from fhir.resources.STU3.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(cert_client.get("/fhir/metadata").get_json())


def test_every_access_is_audited(cert_app: t.Any) -> None:
    from sqlalchemy import select

    from dvza.models import AuditRecord

    client = cert_app.test_client()
    client.get("/fhir/Condition?_count=2", headers=bearer(HELLEMAN) | {"MedMij-Request-ID": "req-1",
                                                                       "X-Correlation-ID": "corr-1"})
    client.get("/fhir/Condition/unknown-id", headers=bearer(HELLEMAN) | {"MedMij-Request-ID": "req-2"})
    client.get("/fhir/Condition", headers={"MedMij-Request-ID": "req-3"})
    with cert_app.extensions["dvza.db"].sessionmaker() as session:
        records = {r.request_id: r for r in session.scalars(
            select(AuditRecord).where(AuditRecord.request_id.in_(["req-1", "req-2", "req-3"])))}
    search = records["req-1"]
    assert (search.event_type, search.outcome, search.patient_id) == ("fhir.type-search", "200", HELLEMAN)
    assert search.correlation_id == "corr-1" and search.query == "_count=2"
    assert len(search.resource_ids.split()) == 2 and search.token_ref
    assert (records["req-2"].event_type, records["req-2"].outcome) == ("fhir.instance-read", "404")
    assert records["req-3"].outcome == "401" and records["req-3"].patient_id is None
