"""The token endpoint (medmij-protocol.md §3.7/§3.8, RFC 6749 §4.1.3/§5, RFC 8705) and how its
tokens work — and stop working — on the FHIR API."""

from __future__ import annotations

import threading
import typing as t
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import update

from dvza.models import AuditRecord
from oauth.models import AuthorizationCode
from oauth.models import Token
from oauth.tokens import hash_secret
from oauth.tokens import utcnow
from tests.oauth.conftest import CERTS
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import NOT_WHITELISTED
from tests.oauth.conftest import OTHER_PGO
from tests.oauth.conftest import PGO
from tests.oauth.conftest import REDIRECT
from tests.oauth.conftest import UNLISTED
from tests.oauth.conftest import Browser

HELLEMAN = "medmij-bgz-patient-ts-01"


def test_code_for_token(browser: Browser, oauth_app: t.Any) -> None:
    response = browser.token(browser.code_for())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["scope"] == "48 52"
    assert "refresh_token" not in body
    token = body["access_token"]
    assert len(token) == 36 and token[14] == "4"
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        row = session.scalar(select(Token).where(Token.token_hash == hash_secret(token)))
        assert row is not None and row.cnf_x5t_s256 and row.client_id == PGO
        assert token not in str([session.scalars(select(Token.token_hash)).all()])
    patient = browser.fhir("Patient", token)
    assert patient.status_code == 200
    assert patient.get_json()["entry"][0]["resource"]["id"] == HELLEMAN


def test_tokens_are_bound_to_the_client_certificate(browser: Browser) -> None:
    token = browser.token(browser.code_for()).get_json()["access_token"]
    assert browser.fhir("Condition", token).status_code == 200
    assert browser.fhir("Condition", token, cert=None).status_code == 401
    other = browser.fhir("Condition", token, cert=OTHER_PGO)
    assert other.status_code == 401 and "another client certificate" in other.headers["WWW-Authenticate"]


def test_token_of_one_gegevensdienst_does_not_reach_another(browser: Browser) -> None:
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]
    assert browser.fhir("Condition", token).status_code == 200
    assert browser.fhir("DocumentReference", token).status_code == 403
    assert browser.fhir("Binary/pdfa-binary1", token).status_code == 404


def test_token_of_patient_a_against_patient_b(browser: Browser) -> None:
    token = browser.token(browser.code_for()).get_json()["access_token"]
    assert browser.fhir("Patient/medmij-bgz-patient-ts-02", token).status_code == 404
    assert browser.fhir("Condition/medmij-bgz-condition-ts-01", token).status_code == 200
    bundle = browser.fhir("Observation", token).get_json()
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {f"Patient/{HELLEMAN}"}


