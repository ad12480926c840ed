"""An OpenID Connect broker in front of DigiD (``LOGIN_ADAPTER=oidc``) against a real, certified
OpenID Provider process (the npm package ``oidc-provider``, tests/idp/oidc/op.mjs): authorization
code + PKCE, private_key_jwt or tls_client_auth, ID token checks with JWKS key rotation, BSN from a
claim, level from ``acr``; and the failure paths — bad signature, replayed answer, wrong audience,
expired ID token, level too low, cancel, provider down, a client certificate the OP does not accept —
each a Dutch page for the person and the MedMij error for the PGO.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from oauth.directory import StaticDirectory
from tests.login.conftest import DIRECTORY
from tests.login.conftest import OIDC_CLIENT_ID
from tests.login.conftest import OIDC_TLS_CLIENT_HOST
from tests.login.conftest import LocalOp
from tests.login.conftest import OpBrowser
from tests.login.conftest import assert_failure_page
from tests.login.conftest import free_port
from tests.login.conftest import oidc_config
from tests.login.conftest import tls_client_auth_config
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import redirect_params
from tests.support import load_cert_data
from tests.support import make_app


def no_consent_possible(person: OpBrowser) -> None:
    assert person.client.get("/oauth/consent").status_code == 400


def test_login_consent_and_token(oidc_person: OpBrowser, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    landing = oidc_person.authorize()
    sent = oidc_person.client.post("/oauth/login", data={"csrf_token": oidc_person.csrf(landing)})
    query = parse_qs(urlsplit(sent.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    assert query["response_type"] == ["code"] and "code_verifier" not in query
    page = oidc_person.web.get(sent.headers["Location"], timeout=10).url
    back = oidc_person.at_op(page)
    assert HELLEMAN_BSN not in back
    after = oidc_person.back_at_rp(back)
    assert after.status_code == 303 and after.headers["Location"].endswith("/oauth/consent"), after.get_data(True)
    code = redirect_params(oidc_person.consent())["code"]
    token = oidc_person.token(code)
    assert token.status_code == 200
    assert "XXX_Helleman" in oidc_person.fhir("Patient", token.get_json()["access_token"]).get_data(as_text=True)
    assert all(HELLEMAN_BSN not in str(record.__dict__) for record in caplog.records)
    # the replayed answer (same code and state) finds no login state
    oidc_person.authorize()
    assert_failure_page(oidc_person.back_at_rp(back), "verlopen of al gebruikt")


def test_signing_key_rotation(oidc_person: OpBrowser, oidc_op: LocalOp) -> None:
    assert oidc_person.login_via_op(oidc_person.authorize()).status_code == 303  # JWKS now cached
    oidc_op.control(rotate="1")
    after = oidc_person.login_via_op(oidc_person.authorize())
    assert after.status_code == 303, after.get_data(as_text=True)


def test_bad_signature(oidc_person: OpBrowser, oidc_op: LocalOp) -> None:
    # a new signing key whose published JWKS entry (same kid) is another key: the signature cannot verify
    oidc_op.control(rotate="1", jwks="mismatch")
    try:
        response = oidc_person.login_via_op(oidc_person.authorize())
    finally:
        oidc_op.control(rotate="1", jwks="normal")  # a fresh kid: the adapter fetches the right JWKS
    assert_failure_page(response, "niet bevestigd wie je bent")
    no_consent_possible(oidc_person)


def test_expired_id_token(oidc_person: OpBrowser, oidc_op: LocalOp) -> None:
    page = oidc_person.to_op(oidc_person.authorize())
    back = oidc_person.at_op(page)
    oidc_op.control(clock_offset="-7200")  # the provider's clock is two hours behind: exp has passed
    try:
        response = oidc_person.back_at_rp(back)
    finally:
        oidc_op.control(clock_offset="0")
    assert_failure_page(response, "niet bevestigd wie je bent")


def test_level_too_low(oidc_person: OpBrowser) -> None:
    response = oidc_person.login_via_op(oidc_person.authorize(), level="midden")
    assert_failure_page(response, "DigiD Midden", "minimaal DigiD Substantieel")
    no_consent_possible(oidc_person)


def test_cancel(oidc_person: OpBrowser) -> None:
    response = oidc_person.login_via_op(oidc_person.authorize(state="weg"), action="cancel")
    assert redirect_params(response) == {"error": "access_denied", "error_description": "Authorization denied.",
                                         "state": "weg"}


def test_answer_in_another_browser(oidc_person: OpBrowser, oidc_app: t.Any, oidc_op: LocalOp) -> None:
    back = oidc_person.at_op(oidc_person.to_op(oidc_person.authorize()))
    victim = OpBrowser(oidc_app, oidc_op)
    victim.authorize()
    assert_failure_page(victim.back_at_rp(back), "verlopen of al gebruikt")


def test_provider_down(databases: t.Any, tmp_path_factory: pytest.TempPathFactory, oidc_op: LocalOp) -> None:
    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, FRONTCHANNEL_SECURE_COOKIES=False,
                   **oidc_config(oidc_op, OIDC_ISSUER=f"https://localhost:{free_port()}", OIDC_TIMEOUT=2))
    load_cert_data(app, "bgz")
    app.extensions["oauth"].directory = StaticDirectory(**DIRECTORY)
    person = OpBrowser(app, oidc_op)
    landing = person.authorize()
    response = person.client.post("/oauth/login", data={"csrf_token": person.csrf(landing)})
    assert_failure_page(response, "niet bereikbaar", unavailable=True)
    app.extensions["dvza.db"].dispose()



# OIDC Core §3.1.3.7 items 3–5. A conforming provider never issues such tokens to us: the test OP
# replaces the claims in the ID token its token endpoint hands out and signs it again with its current
# key, so signature, issuer, nonce and expiry are all fine and only the audience is wrong.
@pytest.mark.parametrize("claims", [
    pytest.param({"aud": "andere-dienst"}, id="aud-another-client"),
    pytest.param({"aud": ["andere-dienst", "nog-een-dienst"], "azp": "andere-dienst"}, id="aud-list-without-us"),
    pytest.param({"aud": [OIDC_CLIENT_ID, "andere-dienst"], "azp": "andere-dienst"}, id="aud-list-azp-another"),
    pytest.param({"aud": [OIDC_CLIENT_ID, "andere-dienst"]}, id="aud-list-without-azp"),
    pytest.param({"aud": [OIDC_CLIENT_ID, "andere-dienst"], "azp": OIDC_CLIENT_ID}, id="aud-list-azp-us-other"),
    pytest.param({"azp": "andere-dienst"}, id="azp-another"),
    pytest.param({"aud": None}, id="no-aud"),
])
def test_wrong_audience(oidc_person: OpBrowser, oidc_op: LocalOp, claims: dict[str, t.Any]) -> None:
    with oidc_op.id_token_claims(**claims) as reissued:
        response = oidc_person.login_via_op(oidc_person.authorize())
    assert reissued.count == 1  # the refused token is the one with the wrong audience
    assert_failure_page(response, "niet bevestigd wie je bent")
    no_consent_possible(oidc_person)


def test_reissued_token_for_us_is_accepted(oidc_person: OpBrowser, oidc_op: LocalOp) -> None:
    """The same re-signing with an audience that is only us (as a list, with ``azp`` us) is accepted: proves
    the tokens above were refused for their audience, not for the re-signing."""
    with oidc_op.id_token_claims(aud=[OIDC_CLIENT_ID], azp=OIDC_CLIENT_ID) as reissued:
        after = oidc_person.login_via_op(oidc_person.authorize())
    assert reissued.count == 1
    assert after.status_code == 303 and after.headers["Location"].endswith("/oauth/consent"), after.get_data(True)
    assert oidc_person.token(redirect_params(oidc_person.consent())["code"]).status_code == 200


# ------------------------------------------------------------------------- tls_client_auth
# RFC 8705 §2.1: the DVZA authenticates at the OP's token endpoint with its client certificate
# (OIDC_CLIENT_AUTH=tls_client_auth). The OP (oidc-provider's mTLS feature) knows the client
# `dvza-mtls` by the dNSName SAN `dvza.localhost` of a certificate from the development CA.
def test_tls_client_auth_login_consent_and_token(oidc_mtls_app: t.Any, oidc_op: LocalOp) -> None:
    discovery = oidc_op.discovery()
    assert "tls_client_auth" in discovery["token_endpoint_auth_methods_supported"]
    person = OpBrowser(oidc_mtls_app, oidc_op)
    after = person.login_via_op(person.authorize())
    assert after.status_code == 303 and after.headers["Location"].endswith("/oauth/consent"), after.get_data(True)
    token = person.token(redirect_params(person.consent())["code"])
    assert token.status_code == 200, token.get_data(as_text=True)
    assert "XXX_Helleman" in person.fhir("Patient", token.get_json()["access_token"]).get_data(as_text=True)


def nothing_granted(app: t.Any) -> None:
    """No authorization code, token or consent in the app's database."""
    import sqlalchemy as sa

    from oauth.models import AuthorizationCode
    from oauth.models import Consent
    from oauth.models import Token

    with app.extensions["dvza.db"].sessionmaker() as session:
        for model in (AuthorizationCode, Token, Consent):
            assert session.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model.__name__


