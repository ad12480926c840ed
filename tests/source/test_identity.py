"""Patient identity through the source API: register with a BSN (kept only as keyed hash and encrypted staff
copy), one record per BSN, a corrected BSN, merge, unlink and delete — and that none of them ever lets one
person's login, token or consent reach another person's data."""

from __future__ import annotations

import typing as t
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from dvza import identity
from dvza.models import IdentityLink
from dvza.models import PatientBsn
from dvza.returnqueue.models import QueueItem
from fhir_api import fhirjson
from fhir_api.models import ResourceRow
from fhir_api.services import Submission
from fhir_api.store import ResourceStore
from oauth.models import Consent
from oauth.models import Token
from oauth.mtls import load_certificate
from oauth.mtls import thumbprint_s256
from oauth.tokens import ACCESS
from oauth.tokens import REFRESH
from oauth.tokens import store_token
from tests.oauth.conftest import CERTS as PGO_CERTS
from tests.oauth.conftest import Browser
from tests.source.conftest import PGO
from tests.source.conftest import Source
from tests.source.conftest import audit_records
from tests.source.conftest import condition
from tests.source.conftest import patient
from tests.source.conftest import rows
from tests.source.conftest import weight

BSN_A, BSN_B = "999911120", "999910796"


def outcome_text(response: t.Any) -> str:
    return " | ".join(i["diagnostics"] for i in response.get_json()["issue"])


def login_token(app: t.Any, bsn: str) -> str:
    browser = Browser(app)
    issued = browser.token(browser.code_for(bsn))
    assert issued.status_code == 200, issued.get_data(as_text=True)
    return str(issued.get_json()["access_token"])


def login_refused(app: t.Any, bsn: str) -> bool:
    """The person logs in and the DVZA knows no record for them (MedMij: access_denied, no such resources)."""
    browser = Browser(app)
    answer = browser.login(browser.authorize(), bsn)
    return answer.status_code == 302 and "access_denied" in answer.headers["Location"]


def stored_token(app: t.Any, patient_id: str, value: str, *, long_term: bool = False) -> None:
    """A PGO's access token (and with ``long_term`` a consent with a refresh token) for a record without BSN."""
    now = datetime.now(UTC)
    thumbprint = thumbprint_s256(t.cast(t.Any, load_certificate(PGO_CERTS[PGO])))
    with app.extensions["dvza.db"].sessionmaker() as session:
        consent = Consent(id=f"consent-{patient_id}", patient_id=patient_id, client_id=PGO, client_name="Test-PGO",
                          usecase="verzamelen", gegevensdiensten="48", long_term=long_term, granted_at=now)
        session.add(consent)
        store_token(session, value, kind=ACCESS, patient_id=patient_id, gegevensdiensten=["48"], client_id=PGO,
                    lifetime=timedelta(minutes=15), consent_id=consent.id, cnf_x5t_s256=thumbprint, now=now)
        if long_term:
            store_token(session, value + "-refresh", kind=REFRESH, patient_id=patient_id, gegevensdiensten=["48"],
                        client_id=PGO, consent_id=consent.id, cnf_x5t_s256=thumbprint, now=now)
        session.commit()


def pgo(app: t.Any, path: str, token: str) -> t.Any:
    return Browser(app).fhir(path, token)


def ids(response: t.Any) -> set[str]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return {e["resource"]["id"] for e in response.get_json().get("entry", [])}


def merge(source: Source, merged: str, into: str) -> t.Any:
    return source.call("POST", "/Patient/$merge", {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{merged}"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{into}"}}]})


def linked(app: t.Any, bsn: str) -> str | None:
    with app.extensions["dvza.db"].sessionmaker() as session:
        return identity.patient_for(session, app.config["BSN_HMAC_KEY"], bsn)


def test_a_registered_bsn_is_kept_only_as_keyed_hash_and_staff_copy(source_app: t.Any, epd: Source) -> None:
    response = epd.put(patient("pt-a", BSN_A))
    assert response.status_code == 201
    identifier = response.get_json()["identifier"][0]
    assert "value" not in identifier and identifier["_value"]["extension"][0]["valueCode"] == "masked"
    [row] = rows(source_app)
    assert BSN_A not in row.json_text and BSN_A not in row.xml_text
    assert linked(source_app, BSN_A) == "pt-a"
    with source_app.extensions["dvza.db"].sessionmaker() as session:
        assert identity.bsn_for(session, identity.cipher_from_config(source_app.config), "pt-a") == BSN_A
        assert BSN_A not in session.get(PatientBsn, "pt-a").bsn_encrypted
    assert all(BSN_A not in f"{r.resource_ids} {r.detail}" for r in audit_records(source_app))
    assert epd.put(patient("pt-x", "123456789")).status_code == 400  # fails the elfproef
    two = patient("pt-x", BSN_A)
    two["identifier"].append({"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": BSN_B})
    assert epd.put(two).status_code == 400
    assert [r.logical_id for r in rows(source_app)] == ["pt-a"]


