"""Writing through the source API: idempotent PUT (JSON and XML), the loader's validation and content rules,
conflicts between two sources and between concurrent writers, compartments that never change, deletes,
transactions (all or nothing, every problem named), the full replace for one gegevensdienst, and documents
streamed in as PDF."""

from __future__ import annotations

import base64
import io
import threading
import typing as t

import pytest

from dvza.source.models import ResourceOwner
from dvza.source.writer import SourceWriter
from fhir_api import fhirxml
from fhir_api.models import ResourceRow
from tests.source.conftest import Source
from tests.source.conftest import condition
from tests.source.conftest import patient
from tests.source.conftest import rows
from tests.source.conftest import weight

PDFA = (b"%PDF-1.7\n<x:xmpmeta><rdf:Description pdfaid:part=\"2\" pdfaid:conformance=\"B\"/></x:xmpmeta>\n"
        + bytes(range(256)) * 64 + b"\n%%EOF\n")


def outcome_text(response: t.Any) -> str:
    return " | ".join(i["diagnostics"] for i in response.get_json()["issue"])


@pytest.fixture()
def pt1(epd: Source) -> str:
    assert epd.put(patient("pt-1")).status_code == 201
    return "pt-1"


def test_put_is_an_idempotent_upsert_in_json_and_xml(source_app: t.Any, epd: Source, pt1: str) -> None:
    created = epd.put(weight("w-1", pt1))
    assert created.status_code == 201 and created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"].endswith("/source/fhir/Observation/w-1/_history/1")
    first = created.get_json()
    assert first["subject"]["display"] == "Anna Jansen"  # filled from the Patient (content rule #12)
    again = epd.put(weight("w-1", pt1))
    assert again.status_code == 200 and again.headers["ETag"] == 'W/"1"'
    assert again.get_json()["meta"]["lastUpdated"] == first["meta"]["lastUpdated"]
    xml = fhirxml.render_xml(weight("w-1", pt1))
    same_in_xml = epd.call("PUT", "/Observation/w-1", xml, content_type="application/fhir+xml",
                           Accept="application/fhir+xml")
    assert same_in_xml.status_code == 200 and same_in_xml.mimetype == "application/fhir+xml"
    assert fhirxml.parse_xml(same_in_xml.data)["meta"]["versionId"] == "1"
    changed = epd.put(weight("w-1", pt1, 80))
    assert changed.status_code == 200 and changed.headers["ETag"] == 'W/"2"'
    assert [r.version_id for r in rows(source_app, ResourceRow.logical_id == "w-1")] == [2]


def test_validation_and_content_rules_name_every_problem_and_store_nothing(source_app: t.Any, epd: Source,
                                                                           pt1: str) -> None:
    bad = weight("w-bad", pt1, meta={}, effectiveDateTime="2024-05-01T10:00:00")
    bad["code"]["coding"][0].pop("system")
    response = epd.put(bad)
    assert response.status_code == 400
    text = outcome_text(response)
    assert "effectiveDateTime" in text
    structure_ok = weight("w-bad", pt1, meta={})
    structure_ok["code"]["coding"][0].pop("system")
    response = epd.put(structure_ok)
    assert response.status_code == 400
    assert "meta.profile" in outcome_text(response) and "system and code" in outcome_text(response)
    assert epd.put(weight("w-x", "nobody")).status_code == 422
    assert epd.call("PUT", "/Observation/w-2", weight("w-3", pt1)).status_code == 400  # id differs from the URL
    assert epd.call("PUT", "/Observation/w-2", "{not json").status_code == 400
    assert epd.call("PUT", "/Observation/w-2", "x", content_type="text/plain").status_code == 415
    assert rows(source_app, ResourceRow.resource_type == "Observation") == []


def test_a_resource_never_moves_to_another_patient(source_app: t.Any, epd: Source, pt1: str) -> None:
    assert epd.put(patient("pt-2", family="Pietersen")).status_code == 201
    assert epd.put(weight("w-1", pt1)).status_code == 201
    moved = epd.put(weight("w-1", "pt-2"))
    assert moved.status_code == 409 and "never moves" in outcome_text(moved)
    [row] = rows(source_app, ResourceRow.logical_id == "w-1")
    assert row.patient_id == pt1 and row.version_id == 1


