"""The authorization server's answers are hardened (issue 13): never cached (RFC 6749 §5.1 and the
redirects that carry codes), and token requests with a repeated parameter refused (RFC 6749 §3.2)."""

from __future__ import annotations

import typing as t
from urllib.parse import urlencode

import pytest

from tests.oauth.conftest import CERTS
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import PGO
from tests.oauth.conftest import REDIRECT
from tests.oauth.conftest import Browser


def test_a_redirect_with_a_code_is_not_cached(browser: Browser) -> None:
    landing = browser.authorize()
    browser.login(landing, HELLEMAN_BSN)
    granted = browser.consent()
    assert "code=" in granted.headers["Location"] and granted.headers["Cache-Control"] == "no-store"


# --------------------------------------------------------------------------- duplicate token parameters
@pytest.mark.parametrize("repeated", ["code", "client_id", "redirect_uri", "grant_type"])
def test_repeated_token_parameters_are_refused(browser: Browser, oauth_app: t.Any, repeated: str) -> None:
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once."""
    code = browser.code_for()
    fields = [("grant_type", "authorization_code"), ("code", code), ("client_id", PGO), ("redirect_uri", REDIRECT)]
    fields += [(name, value) for name, value in fields if name == repeated]
    response = browser.client.post("/oauth/token", data=urlencode(fields),
                                   content_type="application/x-www-form-urlencoded",
                                   environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_request" and repeated in body["error_description"]
    # the code was not spent: the same code still works once, asked for properly
    assert browser.token(code).status_code == 200


def test_a_parameter_in_both_query_and_body_is_refused(browser: Browser) -> None:
    code = browser.code_for()
    response = browser.client.post(f"/oauth/token?code={code}", data={
        "grant_type": "authorization_code", "code": code, "client_id": PGO, "redirect_uri": REDIRECT},
        environ_overrides={"SSL_CLIENT_CERT": CERTS[PGO]})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
