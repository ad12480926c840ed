"""PDF/A documents (fhir-content.md §3.1): DocumentReference/DocumentManifest searches, Binary reads
as a FHIR resource and as the raw PDF, and the error cases, in JSON and XML."""

from __future__ import annotations

import base64
import typing as t
from datetime import date
from datetime import timedelta
from urllib.parse import quote

import pytest

from fhir_api import fhirxml
from tests.fhir_api.searchset_rules import counts
from tests.fhir_api.searchset_rules import violations
from tests.support import bearer

BALTUS = "example-pdfa-kwalificatie1"
SCHULTE = "example-pdfa-kwalificatie2"
ELLENS = "example-pdfa-kwalificatie3"
ACCEPT = {"json": "application/fhir+json", "xml": "application/fhir+xml"}


def get(client: t.Any, url: str, patient: str, fmt: str = "json") -> t.Any:
    return client.get(url, headers={**bearer(patient), "Accept": ACCEPT[fmt]})


def body(response: t.Any, fmt: str) -> dict[str, t.Any]:
    return fhirxml.parse_xml(response.data) if fmt == "xml" else response.get_json()


def days_ago(n: int) -> str:
    return (date.today() - timedelta(days=n)).isoformat()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_1_1_current_documents_of_baltus(cert_client: t.Any, fmt: str) -> None:
    response = get(cert_client, "/fhir/DocumentReference?status=current", BALTUS, fmt)
    assert response.status_code == 200
    bundle = body(response, fmt)
    assert counts(bundle) == {"DocumentReference": 2}
    assert violations(bundle, "status=current") == []
    types = {e["resource"]["type"]["coding"][0]["code"] for e in bundle["entry"]}
    assert types == {"68688-1", "34781-5"}


def test_a_document_reference_without_its_document_is_not_served(cert_app: t.Any) -> None:
    """pdfa-documentreference3 points at Binary/foutieve-en-onbekend-id: refused on load."""
    refused = dict(cert_app.config["LOAD_REPORT"].refused)
    assert "DocumentReference/pdfa-documentreference3" in refused
    response = get(cert_app.test_client(), "/fhir/DocumentReference/pdfa-documentreference3", BALTUS)
    assert response.status_code == 404


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_1_2_indexed_range_without_documents(cert_client: t.Any, fmt: str) -> None:
    url = f"/fhir/DocumentReference?indexed=ge{days_ago(730)}&indexed=le{days_ago(365)}&status=current"
    bundle = body(get(cert_client, url, BALTUS, fmt), fmt)
    assert counts(bundle) == {}
    assert bundle["total"] == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_1_3_invalid_syntax_is_400_with_operation_outcome(cert_client: t.Any, fmt: str) -> None:
    response = get(cert_client, "/fhir/DocumentReference/$", BALTUS, fmt)
    assert response.status_code == 400
    outcome = body(response, fmt)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] in ("error", "fatal")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_1_4_documents_read_as_binary_resources(cert_client: t.Any, fmt: str) -> None:
    bundle = get(cert_client, "/fhir/DocumentReference?status=current", BALTUS, "json").get_json()
    base = bundle["link"][0]["url"].split("DocumentReference")[0]
    for entry in bundle["entry"][:2]:
        url = entry["resource"]["content"][0]["attachment"]["url"]
        absolute = base + url if url.startswith("Binary/") else url
        response = get(cert_client, absolute.replace("http://localhost", ""), BALTUS, fmt)
        assert response.status_code == 200
        binary = body(response, fmt)
        assert binary["resourceType"] == "Binary"
        assert binary["contentType"] == "application/pdf"
        assert base64.b64decode(binary["content"]).startswith(b"%PDF")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_1_5_unknown_binary_is_404(cert_client: t.Any, fmt: str) -> None:
    response = get(cert_client, "/fhir/Binary/example-pdfa-binary3", BALTUS, fmt)
    assert response.status_code in (404, 410)
    assert body(response, fmt)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_2_1_current_documents_of_schulte(cert_client: t.Any, fmt: str) -> None:
    bundle = body(get(cert_client, "/fhir/DocumentReference?status=current", SCHULTE, fmt), fmt)
    assert counts(bundle).get("DocumentReference") in (1, 2)
    assert all(e["resource"]["status"] == "current" for e in bundle["entry"])
    assert any(e["resource"]["type"]["coding"][0]["code"] == "68626-1" for e in bundle["entry"])


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_2_2_and_2_3_document_manifests(cert_client: t.Any, fmt: str) -> None:
    bundle = body(get(cert_client, "/fhir/DocumentManifest?status=current", SCHULTE, fmt), fmt)
    assert counts(bundle).get("DocumentManifest") in (2, 3)
    assert all(e["resource"]["status"] == "current" for e in bundle["entry"])
    assert {e["resource"]["type"]["coding"][0]["code"] for e in bundle["entry"]} >= {"18842-5", "73575-3"}
    url = f"/fhir/DocumentManifest?status=current&created=ge{days_ago(365)}&created=le{days_ago(60)}"
    ranged = body(get(cert_client, url, SCHULTE, fmt), fmt)
    assert counts(ranged).get("DocumentManifest") in (1, 2)
    assert violations(ranged, url.partition("?")[2]) == []


