"""Documents sent by the patient (gegevensdienst 57; PDF/A 3.x provide-document transaction, §3.2)."""

from __future__ import annotations

import base64
import json
import typing as t

import pytest

from fhir_api import fhirxml
from tests.fhir_api.searchset_rules import counts
from tests.support import CERT_SETS
from tests.support import bearer
from tests.support import fixture_text
from tests.support import load_cert_data
from tests.support import submit_headers

ELLENS = "example-pdfa-kwalificatie3"
RESOURCES = CERT_SETS["pdfa"] / "_reference" / "resources"


@pytest.fixture()
def docapp(app: t.Any) -> t.Any:
    load_cert_data(app, "pdfa")
    return app


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(("number", "expected"), [
    (1, {"DocumentReference": 1, "Binary": 1, "Patient": 1}),
    (2, {"DocumentManifest": 1, "DocumentReference": 2, "Binary": 2, "Patient": 1}),
])
def test_provide_document_transactions(docapp: t.Any, number: int, expected: dict[str, int], fmt: str) -> None:
    client = docapp.test_client()
    body = fixture_text(RESOURCES / f"medmij-pdfa-Bundle-kwalificatie{number}.{fmt}")
    response = client.post("/fhir/", data=body, headers=submit_headers(ELLENS, fmt))
    assert response.status_code in (200, 201), response.get_data(as_text=True)[:1000]
    bundle = fhirxml.parse_xml(response.data) if fmt == "xml" else response.get_json()
    assert bundle["type"] == "transaction-response"
    found = counts(bundle)
    assert {k: found.get(k, 0) for k in expected} == expected
    by_type: dict[str, list[dict[str, t.Any]]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    binaries = {f"Binary/{b['id']}" for b in by_type["Binary"]}
    references = {f"DocumentReference/{d['id']}" for d in by_type["DocumentReference"]}
    for document in by_type["DocumentReference"]:
        assert document["content"][0]["attachment"]["url"] in binaries
        assert document["subject"]["reference"] == f"Patient/{ELLENS}"
    for manifest in by_type.get("DocumentManifest", []):
        assert {c["pReference"]["reference"] for c in manifest["content"]} == references
    [item] = docapp.extensions["dvza.queue"].list()
    assert item.kind == "documents" and item.gegevensdienst == "57"
    queue = docapp.extensions["dvza.queue"]
    queue.claim("epd")
    queue.accept(item.id, "epd")
    some_binary = next(iter(binaries))
    raw = client.get(f"/fhir/{some_binary}", headers=bearer(ELLENS))
    assert raw.status_code == 200 and raw.mimetype == "application/pdf" and raw.data.startswith(b"%PDF")


def _bundle() -> dict[str, t.Any]:
    return json.loads(fixture_text(RESOURCES / "medmij-pdfa-Bundle-kwalificatie1.json"))


def _binary(bundle: dict[str, t.Any]) -> dict[str, t.Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Binary")


def _inline(bundle: dict[str, t.Any], content_type: str, data: bytes | None) -> None:
    """The document as ``attachment.data`` of the DocumentReference, no Binary."""
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Binary"]
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "DocumentReference":
            attachment = entry["resource"]["content"][0]["attachment"]
            attachment.pop("url", None)
            attachment.update(contentType=content_type, data=base64.b64encode(data).decode() if data else "***")


@pytest.mark.parametrize(("mutate", "status", "message"), [
    (lambda b: _binary(b).update(contentType="image/png"), 422, "only PDF"),
    (lambda b: _binary(b).update(content=base64.b64encode(b"not a pdf").decode()), 422, "only PDF"),
    (lambda b: _binary(b).update(content="***"), 400, "base64"),
    (lambda b: b["entry"].remove(next(e for e in b["entry"] if e["resource"]["resourceType"] == "Binary")), 400,
     "not an entry"),
    # the document inline in the DocumentReference instead of a Binary: the same rules
    (lambda b: _inline(b, "text/html", b"<script>alert(1)</script>"), 422, "only PDF"),
    (lambda b: _inline(b, "application/pdf", b"not a pdf"), 422, "only PDF"),
    (lambda b: _inline(b, "application/pdf", None), 400, "base64"),
])
def test_refused_documents_change_nothing(docapp: t.Any, mutate: t.Any, status: int, message: str) -> None:
    bundle = _bundle()
    mutate(bundle)
    response = docapp.test_client().post("/fhir/", data=json.dumps(bundle), headers=submit_headers(ELLENS))
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert message in response.get_data(as_text=True)
    assert docapp.extensions["dvza.queue"].list() == []


def test_an_inline_pdf_is_accepted_like_a_binary(docapp: t.Any) -> None:
    bundle = _bundle()
    pdf = base64.b64decode(_binary(bundle)["content"])
    _inline(bundle, "application/pdf", pdf)
    response = docapp.test_client().post("/fhir/", data=json.dumps(bundle), headers=submit_headers(ELLENS))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


def test_attachment_size_limit(docapp: t.Any) -> None:
    docapp.extensions["fhir_api"].limits.max_attachment_bytes = 10_000
    response = docapp.test_client().post("/fhir/", data=json.dumps(_bundle()), headers=submit_headers(ELLENS))
    assert response.status_code == 413
    assert docapp.extensions["dvza.queue"].list() == []
