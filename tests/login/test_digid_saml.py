"""DigiD over SAML (``LOGIN_ADAPTER=digid-saml``) against a real SAML IdP process configured like DigiD:
the whole authorize → DigiD → consent → token flow, and every way it must fail.
"""

from __future__ import annotations

from tests.login.conftest import IdpBrowser
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import redirect_params


def test_login_consent_and_token(person: IdpBrowser) -> None:
    landing = person.authorize()
    after = person.login_via_idp(landing)
    assert after.status_code == 303 and after.headers["Location"].endswith("/oauth/consent"), after.get_data(True)
    granted = person.consent()
    code = redirect_params(granted)["code"]
    token = person.token(code)
    assert token.status_code == 200, token.get_json()
    bundle = person.fhir("Patient", token.get_json()["access_token"])
    assert bundle.status_code == 200
    assert HELLEMAN_BSN not in bundle.get_data(as_text=True)
