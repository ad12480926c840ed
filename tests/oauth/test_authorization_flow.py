"""The authorization endpoint, login, availability check and consent (medmij-protocol.md §3.2–§3.6)."""

from __future__ import annotations

import html
import logging
import re
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from dvza.models import AuditRecord
from oauth.models import AuthorizationCode
from oauth.models import AuthorizationFlow
from tests.oauth.conftest import BALTUS_BSN
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import PGO
from tests.oauth.conftest import REDIRECT
from tests.oauth.conftest import Browser
from tests.oauth.conftest import redirect_params


def test_landing_page_names_the_pgo_the_aanbieder_and_the_data(browser: Browser) -> None:
    page = browser.authorize()
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<html lang="nl">' in html and "<h1>Gegevens ophalen bij UMC Demo</h1>" in html
    assert "Test-PGO" in html and "Basisgegevens zorg" in html and "Documenten" in html
    assert "Inloggen met DigiD" in html
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"


def test_full_flow_gives_a_code_for_the_available_gegevensdiensten(browser: Browser, oauth_app: t.Any) -> None:
    landing = browser.authorize()
    login_page = browser.client.post("/oauth/login", data={"csrf_token": browser.csrf(landing)})
    html = login_page.get_data(as_text=True)
    assert "géén DigiD" in html and "Johan XXX_Helleman" in html and '<label for="bsn">' in html
    after = browser.client.post("/oauth/login/finish", data={"csrf_token": browser.csrf(login_page),
                                                             "bsn": HELLEMAN_BSN})
    assert after.status_code == 303 and after.headers["Location"].endswith("/oauth/consent")
    consent = browser.client.get("/oauth/consent")
    text = consent.get_data(as_text=True)
    assert "Toestemming geven" in text
    assert "Wil je de gegevens die <strong>UMC Demo</strong> over jou heeft in jouw PGO zetten?" in text
    available, _, missing = text.partition("Deze gegevens zijn er niet")
    assert "Basisgegevens zorg" in available and "Documenten" not in available  # Helleman has no documents
    assert "Documenten" in missing  # asked for, so shown as not there rather than dropped
    granted = browser.client.post("/oauth/consent", data={"csrf_token": browser.csrf(consent), "decision": "grant"})
    assert granted.status_code == 302
    params = redirect_params(granted)
    assert params["state"] == "st-123"
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        codes = session.scalars(select(AuthorizationCode)).all()
        stored = [c for c in codes if c.client_id == PGO][-1]
        assert stored.code_hash != params["code"] and len(stored.code_hash) == 64
        assert stored.gegevensdiensten == "48 52"
        events = {r.event_type for r in session.scalars(select(AuditRecord).where(
            AuditRecord.patient_id == "medmij-bgz-patient-ts-01"))}
    assert "oauth.consent-granted" in events
    assert len(params["code"]) == 36 and params["code"][14] == "4"  # UUID version 4


