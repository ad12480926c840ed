"""The test-data loader: date templates, discovery via load scripts, skips, refusals, documents."""

from __future__ import annotations

import base64
import json
import typing as t
from datetime import date

import pytest
from sqlalchemy import select

from dvza.devtools import testdata
from fhir_api.models import ResourceRow
from tests.support import CERT_SETS
from tests.support import SHARED
from tests.support import needs_shared


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${DATE, T, D, -8}", "2024-02-21"),
        ("${DATE, T, D, +7}T00:00:00+02:00", "2024-03-07T00:00:00+02:00"),
        ("${DATE, T, D,-365}", "2023-02-29".replace("02-29", "03-01")),
        ("${DATE, T, D, -0}", "2024-02-29"),
        ("${DATE, T, M, -1}", "2024-01-29"),
        ("${DATE, T, Y, +1}", "2025-02-28"),
        ("${DATE,T,D,+1}", "2024-03-01"),
    ],
)
def test_date_templates(template: str, expected: str) -> None:
    assert testdata.materialise(template, date(2024, 2, 29)) == expected


def test_month_arithmetic_clamps_to_month_end() -> None:
    assert testdata.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert testdata.add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert testdata.add_months(date(2024, 12, 15), 1) == date(2025, 1, 15)


def test_discovery_follows_the_load_script() -> None:
    needs_shared()
    files = testdata.discover([CERT_SETS["bgz"]])
    assert len(files) == 63
    assert all("_reference/resources" in str(f) for f in files)
    questionnaire_files = testdata.discover([CERT_SETS["questionnaires"]])
    assert not any("Task" in f.name for f in questionnaire_files)


def _patient(pid: str) -> dict[str, t.Any]:
    return {"resourceType": "Patient", "id": pid, "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/nl-core-patient"]},
            "birthDate": "${DATE, T, Y, -40}"}


def test_folder_of_resources_with_skips_and_refusals(app: t.Any, tmp_path: t.Any) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_patient("td-1")))
    (tmp_path / "b.json").write_text(json.dumps({**_patient("${patient-id}")}))
    (tmp_path / "c.json").write_text(json.dumps({"resourceType": "Bundle", "type": "transaction"}))
    (tmp_path / "d.json").write_text(json.dumps({"resourceType": "Observation", "id": "td-o", "status": "final"}))
    (tmp_path / "e.xml").write_text("<not-fhir/>")
    with app.extensions["dvza.db"].sessionmaker() as session:
        report = testdata.load(session, [tmp_path], today=date(2024, 2, 29))
        stored = session.scalar(select(ResourceRow.json_text).where(ResourceRow.logical_id == "td-1"))
    assert report.loaded == ["Patient/td-1"]
    assert {reason for _, reason in report.skipped} == {"template with runtime variables",
                                                         "transaction Bundle (a request, not data)"}
    refused = dict(report.refused)
    assert "Observation/td-o" in refused and any("e.xml" in k for k in refused)
    assert json.loads(stored)["birthDate"] == "1984-02-29"


def _document_reference(url: str) -> dict[str, t.Any]:
    return {
        "resourceType": "DocumentReference", "id": "td-dr", "meta": {"profile": ["http://example.org/dr"]},
        "status": "current", "indexed": "2024-01-01T00:00:00Z",
        "type": {"coding": [{"system": "http://loinc.org", "code": "34781-5", "display": "Consult note"}]},
        "subject": {"reference": "Patient/td-1", "display": "td"},
        "content": [{"attachment": {"contentType": "application/pdf", "url": url, "title": "Brief"}}],
    }