def test_replayed_code_fails_and_revokes_the_first_token(browser: Browser, oauth_app: t.Any) -> None:
    code = browser.code_for()
    first = browser.token(code).get_json()["access_token"]
    assert browser.fhir("Patient", first).status_code == 200
    again = browser.token(code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert browser.fhir("Patient", first).status_code == 401
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        replay = session.scalars(select(AuditRecord).where(AuditRecord.event_type == "oauth.code-replay")).all()
    assert replay and "1 token(s) revoked" in replay[-1].detail


def test_two_simultaneous_token_requests_exactly_one_succeeds(browser: Browser) -> None:
    code = browser.code_for()
    results: list[int] = []
    barrier = threading.Barrier(4)

    def exchange() -> None:
        client = Browser(browser.app)
        barrier.wait()
        results.append(client.token(code).status_code)

    threads = [threading.Thread(target=exchange) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [200, 400, 400, 400]


def test_expired_code(browser: Browser, oauth_app: t.Any) -> None:
    code = browser.code_for()
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        session.execute(update(AuthorizationCode).where(AuthorizationCode.code_hash == hash_secret(code))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    response = browser.token(code)
    assert response.status_code == 400 and "expired" in response.get_json()["error_description"]


def test_code_of_another_client_is_refused_and_stays_usable(browser: Browser) -> None:
    code = browser.code_for()
    stolen = browser.token(code, client_id=OTHER_PGO, cert=OTHER_PGO)
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    assert browser.token(code).status_code == 200


def test_changed_redirect_uri(browser: Browser) -> None:
    response = browser.token(browser.code_for(), redirect_uri=f"https://{PGO}/other")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize(("client_id", "cert", "error"), [
    (PGO, None, "invalid_client"),  # no client certificate
    (PGO, OTHER_PGO, "invalid_client"),  # certificate of another node
    (UNLISTED, UNLISTED, "invalid_client"),  # not on the OAuth Client List
    (NOT_WHITELISTED, NOT_WHITELISTED, "invalid_client"),  # not on the Whitelist
    ("", PGO, "invalid_request"),
])
def test_client_authentication(browser: Browser, client_id: str, cert: str | None, error: str) -> None:
    code = browser.code_for()
    response = browser.token(code, client_id=client_id, cert=cert)
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == error
    assert browser.token(code).status_code == 200  # a refused client does not burn the code


def test_token_request_parameters(browser: Browser) -> None:
    code = browser.code_for()
    assert browser.token(code, grant_type="password").get_json()["error"] == "unsupported_grant_type"
    assert browser.token(code, grant_type="refresh_token").get_json()["error"] == "unsupported_grant_type"
    missing = browser.client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                        "client_id": PGO},
                                  environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]})
    assert missing.get_json()["error"] == "invalid_request"
    assert "redirect_uri" in missing.get_json()["error_description"]
    assert browser.token("not-a-code").get_json()["error"] == "invalid_grant"
    # the MedMij 2.2.0 example sends the parameters in the query string of the POST
    from urllib.parse import urlencode

    query = urlencode({"grant_type": "authorization_code", "code": code, "client_id": PGO, "redirect_uri": REDIRECT})
    response = browser.client.post(f"/oauth/token?{query}", environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]})
    assert response.status_code == 200


def test_certificate_from_a_trusted_proxy_only(browser: Browser, oauth_app: t.Any) -> None:
    from urllib.parse import quote

    settings = oauth_app.extensions["oauth"].settings
    settings.trusted_proxies = ("10.0.0.0/8",)
    try:
        code = browser.code_for()
        data = {"grant_type": "authorization_code", "code": code, "client_id": PGO, "redirect_uri": REDIRECT}
        headers = {"X-SSL-Client-Cert": quote(CERTS[PGO])}
        untrusted = browser.client.post("/oauth/token", data=data, headers=headers,
                                        environ_overrides={"REMOTE_ADDR": "192.0.2.7"})
        assert untrusted.get_json()["error"] == "invalid_client"
        trusted = browser.client.post("/oauth/token", data=data, headers=headers,
                                      environ_overrides={"REMOTE_ADDR": "10.1.2.3"})
        assert trusted.status_code == 200, trusted.get_json()
    finally:
        settings.trusted_proxies = ()


