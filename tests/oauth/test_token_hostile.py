"""The token endpoint under hostile input (issue 11): over-long values and trace headers get the
OAuth error in JSON, the audit write never fails on them, and a token is never committed without its
audit record."""

from __future__ import annotations

import typing as t

import pytest
from sqlalchemy import func
from sqlalchemy import select

from dvza.models import AuditRecord
from oauth.models import Token
from tests.oauth.conftest import CERTS
from tests.oauth.conftest import PGO
from tests.oauth.conftest import REDIRECT
from tests.oauth.conftest import Browser


def test_a_300_character_client_id_is_refused_and_audited(oauth_app: t.Any, browser: Browser) -> None:
    response = browser.token("x", client_id="p" * 300)
    assert response.status_code in (400, 401) and response.get_json()["error"] in ("invalid_client", "invalid_request")
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        record = session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
    assert record.event_type == "oauth.token" and record.outcome == "failure"


@pytest.mark.parametrize("header", ["MedMij-Request-ID", "X-Correlation-ID"])
def test_over_long_trace_headers_at_the_token_endpoint(oauth_app: t.Any, browser: Browser, header: str) -> None:
    code = browser.code_for()
    response = browser.client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": PGO, "redirect_uri": REDIRECT},
        environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]}, headers={header: "z" * 200})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    assert browser.token(code).status_code == 200  # nothing was consumed by the refused request


def test_no_token_without_its_audit_record(oauth_app: t.Any, browser: Browser,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The success record is written in the token's own transaction: when it cannot be written, no
    token exists and the code can still be exchanged."""
    audit = oauth_app.extensions["dvza.audit"]
    real = audit.write

    def failing(**fields: t.Any) -> None:
        if fields.get("event_type") == "oauth.token" and fields.get("outcome") == "success":
            raise RuntimeError("audit storage down")
        real(**fields)

    services = oauth_app.extensions["oauth"]
    monkeypatch.setattr(services, "audit", failing)
    code = browser.code_for()
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        tokens = session.scalar(select(func.count()).select_from(Token))
    response = browser.token(code)
    assert response.status_code == 500 and response.get_json()["error"] == "server_error"
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        assert session.scalar(select(func.count()).select_from(Token)) == tokens
    monkeypatch.setattr(services, "audit", real)
    assert browser.token(code).status_code == 200