@pytest.mark.parametrize("mode", ["fetch", "placeholder"])
def test_external_documents_are_imported(app: t.Any, tmp_path: t.Any, mode: str) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_patient("td-1")))
    (tmp_path / "b.json").write_text(json.dumps(_document_reference("https://elsewhere.test/doc.pdf")))
    fetched: list[str] = []

    def fetch(url: str) -> tuple[bytes, str]:
        fetched.append(url)
        return b"%PDF-1.4 fetched", "application/pdf"

    with app.extensions["dvza.db"].sessionmaker() as session:
        report = testdata.load(session, [tmp_path], today=date.today(), external_documents=mode, fetch=fetch)
        rows = dict(session.execute(select(ResourceRow.logical_id, ResourceRow.json_text)).all())
    assert "DocumentReference/td-dr" in report.loaded
    url = json.loads(rows["td-dr"])["content"][0]["attachment"]["url"]
    binary = json.loads(rows[url.split("/")[1]])
    content = base64.b64decode(binary["content"])
    if mode == "fetch":
        assert fetched == ["https://elsewhere.test/doc.pdf"] and content == b"%PDF-1.4 fetched"
    else:
        assert fetched == [] and content.startswith(b"%PDF-1.4") and b"elsewhere.test" in content


def test_failed_fetch_falls_back_to_a_placeholder(app: t.Any, tmp_path: t.Any) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_patient("td-1")))
    (tmp_path / "b.json").write_text(json.dumps(_document_reference("https://elsewhere.test/doc.pdf")))

    def fetch(url: str) -> tuple[bytes, str]:
        raise OSError("network unreachable")

    with app.extensions["dvza.db"].sessionmaker() as session:
        report = testdata.load(session, [tmp_path], today=date.today(), fetch=fetch)
    assert report.imported_documents == [("https://elsewhere.test/doc.pdf", "placeholder")]


def test_local_mode_uses_the_sets_own_document_and_never_the_network(app: t.Any) -> None:
    """Issue 17: `make run` (and `make conformance`) work offline: the Nictiz PDF/A set points two
    DocumentReferences at a PDF on nictiz.nl; they get the set's own PDF/A instead."""
    needs_shared()

    def no_network(url: str) -> tuple[bytes, str]:
        raise AssertionError(f"tried to download {url}")

    with app.extensions["dvza.db"].sessionmaker() as session:
        report = testdata.load(session, [CERT_SETS["pdfa"]], today=date.today(), external_documents="local",
                               fetch=no_network)
        rows = dict(session.execute(select(ResourceRow.logical_id, ResourceRow.json_text)).all())
    # the one resource the server refuses on purpose: the set's DocumentReference to a Binary that does not exist
    assert [label for label, _ in report.refused] == ["DocumentReference/pdfa-documentreference3"]
    assert [how for _, how in report.imported_documents] == ["copied from Binary/pdfa-binary1 of the same set"]
    reference = json.loads(rows["pdfa-documentreference4"])
    url = reference["content"][0]["attachment"]["url"]
    assert url.startswith("Binary/doc-")
    copied = base64.b64decode(json.loads(rows[url.split("/")[1]])["content"])
    original = base64.b64decode(json.loads(rows["pdfa-binary1"])["content"])
    assert copied == original and b"pdfaid" in copied  # a real PDF/A, not the placeholder


def test_demo_prepare_works_offline_and_warns_about_nothing(tmp_path: t.Any) -> None:
    """`make run` prepares its data with `dvza demo prepare`: no download (every proxy unreachable) and
    no WARNING line."""
    import os
    import subprocess
    import sys

    needs_shared()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVZA_")} | {
        "DVZA_INSTANCE_PATH": str(tmp_path), "DVZA_QUALIFICATION_MODE": "true", "DVZA_LOG_FORMAT": "console",
        "DVZA_SHARED_DIR": str(SHARED),
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    done = subprocess.run([sys.executable, "-m", "dvza.cli", "demo", "prepare"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "could not fetch" not in done.stderr, done.stderr
    assert "copied from Binary/pdfa-binary1 of the same set" in done.stdout


def test_local_mode_without_a_document_in_the_set_stores_a_placeholder(app: t.Any, tmp_path: t.Any) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_patient("td-1")))
    (tmp_path / "b.json").write_text(json.dumps(_document_reference("https://elsewhere.test/doc.pdf")))
    with app.extensions["dvza.db"].sessionmaker() as session:
        report = testdata.load(session, [tmp_path], today=date.today(), external_documents="local")
    assert report.imported_documents == [("https://elsewhere.test/doc.pdf", "placeholder")]