def test_expired_access_token(browser: Browser, oauth_app: t.Any) -> None:
    token = browser.token(browser.code_for()).get_json()["access_token"]
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        session.execute(update(Token).where(Token.token_hash == hash_secret(token))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert browser.fhir("Patient", token).status_code == 401


def test_long_term_consent_refresh_and_revocation(browser: Browser, oauth_app: t.Any) -> None:
    settings = oauth_app.extensions["oauth"].settings
    settings.long_term_consent = True
    try:
        landing = browser.authorize()
        browser.login(landing, HELLEMAN_BSN)
        consent_page = browser.client.get("/oauth/consent")
        html = consent_page.get_data(as_text=True)
        assert 'type="checkbox" id="long_term"' in html and "checked" not in html
        granted = browser.client.post("/oauth/consent", data={"csrf_token": browser.csrf(consent_page),
                                                              "decision": "grant", "long_term": "yes"})
        from tests.oauth.conftest import redirect_params

        body = browser.token(redirect_params(granted)["code"]).get_json()
        assert body["refresh_token"]
        refreshed = browser.client.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": PGO,
                                                              "refresh_token": body["refresh_token"]},
                                        environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]})
        assert refreshed.status_code == 200, refreshed.get_json()
        new_token = refreshed.get_json()["access_token"]
        assert browser.fhir("Patient", new_token).status_code == 200
        stolen = browser.client.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": OTHER_PGO,
                                                           "refresh_token": body["refresh_token"]},
                                     environ_overrides={"SSL_CLIENT_CERT": CERTS[OTHER_PGO]})
        assert stolen.get_json()["error"] == "invalid_grant"

        # the person revokes it on "Mijn toestemmingen"
        manage = Browser(oauth_app)
        start = manage.client.get("/oauth/toestemmingen")
        assert "Inloggen met DigiD" in start.get_data(as_text=True)
        login_page = manage.client.post("/oauth/toestemmingen/login", data={"csrf_token": manage.csrf(start)})
        manage.client.post("/oauth/login/finish", data={"csrf_token": manage.csrf(login_page), "bsn": HELLEMAN_BSN})
        overview = manage.client.get("/oauth/toestemmingen")
        text = overview.get_data(as_text=True)
        assert "Test-PGO" in text and "Voor onbepaalde tijd" in text
        import re

        consent_id = re.search(r"/oauth/toestemmingen/([0-9a-f-]{36})/intrekken", text).group(1)
        revoked = manage.client.post(f"/oauth/toestemmingen/{consent_id}/intrekken",
                                     data={"csrf_token": manage.csrf(overview)})
        assert "Toestemming ingetrokken" in revoked.get_data(as_text=True)
        assert browser.fhir("Patient", new_token).status_code == 401
        again = browser.client.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": PGO,
                                                          "refresh_token": body["refresh_token"]},
                                    environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]})
        assert again.get_json()["error"] == "invalid_grant"
    finally:
        settings.long_term_consent = False


def test_my_consents_lists_active_short_consents_and_revokes(browser: Browser, oauth_app: t.Any) -> None:
    token = browser.token(browser.code_for()).get_json()["access_token"]
    manage = Browser(oauth_app)
    start = manage.client.get("/oauth/toestemmingen")
    login_page = manage.client.post("/oauth/toestemmingen/login", data={"csrf_token": manage.csrf(start)})
    manage.client.post("/oauth/login/finish", data={"csrf_token": manage.csrf(login_page), "bsn": HELLEMAN_BSN})
    overview = manage.client.get("/oauth/toestemmingen")
    assert "Voor één keer" in overview.get_data(as_text=True)
    forged = manage.client.post("/oauth/toestemmingen/x/intrekken", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert browser.fhir("Patient", token).status_code == 200


def test_proxy_header_trust_uses_the_tcp_peer_behind_proxyfix() -> None:
    """With ProxyFix, REMOTE_ADDR is the forwarded client; trust must follow the real TCP peer."""
    from urllib.parse import quote

    from oauth import mtls

    header = {"HTTP_X_SSL_CLIENT_CERT": quote(CERTS[PGO])}
    behind_proxy = header | {"REMOTE_ADDR": "198.51.100.9",
                             "werkzeug.proxy_fix.orig": {"REMOTE_ADDR": "10.0.0.5"}}
    assert mtls.client_certificate(behind_proxy, remote_addr="198.51.100.9", trusted_proxies=["10.0.0.0/8"])
    spoofed = header | {"REMOTE_ADDR": "10.0.0.5",
                        "werkzeug.proxy_fix.orig": {"REMOTE_ADDR": "198.51.100.9"}}
    assert mtls.client_certificate(spoofed, remote_addr="10.0.0.5", trusted_proxies=["10.0.0.0/8"]) is None