@pytest.fixture(scope="module")
def forged_pki(tmp_path_factory: pytest.TempPathFactory) -> t.Any:
    """Another CA, unknown to the OP, with a client certificate for the DVZA's own host name."""
    from certs.pki import ensure_dev_pki

    return ensure_dev_pki(tmp_path_factory.mktemp("forged-pki"), server_hostnames=["localhost"],
                          clients=[OIDC_TLS_CLIENT_HOST])


@pytest.mark.parametrize("presented", [
    pytest.param("other-client", id="another-client-certificate"),  # same CA, SAN andere-dienst.localhost
    pytest.param("forged", id="our-name-from-an-unknown-ca"),
    pytest.param("none", id="no-certificate"),
])
def test_tls_client_auth_refused(databases: t.Any, tmp_path_factory: pytest.TempPathFactory, oidc_op: LocalOp,
                                 login_pki: t.Any, forged_pki: t.Any, presented: str) -> None:
    """The OP refuses the token request (invalid_client): a Dutch page, the MedMij error, nothing granted."""
    pki, host = {"other-client": (login_pki, "andere-dienst.localhost"), "forged": (forged_pki, OIDC_TLS_CLIENT_HOST),
                 "none": (login_pki, OIDC_TLS_CLIENT_HOST)}[presented]
    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, FRONTCHANNEL_SECURE_COOKIES=False,
                   **tls_client_auth_config(oidc_op, pki.client_cert(host), pki.client_key(host)))
    app.extensions["oauth"].directory = StaticDirectory(**DIRECTORY)
    if presented == "none":
        # The configuration cannot lack the certificate (see test_tls_client_auth_needs_a_certificate);
        # an adapter without one shows what the OP then does with the bare client_id.
        adapter = app.extensions["oauth"].login
        adapter.settings = dataclasses.replace(adapter.settings, tls_cert=None, tls_key=None)
    try:
        person = OpBrowser(app, oidc_op)
        response = person.login_via_op(person.authorize())
        assert_failure_page(response, "niet bevestigd wie je bent")
        no_consent_possible(person)
        nothing_granted(app)
    finally:
        app.extensions["dvza.db"].dispose()


@pytest.mark.parametrize("missing", ["OIDC_TLS_CERT", "OIDC_TLS_KEY"])
def test_tls_client_auth_needs_a_certificate(databases: t.Any, tmp_path_factory: pytest.TempPathFactory,
                                             oidc_op: LocalOp, login_pki: t.Any, missing: str) -> None:
    from dvza.config import ConfigError

    config = tls_client_auth_config(oidc_op, login_pki.client_cert(OIDC_TLS_CLIENT_HOST),
                                    login_pki.client_key(OIDC_TLS_CLIENT_HOST), **{missing: None})
    with pytest.raises(ConfigError, match=missing):
        make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, **config)