def test_a_bsn_is_the_person_of_one_record(source_app: t.Any, epd: Source) -> None:
    assert epd.put(patient("pt-a", BSN_A)).status_code == 201
    again = epd.put(patient("pt-b", BSN_A))
    assert again.status_code == 409
    assert "Patient/pt-a" in outcome_text(again) and "merge" in outcome_text(again)
    assert [r.logical_id for r in rows(source_app)] == ["pt-a"] and linked(source_app, BSN_A) == "pt-a"


def test_a_corrected_bsn_ends_every_access_through_the_old_one(source_app: t.Any, epd: Source) -> None:
    assert epd.put(patient("pt-a", BSN_A)).status_code == 201
    assert epd.put(weight("w-a", "pt-a")).status_code == 201
    token = login_token(source_app, BSN_A)
    assert ids(pgo(source_app, "Observation", token)) == {"w-a"}
    assert epd.put(patient("pt-a", BSN_B)).status_code == 200
    assert pgo(source_app, "Observation", token).status_code == 401
    assert login_refused(source_app, BSN_A) and linked(source_app, BSN_A) is None
    assert ids(pgo(source_app, "Observation", login_token(source_app, BSN_B))) == {"w-a"}


def test_merge_joins_two_records_of_one_person_and_ends_access_to_the_merged_one(source_app: t.Any,
                                                                                  epd: Source) -> None:
    assert epd.put(patient("pt-a", BSN_A)).status_code == 201
    assert epd.put(patient("pt-b", family="Jansen-Tijdelijk")).status_code == 201
    for resource in (weight("w-a", "pt-a"), weight("w-b", "pt-b"), condition("c-b", "pt-b")):
        assert epd.put(resource).status_code == 201
    database = source_app.extensions["dvza.db"]
    with database.sessionmaker() as session:  # something the person's PGO sent for pt-b, awaiting review
        ResourceStore(session).put(weight("w-pgo", "pt-b", subject={"reference": "Patient/pt-b", "display": "x"}),
                                   hidden_by="item-1")
        source_app.extensions["dvza.queue"].enqueue(session, Submission(
            id="item-1", kind="vitalsigns", gegevensdienst="53", patient_id="pt-b", client_id=PGO, request_id="r1",
            correlation_id=None, body_sha256="0" * 64, resources=["Observation/w-pgo"], summary="meting",
            response={"resourceType": "Bundle"}))
        session.commit()
    stored_token(source_app, "pt-b", "token-of-b", long_term=True)
    token_a = login_token(source_app, BSN_A)
    assert ids(pgo(source_app, "Observation", "token-of-b")) == {"w-b"}

    response = merge(epd, "pt-b", "pt-a")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "3 resource(s) moved" in outcome_text(response)
    assert "2 token(s), 1 consent(s)" in outcome_text(response)  # the access and the refresh token
    assert pgo(source_app, "Observation", "token-of-b").status_code == 401
    with database.sessionmaker() as session:
        assert session.get(Consent, "consent-pt-b").revoked_at is not None
        assert all(tok.revoked_reason == "patient-merged"
                   for tok in session.scalars(select(Token).where(Token.patient_id == "pt-b")))
        assert session.scalar(select(QueueItem.patient_id).where(QueueItem.id == "item-1")) == "pt-a"
    assert ids(pgo(source_app, "Observation", token_a)) == {"w-a", "w-b"}  # not the one awaiting review
    assert ids(pgo(source_app, "Condition", token_a)) == {"c-b"}
    assert pgo(source_app, "Patient/pt-b", token_a).status_code == 404
    moved = {r.logical_id: r for r in rows(source_app, ResourceRow.logical_id.in_(["w-b", "c-b", "w-pgo"]))}
    assert {r.patient_id for r in moved.values()} == {"pt-a"} and moved["w-pgo"].hidden_by == "item-1"
    assert '"reference":"Patient/pt-a"' in moved["w-b"].json_text and "pt-b" not in moved["w-b"].json_text
    merged = fhirjson.loads(rows(source_app, ResourceRow.logical_id == "pt-b")[0].json_text)
    assert merged["active"] is False and merged["link"][0]["type"] == "replaced-by"
    assert merged["link"][0]["other"]["reference"] == "Patient/pt-a"
    assert linked(source_app, BSN_A) == "pt-a"
    [record] = [r for r in audit_records(source_app) if r.event_type == "source.merge" and r.outcome == "200"]
    assert record.actor == "source:epd" and record.patient_id == "pt-a" and "pt-b" in record.detail


