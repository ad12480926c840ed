"""Reads take the token's row from the process's grant cache, and the read's audit record confirms it
(dvza/access.py, oauth.tokens.STILL_VALID, issue 12): whatever a worker read before, a token revoked,
expired or re-bound since is refused at once, no data leaves, and the refusal is audit-logged."""

from __future__ import annotations

import typing as t
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import update

from dvza.models import AuditRecord
from oauth.models import Token
from oauth.tokens import hash_secret
from oauth.tokens import import_qualification_token
from oauth.tokens import token_ref
from oauth.tokens import utcnow
from tests.oauth.conftest import CERTS
from tests.oauth.conftest import OTHER_PGO
from tests.oauth.conftest import PGO
from tests.oauth.conftest import Browser
from tests.support import bearer

HELLEMAN = "medmij-bgz-patient-ts-01"


def _lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the token lookups the resolver makes (``dvza.access.introspect``)."""
    import dvza.access

    calls: list[str] = []
    real = dvza.access.introspect

    def counting(*args: t.Any, **kwargs: t.Any) -> t.Any:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(dvza.access, "introspect", counting)
    return calls


def _records(app: t.Any, token: str) -> list[tuple[str, str, str | None]]:
    with app.extensions["dvza.db"].sessionmaker() as session:
        rows = session.execute(select(AuditRecord.event_type, AuditRecord.outcome, AuditRecord.detail)
                               .where(AuditRecord.token_ref == token_ref(hash_secret(token)))
                               .order_by(AuditRecord.id)).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _set_token(app: t.Any, token: str, **values: t.Any) -> None:
    with app.extensions["dvza.db"].sessionmaker() as session:
        session.execute(update(Token).where(Token.token_hash == hash_secret(token)).values(**values))
        session.commit()


def _refused(response: t.Any, reason: str) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert reason in response.headers["WWW-Authenticate"]
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert "Condition" not in response.get_data(as_text=True).replace("Condition resources", "")
    assert response.headers["Cache-Control"] == "no-store"


def test_reads_look_the_token_up_once(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]
    lookups = _lookups(monkeypatch)
    for path in ("Patient", "Condition", "Observation", "Condition"):
        assert browser.fhir(path, token).status_code == 200
    assert lookups == [token]
    # every read is audit-logged all the same
    assert [outcome for _, outcome, _ in _records(browser.app, token)][-4:] == ["200"] * 4


def test_revoked_after_it_was_cached_no_data_leaves(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]
    assert browser.fhir("Condition", token).status_code == 200
    before = len(_records(browser.app, token))
    _set_token(browser.app, token, revoked_at=utcnow())  # e.g. by another worker or instance
    lookups = _lookups(monkeypatch)
    _refused(browser.fhir("Condition", token), "revoked")
    assert lookups == []  # refused by the audit record's own statement, not by a fresh lookup
    records = _records(browser.app, token)[before:]
    assert [(kind, outcome) for kind, outcome, _ in records] == [("fhir.type-search", "401")]
    assert "revoked" in (records[0][2] or "")
    # the lapsed grant left the cache: the next request looks the token up, and is refused by that
    _refused(browser.fhir("Patient", token), "revoked")
    assert lookups == [token]


def test_expired_in_the_database_after_it_was_cached(browser: Browser) -> None:
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]
    assert browser.fhir("Condition", token).status_code == 200
    _set_token(browser.app, token, expires_at=utcnow() - timedelta(seconds=1))
    _refused(browser.fhir("Condition", token), "expired")


def test_expired_by_the_clock_without_asking_the_database(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]
    assert browser.fhir("Condition", token).status_code == 200
    later = utcnow() + timedelta(seconds=901)
    monkeypatch.setattr("oauth.tokens.utcnow", lambda: later)
    lookups = _lookups(monkeypatch)
    _refused(browser.fhir("Condition", token), "expired")
    assert lookups == []


def test_certificate_binding_is_checked_on_a_cached_grant(browser: Browser) -> None:
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]
    assert browser.fhir("Condition", token).status_code == 200
    _refused(browser.fhir("Condition", token, cert=OTHER_PGO), "another client certificate")
    _refused(browser.fhir("Condition", token, cert=None), "another client certificate")
    assert browser.fhir("Condition", token).status_code == 200


def test_writes_always_look_the_token_up(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]
    assert browser.fhir("Condition", token).status_code == 200
    lookups = _lookups(monkeypatch)
    response = browser.client.post("/fhir/", data=b'{"resourceType": "Bundle", "type": "transaction"}',
                                   headers={"Authorization": f"Bearer {token}",
                                            "Content-Type": "application/fhir+json"},
                                   environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]})
    assert response.status_code != 401
    assert lookups == [token]


def test_a_post_search_is_a_read_confirmed_by_its_audit_record(browser: Browser) -> None:
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]

    def post_search() -> t.Any:
        return browser.client.post("/fhir/Condition/_search", data={"_count": "5"},
                                   headers={"Authorization": f"Bearer {token}"},
                                   environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]})

    assert post_search().status_code == 200
    _set_token(browser.app, token, revoked_at=utcnow())
    _refused(post_search(), "revoked")


def test_a_token_rebound_to_another_patient_serves_neither_from_the_cache(cert_app: t.Any) -> None:
    """Re-importing a qualification token for another patient (dvza testdata) changes its row: the cached
    grant of the first patient is not used for even one more answer."""
    value = str(uuid.uuid4())
    database = cert_app.extensions["dvza.db"]
    with database.sessionmaker() as session:
        import_qualification_token(session, value, patient_id=HELLEMAN, gegevensdiensten=["48"])
        session.commit()
    client = cert_app.test_client()
    headers = {"Authorization": f"Bearer {value}"}
    first = client.get("/fhir/Patient", headers=headers)
    assert [e["resource"]["id"] for e in first.get_json()["entry"]] == [HELLEMAN]
    other = "medmij-bgz-patient-ts-02"
    try:
        with database.sessionmaker() as session:
            import_qualification_token(session, value, patient_id=other, gegevensdiensten=["48"])
            session.commit()
        refused = client.get("/fhir/Patient", headers=headers)
        assert refused.status_code == 401 and HELLEMAN not in refused.get_data(as_text=True)
        again = client.get("/fhir/Patient", headers=headers)
        assert [e["resource"]["id"] for e in again.get_json()["entry"]] == [other]
        assert client.get(f"/fhir/Patient/{HELLEMAN}", headers=headers).status_code == 404
    finally:
        _set_token(cert_app, value, revoked_at=utcnow())
    assert client.get("/fhir/Patient", headers=bearer(HELLEMAN)).status_code == 200  # others unaffected