def test_conflicting_updates_from_two_sources(source_app: t.Any, epd: Source, lab: Source, pt1: str) -> None:
    """The rule: the source that wrote a resource first keeps it. Another source's different version or delete
    is refused (409, naming the keeper); sending the same content is fine and changes nothing."""
    assert epd.put(weight("w-1", pt1, 70)).status_code == 201
    refused = lab.put(weight("w-1", pt1, 99))
    assert refused.status_code == 409 and "kept by source 'epd'" in outcome_text(refused)
    assert lab.put(weight("w-1", pt1, 70)).status_code == 200
    assert lab.call("DELETE", "/Observation/w-1").status_code == 409
    assert lab.call("POST", "/Patient/$merge", {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": "Patient/pt-1"}},
        {"name": "target-patient", "valueReference": {"reference": "Patient/pt-1"}}]}).status_code == 400
    assert lab.put(weight("w-lab", pt1, 71)).status_code == 201  # its own data
    assert epd.put(weight("w-lab", pt1, 72)).status_code == 409
    [row] = rows(source_app, ResourceRow.logical_id == "w-1")
    assert row.version_id == 1 and '"value":70' in row.json_text
    with source_app.extensions["dvza.db"].sessionmaker() as session:
        owners = {o.logical_id: o.source for o in session.query(ResourceOwner)}
    assert owners == {"pt-1": "epd", "w-1": "epd", "w-lab": "lab"}


def test_if_match_gives_optimistic_locking_within_a_source(source_app: t.Any, epd: Source, pt1: str) -> None:
    assert epd.put(weight("w-1", pt1, 70)).status_code == 201
    assert epd.put(weight("w-1", pt1, 71), **{"If-Match": 'W/"1"'}).status_code == 200
    stale = epd.put(weight("w-1", pt1, 72), **{"If-Match": 'W/"1"'})
    assert stale.status_code == 412 and "version 2" in outcome_text(stale)
    assert epd.put(weight("w-new", pt1), **{"If-Match": "*"}).status_code == 412  # does not exist
    assert epd.call("DELETE", "/Observation/w-1", **{"If-Match": 'W/"1"'}).status_code == 412
    assert rows(source_app, ResourceRow.logical_id == "w-1")[0].version_id == 2


def test_two_concurrent_writers_of_one_version_never_lose_an_update(source_app: t.Any, epd: Source,
                                                                    pt1: str) -> None:
    """Both read version 1 and send their change with If-Match: W/"1" at the same moment: the first one's
    version 2 stands, the other gets 412 (the row's version counter, SQLAlchemy version_id_col)."""
    assert epd.put(weight("w-1", pt1, 70)).status_code == 201
    results = _race(source_app, ("epd", weight("w-1", pt1, 80), 'W/"1"'), ("epd", weight("w-1", pt1, 90), 'W/"1"'))
    assert results == (200, 412)
    [row] = rows(source_app, ResourceRow.logical_id == "w-1")
    assert row.version_id == 2 and '"value":80' in row.json_text


def test_two_sources_creating_one_resource_at_once_give_one_resource_and_a_conflict(
        source_app: t.Any, pt1: str) -> None:
    """epd and lab both create Observation/w-1 at the same moment: the first keeps it, the other gets 409."""
    results = _race(source_app, ("epd", weight("w-1", pt1, 80), None), ("lab", weight("w-1", pt1, 90), None))
    assert results == (201, 409)
    [row] = rows(source_app, ResourceRow.logical_id == "w-1")
    assert row.version_id == 1 and '"value":80' in row.json_text


def test_deletes(source_app: t.Any, epd: Source, pt1: str) -> None:
    assert epd.put(weight("w-1", pt1)).status_code == 201
    assert epd.call("DELETE", "/Observation/w-1").status_code == 204
    assert epd.call("GET", "/Observation/w-1").status_code == 404
    assert epd.call("DELETE", "/Observation/w-1").status_code == 204  # idempotent
    assert epd.call("PUT", "/Binary/doc-1", PDFA, content_type="application/pdf").status_code == 201
    assert epd.put(document_reference("dr-1", pt1, "doc-1")).status_code == 201
    in_use = epd.call("DELETE", "/Binary/doc-1")
    assert in_use.status_code == 409 and "DocumentReference/dr-1" in outcome_text(in_use)
    assert epd.call("DELETE", "/DocumentReference/dr-1").status_code == 204
    assert epd.call("DELETE", "/Binary/doc-1").status_code == 204
    assert [r.resource_type for r in rows(source_app)] == ["Patient"]