def test_two_records_with_different_bsns_are_two_people_and_never_merged(source_app: t.Any, epd: Source) -> None:
    assert epd.put(patient("pt-a", BSN_A)).status_code == 201
    assert epd.put(patient("pt-b", BSN_B)).status_code == 201
    assert epd.put(weight("w-b", "pt-b")).status_code == 201
    token_b = login_token(source_app, BSN_B)
    refused = merge(epd, "pt-b", "pt-a")
    assert refused.status_code == 409 and "two people" in outcome_text(refused)
    assert ids(pgo(source_app, "Observation", token_b)) == {"w-b"}
    assert linked(source_app, BSN_A) == "pt-a" and linked(source_app, BSN_B) == "pt-b"
    assert merge(epd, "pt-b", "pt-nobody").status_code == 404
    assert merge(epd, "pt-b", "pt-b").status_code == 400


def test_merge_carries_the_bsn_when_only_the_merged_record_has_one(source_app: t.Any, epd: Source) -> None:
    assert epd.put(patient("pt-a")).status_code == 201
    assert epd.put(patient("pt-b", BSN_B)).status_code == 201
    assert epd.put(weight("w-a", "pt-a")).status_code == 201
    assert epd.put(weight("w-b", "pt-b")).status_code == 201
    old_token = login_token(source_app, BSN_B)
    halfway = Browser(source_app)  # logged in for pt-b, the consent page on screen, when the merge happens
    assert halfway.login(halfway.authorize(), BSN_B).status_code == 303
    consent_page = halfway.client.get("/oauth/consent")
    assert consent_page.status_code == 200
    assert merge(epd, "pt-b", "pt-a").status_code == 200
    assert pgo(source_app, "Observation", old_token).status_code == 401
    late = halfway.client.post("/oauth/consent", data={"csrf_token": Browser.csrf(consent_page), "decision": "grant"})
    assert late.status_code == 400 and "code=" not in late.headers.get("Location", "")  # no consent for pt-b
    assert linked(source_app, BSN_B) == "pt-a"
    assert ids(pgo(source_app, "Observation", login_token(source_app, BSN_B))) == {"w-a", "w-b"}
    with source_app.extensions["dvza.db"].sessionmaker() as session:
        assert identity.bsn_for(session, identity.cipher_from_config(source_app.config), "pt-a") == BSN_B
        assert session.get(PatientBsn, "pt-b") is None


def test_unlink_ends_the_way_in_through_that_bsn(source_app: t.Any, epd: Source) -> None:
    assert epd.put(patient("pt-a", BSN_A)).status_code == 201
    assert epd.put(weight("w-a", "pt-a")).status_code == 201
    token = login_token(source_app, BSN_A)
    response = epd.call("POST", "/Patient/pt-a/$unlink")
    assert response.status_code == 200 and "1 BSN link(s) removed" in outcome_text(response)
    assert pgo(source_app, "Observation", token).status_code == 401
    assert login_refused(source_app, BSN_A)
    patient_now = fhirjson.loads(rows(source_app, ResourceRow.logical_id == "pt-a")[0].json_text)
    assert "identifier" not in patient_now
    with source_app.extensions["dvza.db"].sessionmaker() as session:
        assert session.scalars(select(IdentityLink)).all() == [] and session.get(PatientBsn, "pt-a") is None
    assert epd.put(patient("pt-b", BSN_A)).status_code == 201  # the BSN is free for its right record now
    assert epd.call("POST", "/Patient/nobody/$unlink").status_code == 404


def test_deleting_a_patient_removes_the_whole_record_and_every_access(source_app: t.Any, epd: Source) -> None:
    from tests.source.test_writes import PDFA
    from tests.source.test_writes import document_reference

    assert epd.put(patient("pt-a", BSN_A)).status_code == 201
    assert epd.put(patient("pt-b", BSN_B)).status_code == 201
    assert epd.call("PUT", "/Binary/doc-a", PDFA, content_type="application/pdf").status_code == 201
    for resource in (weight("w-a", "pt-a"), document_reference("dr-a", "pt-a", "doc-a"), weight("w-b", "pt-b")):
        assert epd.put(resource).status_code == 201
    token = login_token(source_app, BSN_A)
    assert epd.call("DELETE", "/Patient/pt-a").status_code == 200
    assert {r.logical_id for r in rows(source_app)} == {"pt-b", "w-b"}
    assert pgo(source_app, "Observation", token).status_code == 401
    assert login_refused(source_app, BSN_A) and linked(source_app, BSN_B) == "pt-b"


@pytest.mark.parametrize("bad", ["", "Observation/x", "Patient/"])
def test_merge_needs_two_patient_references(epd: Source, bad: str) -> None:
    response = merge(epd, bad or "pt-a", "pt-b") if bad else epd.call(
        "POST", "/Patient/$merge", {"resourceType": "Parameters", "parameter": []})
    assert response.status_code in (400, 404)
