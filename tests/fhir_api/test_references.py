"""Literal references rewritten on the way in (fhir_api.references): Bundle placeholders and this server's own base."""

from __future__ import annotations

from fhir_api.references import rewrite_references

BASE = "https://dvza.example/fhir"


def _document() -> dict:
    return {
        "resourceType": "DocumentReference",
        "subject": {"reference": "urn:uuid:patient-entry"},
        "author": [{"reference": f"{BASE}/Practitioner/p1"}, {"reference": "https://other.example/fhir/Practitioner/p2"},
                   {"reference": "#contained"}, {"reference": "urn:uuid:nowhere"}, {"reference": 12}],
        "custodian": {"reference": "urn:oid:2.16.840.1.113883.2.4.3.11.999.1"},
        "content": [{"attachment": {"url": "urn:uuid:binary-entry"}}],
    }


def test_placeholders_become_entry_ids_and_own_urls_become_relative() -> None:
    document = _document()
    unresolved = rewrite_references(document, local_bases=[BASE], placeholders={
        "urn:uuid:patient-entry": "Patient/123", "urn:uuid:binary-entry": "Binary/b1"})
    assert document["subject"] == {"reference": "Patient/123"}
    assert document["content"][0]["attachment"]["url"] == "Binary/b1"
    assert [a["reference"] for a in document["author"]] == [
        "Practitioner/p1", "https://other.example/fhir/Practitioner/p2", "#contained", "urn:uuid:nowhere", 12]
    assert unresolved == [("DocumentReference.author[3]", "urn:uuid:nowhere"),
                          ("DocumentReference.custodian", "urn:oid:2.16.840.1.113883.2.4.3.11.999.1")]


def test_without_bases_or_placeholders_nothing_changes() -> None:
    document = _document()
    rewrite_references(document)
    assert document == _document()