def document_reference(did: str, pid: str, binary: str) -> dict[str, t.Any]:
    return {
        "resourceType": "DocumentReference", "id": did,
        "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/IHE.MHD.Minimal.DocumentReference"]},
        "status": "current", "indexed": "2024-05-01T10:00:00+02:00",
        "type": {"coding": [{"system": "http://loinc.org", "code": "34133-9", "display": "Samenvatting"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "content": [{"attachment": {"contentType": "application/pdf", "url": f"Binary/{binary}",
                                    "title": "Ontslagbrief"}}],
    }


def transaction(*entries: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def put_entry(resource: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def test_a_transaction_is_all_or_nothing_and_names_every_problem(source_app: t.Any, epd: Source, lab: Source,
                                                                 pt1: str) -> None:
    assert lab.put(weight("w-lab", pt1)).status_code == 201
    broken = weight("w-2", pt1, effectiveDateTime="yesterday")
    orphan = weight("w-3", pt1)
    orphan["related"] = [{"type": "has-member", "target": {"reference": "urn:uuid:9b7e4b36-0000-4000-8000-000000000000",
                                                          "display": "x"}}]
    bundle = transaction(put_entry(weight("w-1", pt1)), put_entry(broken), put_entry(weight("w-lab", pt1, 50)),
                         put_entry(orphan), {"request": {"method": "PATCH", "url": "Observation/w-1"}})
    response = epd.call("POST", "/", bundle)
    assert response.status_code == 409  # the most telling problem: another source's resource
    text = outcome_text(response)
    for expected in ("Bundle.entry[1]", "effectiveDateTime", "Bundle.entry[2]", "kept by source 'lab'",
                     "Bundle.entry[3]", "not an entry of this Bundle", "Bundle.entry[4]", "PATCH"):
        assert expected in text, expected
    assert "Bundle.entry[0]" not in text
    assert [r.logical_id for r in rows(source_app, ResourceRow.resource_type == "Observation")] == ["w-lab"]


def test_a_transaction_creates_updates_and_deletes_together(source_app: t.Any, epd: Source, pt1: str) -> None:
    assert epd.put(weight("w-old", pt1)).status_code == 201
    new_patient = patient("pt-9", family="Nieuw")
    new_patient.pop("id")
    posted = condition("ignored", "x")
    posted.pop("id")
    posted["subject"] = {"reference": "urn:uuid:11111111-2222-4333-8444-555555555555"}
    bundle = transaction(
        {"fullUrl": "urn:uuid:11111111-2222-4333-8444-555555555555", "resource": new_patient,
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:aaaaaaaa-2222-4333-8444-555555555555", "resource": posted,
         "request": {"method": "POST", "url": "Condition"}},
        put_entry(weight("w-1", pt1)),
        {"request": {"method": "DELETE", "url": "Observation/w-old"}})
    response = epd.call("POST", "/", bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created", "204 No Content"]
    new_id = result["entry"][0]["fullUrl"].rsplit("/", 1)[1]
    [stored] = rows(source_app, ResourceRow.resource_type == "Condition")
    assert stored.patient_id == new_id and f'"reference":"Patient/{new_id}"' in stored.json_text
    assert '"display":"Anna Nieuw"' in stored.json_text
    assert rows(source_app, ResourceRow.logical_id == "w-old") == []
    as_xml = epd.call("POST", "/", fhirxml.render_xml(transaction(put_entry(weight("w-1", pt1)))),
                      content_type="application/fhir+xml", Accept="application/fhir+xml")
    assert as_xml.status_code == 200
    assert fhirxml.parse_xml(as_xml.data)["entry"][0]["response"]["status"] == "200 OK"
    too_big = transaction(*[put_entry(weight(f"w-{i}", pt1)) for i in range(10)])
    source_app.extensions["dvza.source"].max_bundle_entries = 5
    assert epd.call("POST", "/", too_big).status_code == 413


def collection(*resources: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def test_replace_one_patients_record_for_one_gegevensdienst(source_app: t.Any, epd: Source, lab: Source,
                                                            pt1: str) -> None:
    """The Bundle is the whole BgZ of pt-1 now: what epd keeps there and did not send again goes; what another
    source keeps, data of other gegevensdiensten and other patients stay."""
    assert epd.put(patient("pt-2")).status_code == 201
    for resource in (weight("w-1", pt1), weight("w-2", pt1), condition("c-1", pt1), condition("c-other", "pt-2")):
        assert epd.put(resource).status_code == 201
    assert lab.put(weight("w-lab", pt1)).status_code == 201
    assert epd.call("PUT", "/Binary/doc-1", PDFA, content_type="application/pdf").status_code == 201
    assert epd.put(document_reference("dr-1", pt1, "doc-1")).status_code == 201  # gegevensdienst 51, not 48
    response = epd.call("POST", "/Patient/pt-1/$replace?gegevensdienst=48",
                        collection(patient("pt-1"), weight("w-1", pt1, 90), condition("c-2", pt1)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "1 created" in outcome_text(response) and "2 deleted" in outcome_text(response)
    left = {r.logical_id for r in rows(source_app)}
    assert left == {"pt-1", "pt-2", "w-1", "c-2", "c-other", "w-lab", "doc-1", "dr-1"}
    assert rows(source_app, ResourceRow.logical_id == "w-1")[0].version_id == 2


def test_replace_refuses_what_is_not_that_patients_gegevensdienst(source_app: t.Any, epd: Source, pt1: str) -> None:
    assert epd.put(patient("pt-2")).status_code == 201
    assert epd.put(weight("w-1", pt1)).status_code == 201
    wrong = epd.call("POST", "/Patient/pt-1/$replace?gegevensdienst=52",
                     collection(weight("w-1", pt1), condition("c-1", pt1), weight("w-9", "pt-2")))
    assert wrong.status_code == 422
    text = outcome_text(wrong)
    assert "Condition is not part of gegevensdienst 52" in text and "belongs to Patient/pt-2" in text
    assert epd.call("POST", "/Patient/pt-1/$replace?gegevensdienst=99", collection(weight("w-1", pt1))
                    ).status_code == 400
    assert epd.call("POST", "/Patient/pt-1/$replace", collection(weight("w-1", pt1))).status_code == 400
    assert {r.logical_id for r in rows(source_app)} == {"pt-1", "pt-2", "w-1"}


def test_documents_are_streamed_in_as_pdf_within_the_limit(source_app: t.Any, epd: Source, pt1: str) -> None:
    stored = epd.call("PUT", "/Binary/doc-1", PDFA, content_type="application/pdf")
    assert stored.status_code == 201 and "PDF/A" not in outcome_text(stored)
    [row] = rows(source_app, ResourceRow.logical_id == "doc-1")
    assert row.patient_id is None and base64.b64decode(row.json_text.split('"content":"')[1].split('"')[0]) == PDFA
    plain_pdf = b"%PDF-1.4\n" + b"x" * 100 + b"\n%%EOF\n"
    warned = epd.call("PUT", "/Binary/doc-2", plain_pdf, content_type="application/pdf")
    assert warned.status_code == 201 and "does not identify itself as PDF/A" in outcome_text(warned)
    assert epd.call("PUT", "/Binary/doc-3", b"GIF89a...", content_type="application/pdf").status_code == 400
    assert epd.call("PUT", "/Binary/doc-3", b"%PDF-1.4", content_type="image/png").status_code == 415
    as_json = {"resourceType": "Binary", "id": "doc-4", "contentType": "application/pdf",
               "content": base64.b64encode(PDFA).decode()}
    assert epd.put(as_json).status_code == 201
    limit = source_app.config["MAX_ATTACHMENT_BYTES"]
    too_big = epd.call("PUT", "/Binary/doc-5", b"%PDF-1.4\n" + b"0" * limit, content_type="application/pdf")
    assert too_big.status_code == 413
    assert epd.put({**as_json, "id": "doc-6", "content": base64.b64encode(b"%PDF" + b"0" * limit).decode()}
                   ).status_code == 413


def test_an_oversized_chunked_document_is_refused_after_the_limit(source_app: t.Any, epd: Source) -> None:
    limit = source_app.config["MAX_ATTACHMENT_BYTES"]

    class Endless(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: t.Any) -> int:
            buffer[: len(buffer)] = b"%" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

    body = Endless()
    response = source_app.test_client().put(
        "/source/fhir/Binary/doc-9", environ_overrides={**epd.environ, "wsgi.input": body,
                                                        "wsgi.input_terminated": True},
        headers={"Content-Type": "application/pdf", "Transfer-Encoding": "chunked"})
    assert response.status_code == 413
    assert body.served <= limit + 1024 * 1024
    assert rows(source_app) == []


def _race(app: t.Any, first: tuple[str, dict[str, t.Any], str | None],
          second: tuple[str, dict[str, t.Any], str | None]) -> tuple[t.Any, t.Any]:
    """Two sources' upserts (source, resource, If-Match) at the same moment: the first flushes and holds its
    transaction open for half a second while the second writes the same row. Each one's outcome: the status
    the source API would answer, or the error's status (or repr)."""
    database, settings = app.extensions["dvza.db"], app.extensions["dvza.source.settings"]
    flushed = threading.Event()
    outcomes: list[t.Any] = [None, None]

    def write(index: int, source: str, resource: dict[str, t.Any], if_match: str | None) -> None:
        if index == 1:
            flushed.wait(10)
        with database.sessionmaker() as session:
            try:
                change = SourceWriter(session, source, settings).upsert(resource, if_match=if_match)
                if index == 0:
                    session.flush()
                    flushed.set()
                    threading.Event().wait(0.5)  # the second writer is blocked on the row meanwhile
                session.commit()
                outcomes[index] = 201 if change.action == "created" else 200
            except Exception as exc:  # noqa: BLE001 - the outcome is the assertion
                session.rollback()
                outcomes[index] = getattr(exc, "status_code", repr(exc))
            finally:
                flushed.set()

    threads = [threading.Thread(target=write, args=(i, *args)) for i, args in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes[0], outcomes[1]