@pytest.mark.parametrize(("params", "message"), [
    ({"client_id": "onbekend.example.nl", "redirect_uri": "https://onbekend.example.nl/cb"}, "niet bekend"),
    ({"client_id": None}, "niet bekend"),
    ({"redirect_uri": "https://evil.example.org/cb"}, "klopt niet"),
    ({"redirect_uri": f"http://{PGO}/cb"}, "klopt niet"),
    ({"redirect_uri": f"https://{PGO}/cb#frag"}, "klopt niet"),
    ({"redirect_uri": f"https://user@{PGO}/cb"}, "klopt niet"),
    ({"redirect_uri": None}, "klopt niet"),
])
def test_bad_client_or_redirect_uri_gets_an_error_page_not_a_redirect(browser: Browser, params: dict[str, t.Any],
                                                                      message: str) -> None:
    response = browser.authorize(**params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize(("params", "error"), [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": None}, "invalid_request"),
    ({"scope": None}, "invalid_scope"),
    ({"scope": "anderzorgaanbieder"}, "invalid_scope"),
    ({"scope": "umcdemo~999"}, "invalid_scope"),
    ({"scope": "umcdemo~48 umcdemo~53"}, "invalid_scope"),
    ({"scope": "umcdemo~53 umcdemo~57"}, "invalid_scope"),
    ({"scope": "umcdemo onbehalfof"}, "invalid_scope"),
])
def test_other_errors_go_back_to_the_pgo_with_state(browser: Browser, params: dict[str, t.Any], error: str) -> None:
    response = browser.authorize(**params)
    assert response.status_code == 302
    result = redirect_params(response)
    assert result["error"] == error and result["state"] == "st-123"


def test_both_scope_dialects(browser: Browser, oauth_app: t.Any) -> None:
    code = browser.code_for(scope="umcdemo~48")
    assert browser.token(code).get_json()["scope"] == "48"
    settings = oauth_app.extensions["oauth"].settings
    settings.scope_dialect = "r2"
    try:
        assert redirect_params(browser.authorize(scope="umcdemo~48"))["error"] == "invalid_scope"
    finally:
        settings.scope_dialect = "both"
    settings.scope_dialect = "r1"
    try:
        assert redirect_params(browser.authorize(scope="umcdemo"))["error"] == "invalid_scope"
    finally:
        settings.scope_dialect = "both"


def test_refused_consent_is_logged_and_reported(browser: Browser, oauth_app: t.Any) -> None:
    landing = browser.authorize(state="weiger")
    browser.login(landing, HELLEMAN_BSN)
    response = browser.consent("refuse")
    result = redirect_params(response)
    assert result == {"error": "access_denied", "error_description": "Authorization denied.", "state": "weiger"}
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        refused = session.scalars(select(AuditRecord).where(AuditRecord.event_type == "oauth.consent-refused")).all()
    assert refused and refused[-1].patient_id == "medmij-bgz-patient-ts-01"


@pytest.mark.parametrize(("bsn", "scope"), [
    ("111222333", "umcdemo"),  # a valid BSN this hospital does not know
    (BALTUS_BSN, "umcdemo~52"),  # known patient without measurements (a known patient always has a BgZ)
])
def test_no_data_means_no_such_resources(browser: Browser, bsn: str, scope: str) -> None:
    landing = browser.authorize(scope=scope)
    response = browser.login(landing, bsn)
    assert response.status_code == 302
    assert redirect_params(response) == {"error": "access_denied", "error_description": "No such resources.",
                                         "state": "st-123"}


def test_login_problems(browser: Browser) -> None:
    landing = browser.authorize()
    page = browser.client.post("/oauth/login", data={"csrf_token": browser.csrf(landing)})
    failed = browser.client.post("/oauth/login/finish", data={"csrf_token": browser.csrf(page), "bsn": "123456789"})
    # a Dutch page tells the person why; its way back takes the MedMij error to the PGO
    assert failed.status_code == 401 and "Inloggen is niet gelukt" in failed.get_data(as_text=True)
    back = re.search(r'href="(https://[^"]+)"', failed.get_data(as_text=True))
    assert back and back.group(1).startswith(REDIRECT)
    back_params = parse_qs(urlsplit(html.unescape(back.group(1))).query)
    assert back_params["error"] == ["unauthorized_client"] and back_params["state"] == ["st-123"]
    landing = browser.authorize()
    page = browser.client.post("/oauth/login", data={"csrf_token": browser.csrf(landing)})
    cancelled = browser.client.post("/oauth/login/finish", data={"csrf_token": browser.csrf(page), "cancel": "1"})
    assert redirect_params(cancelled)["error_description"] == "Authorization denied."


def test_the_typed_bsn_has_its_own_form_and_two_bsns_are_refused(browser: Browser) -> None:
    """Enter in the BSN field submits its own form (the typed number), never the first test person's
    button of the other form; a request with two BSNs logs in nobody (issue 17)."""
    import lxml.html

    landing = browser.authorize()
    page = browser.client.post("/oauth/login", data={"csrf_token": browser.csrf(landing)})
    document = lxml.html.fromstring(page.get_data(as_text=True))
    typed = document.get_element_by_id("bsn")
    own_form = document.get_element_by_id(typed.get("form"))
    assert own_form.tag == "form" and own_form.get("action") == "/oauth/login/finish"
    assert own_form.xpath(".//input[@name='csrf_token']")
    assert [b.get("form") for b in document.xpath("//button[not(@name)]")] == ["bsn-typen"]
    both = browser.client.post("/oauth/login/finish", data={"csrf_token": browser.csrf(page),
                                                            "bsn": [HELLEMAN_BSN, BALTUS_BSN]})
    # nobody is logged in: the Dutch login-failed page, whose way back gives the PGO the MedMij error
    assert both.status_code == 401 and "Inloggen is niet gelukt" in both.get_data(as_text=True)
    back = re.search(r'href="(https://[^"]+)"', both.get_data(as_text=True))
    assert back and parse_qs(urlsplit(html.unescape(back.group(1))).query)["error"] == ["unauthorized_client"]
    assert "code" not in parse_qs(urlsplit(html.unescape(back.group(1))).query)


def test_cancel_on_the_landing_page(browser: Browser) -> None:
    landing = browser.authorize()
    response = browser.client.post("/oauth/cancel", data={"csrf_token": browser.csrf(landing)})
    assert redirect_params(response)["error"] == "access_denied"


def test_forms_need_their_csrf_token(browser: Browser) -> None:
    landing = browser.authorize()
    assert browser.client.post("/oauth/login", data={"csrf_token": "forged"}).status_code == 400
    browser.login(landing, HELLEMAN_BSN)
    browser.client.get("/oauth/consent")
    response = browser.client.post("/oauth/consent", data={"csrf_token": "forged", "decision": "grant"})
    assert response.status_code == 400 and "Location" not in response.headers
    other = Browser(browser.app)  # a second browser has no flow at all
    assert other.client.post("/oauth/consent", data={"csrf_token": "x", "decision": "grant"}).status_code == 400


def test_steps_cannot_be_replayed_or_skipped(browser: Browser) -> None:
    landing = browser.authorize()
    assert browser.client.get("/oauth/consent").status_code == 400  # not logged in yet
    browser.login(landing, HELLEMAN_BSN)
    browser.consent()
    assert browser.client.get("/oauth/consent").status_code == 400  # flow finished


def test_expired_flow(browser: Browser, oauth_app: t.Any) -> None:
    from datetime import timedelta

    from oauth.tokens import utcnow

    landing = browser.authorize()
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        flow = session.scalars(select(AuthorizationFlow).order_by(AuthorizationFlow.created_at.desc())).first()
        flow.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    response = browser.client.post("/oauth/login", data={"csrf_token": browser.csrf(landing)})
    assert response.status_code == 400 and "verlopen" in response.get_data(as_text=True)


def test_technical_failure_page(browser: Browser, oauth_app: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(patient_id: str, diensten: frozenset[str]) -> frozenset[str]:
        raise RuntimeError("database down")

    monkeypatch.setattr(oauth_app.extensions["oauth"], "available_diensten", broken)
    landing = browser.authorize()
    response = browser.login(landing, HELLEMAN_BSN)
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Technische storing" in html and "Het is op dit moment niet mogelijk om toestemming te geven" in html
    assert "11111111-1111-4111-8111-111111111111" in html and "22222222-2222-4222-8222-222222222222" in html
    assert "Terug naar je PGO" in html and "database down" not in html


def test_medmij_log_events(browser: Browser, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="oauth.medmij_events"):
        browser.token(browser.code_for())
    lines = [r.medmij for r in caplog.records if hasattr(r, "medmij")]
    types = [line["event"]["type"] for line in lines]
    for expected in ("receive_authorization_request", "show_landing_page", "send_authentication_request",
                     "receive_authentication_response", "show_consent_page", "receive_consent",
                     "send_authorization_response", "receive_token_request", "send_token_response"):
        assert expected in types
    landing = next(line for line in lines if line["event"]["type"] == "show_landing_page")
    assert landing["event"]["session_id"] == "22222222-2222-4222-8222-222222222222"
    assert landing["event"]["trace_id"] == "11111111-1111-4111-8111-111111111111"


def test_delen_uses_the_confirmation_text(browser: Browser) -> None:
    landing = browser.authorize(scope="umcdemo~53")
    assert "Gegevens delen met UMC Demo" in landing.get_data(as_text=True)
    browser.login(landing, HELLEMAN_BSN)
    page = browser.client.get("/oauth/consent")
    assert "Je bevestigt dat <strong>Test-PGO</strong> deze gegevens mag delen" in page.get_data(as_text=True)
    assert REDIRECT