def test_placeholder_pdf_is_well_formed() -> None:
    pdf = testdata.placeholder_pdf("Brief (test)", "https://x.test/a.pdf")
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    xref_at = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[xref_at:].startswith(b"xref")
    assert b"Brief \\(test\\)" in pdf


def test_loading_twice_changes_nothing_and_a_change_updates(app: t.Any, tmp_path: t.Any) -> None:
    """The loader is a client of the source write path: idempotent upserts (the same data again is no new
    version, never a duplicate), a changed fixture is the next version."""
    (tmp_path / "a.json").write_text(json.dumps(_patient("td-1")))
    with app.extensions["dvza.db"].sessionmaker() as session:
        testdata.load(session, [tmp_path], today=date.today())
        testdata.load(session, [tmp_path], today=date.today())
        versions = list(session.scalars(select(ResourceRow.version_id).where(ResourceRow.logical_id == "td-1")))
        assert versions == [1]
        (tmp_path / "a.json").write_text(json.dumps({**_patient("td-1"), "gender": "female"}))
        testdata.load(session, [tmp_path], today=date.today())
        versions = list(session.scalars(select(ResourceRow.version_id).where(ResourceRow.logical_id == "td-1")))
    assert versions == [2]


def test_environmental_specimen_is_shared_data_reached_through_the_observation(app: t.Any, tmp_path: t.Any) -> None:
    """A Specimen whose subject is a Device (an environmental sample) belongs to no patient: it loads
    as shared data, ``_include=Observation:specimen`` returns it with the patient's Observation, and
    another patient cannot read it (fhir_api.compartment: Specimen is optionally owned)."""
    from oauth.tokens import import_qualification_token

    def ref(target: str) -> dict[str, str]:
        return {"reference": target, "display": target}

    profile = {"profile": ["http://example.org/test"]}
    resources = [
        {**_patient("sp-1"), "birthDate": "1980-01-01"}, {**_patient("sp-2"), "birthDate": "1981-01-01"},
        {"resourceType": "Device", "id": "sp-dev", "meta": profile, "status": "active"},
        {"resourceType": "Specimen", "id": "sp-env", "meta": profile, "subject": ref("Device/sp-dev"),
         "type": {"text": "Omgevingsmonster"}},
        {"resourceType": "Specimen", "id": "sp-own", "meta": profile, "subject": ref("Patient/sp-1"),
         "type": {"text": "Bloed"}},
        {"resourceType": "Observation", "id": "sp-obs", "meta": profile, "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
         "subject": ref("Patient/sp-1"), "specimen": ref("Specimen/sp-env")},
    ]
    for resource in resources:
        (tmp_path / f"{resource['id']}.json").write_text(json.dumps(resource))
    with app.extensions["dvza.db"].sessionmaker() as session:
        report = testdata.load(session, [tmp_path], today=date(2024, 2, 29))
        for pid in ("sp-1", "sp-2"):
            import_qualification_token(session, f"token-{pid}", patient_id=pid, gegevensdiensten=["48"])
        session.commit()
    assert report.refused == [] and "Specimen/sp-env" in report.loaded
    client = app.test_client()

    def get(path: str, pid: str) -> t.Any:
        return client.get(f"/fhir/{path}", headers={"Authorization": f"Bearer token-{pid}",
                                                    "Accept": "application/fhir+json"})

    bundle = get("Observation?_include=Observation:specimen", "sp-1").get_json()
    assert {(e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]} == {
        ("Observation", "sp-obs", "match"), ("Specimen", "sp-env", "include")}
    assert get("Specimen/sp-env", "sp-1").status_code == 200
    assert get("Specimen/sp-own", "sp-1").status_code == 200
    assert get("Specimen/sp-env", "sp-2").status_code == 404  # not reachable through sp-2's data
    assert get("Specimen/sp-own", "sp-2").status_code == 404
    assert {e["resource"]["id"] for e in get("Specimen", "sp-1").get_json().get("entry", [])} == {"sp-env", "sp-own"}
    assert get("Specimen", "sp-2").get_json().get("entry", []) == []