def test_2_4_document_reference_read_through_the_manifest(cert_client: t.Any) -> None:
    bundle = get(cert_client, "/fhir/DocumentManifest?status=current", SCHULTE).get_json()
    reference = bundle["entry"][0]["resource"]["content"][0]["pReference"]["reference"]
    response = get(cert_client, f"/fhir/{reference}", SCHULTE)
    assert response.status_code == 200
    assert response.get_json()["resourceType"] == "DocumentReference"


def test_2_5_plain_get_returns_the_pdf_and_needs_authorization(cert_client: t.Any) -> None:
    bundle = get(cert_client, "/fhir/DocumentReference?status=current", SCHULTE).get_json()
    url = bundle["entry"][0]["resource"]["content"][0]["attachment"]["url"]
    assert url.startswith("Binary/"), "an external document must have been imported on load"
    response = cert_client.get(f"/fhir/{url}", headers=bearer(SCHULTE))  # no Accept header
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert cert_client.get(f"/fhir/{url}").status_code == 401


def test_raw_binary_by_accept_header_and_fhir_by_format_parameter(cert_client: t.Any) -> None:
    headers = {**bearer(BALTUS), "Accept": "application/pdf"}
    assert cert_client.get("/fhir/Binary/pdfa-binary1", headers=headers).mimetype == "application/pdf"
    response = cert_client.get("/fhir/Binary/pdfa-binary1?_format=json", headers=headers)
    assert response.get_json()["resourceType"] == "Binary"


def test_documents_of_another_patient_are_invisible(cert_client: t.Any) -> None:
    assert get(cert_client, "/fhir/Binary/pdfa-binary1", SCHULTE).status_code == 404
    assert get(cert_client, "/fhir/DocumentReference/pdfa-documentreference1", SCHULTE).status_code == 404
    bundle = get(cert_client, "/fhir/DocumentReference?status=current", ELLENS).get_json()
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {f"Patient/{ELLENS}"}


def test_indexed_prefixes(cert_client: t.Any) -> None:
    """DR1 indexed T-355d, DR2 T-60d (Baltus)."""
    def ids(query: str) -> set[str]:
        url = "/fhir/DocumentReference?" + "&".join(f"indexed={quote(v)}" for v in query.split("&"))
        return {e["resource"]["id"] for e in get(cert_client, url, BALTUS).get_json().get("entry", [])}

    assert ids(f"ge{days_ago(100)}") == {"pdfa-documentreference2"}
    assert ids(f"lt{days_ago(100)}") == {"pdfa-documentreference1"}
    assert ids(f"{days_ago(60)}") == {"pdfa-documentreference2"}
    assert ids(f"eq{days_ago(61)}") == set()
    assert ids(f"ne{days_ago(60)}") == {"pdfa-documentreference1"}
    assert ids(f"sa{days_ago(356)}") == {"pdfa-documentreference1", "pdfa-documentreference2"}
    assert ids(f"sa{days_ago(355)}&eb{days_ago(59)}") == {"pdfa-documentreference2"}
    assert ids(f"eb{days_ago(355)}") == set()
