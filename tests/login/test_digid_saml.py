"""DigiD over SAML (``LOGIN_ADAPTER=digid-saml``) against a real SAML IdP process configured like DigiD
(``dvza.devtools.digid_idp``): the whole authorize → DigiD → consent → token flow, and every way it
must fail — tampered signature, replayed artifact, another audience, an expired assertion, a level
below the minimum, cancelling, DigiD's backchannel down. Each failure ends the flow with a Dutch
page for the person and ``unauthorized_client`` (or, for cancelling, ``access_denied``) for the PGO,
and never reaches consent.
"""

from __future__ import annotations

import logging
import re
import typing as t
from pathlib import Path

import pytest

from oauth.directory import StaticDirectory
from tests.login.conftest import DIRECTORY
from tests.login.conftest import IdpBrowser
from tests.login.conftest import assert_failure_page
from tests.login.conftest import free_port
from tests.login.conftest import saml_config
from tests.oauth.conftest import BALTUS_BSN
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import redirect_params
from tests.support import load_cert_data
from tests.support import make_app


def no_consent_possible(person: IdpBrowser) -> None:
    assert person.client.get("/oauth/consent").status_code == 400


def test_login_consent_token_and_data(person: IdpBrowser, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    landing = person.authorize()
    sent = person.client.post("/oauth/login", data={"csrf_token": person.csrf(landing)})
    location = sent.headers["Location"]
    assert "SAMLRequest=" in location and "SigAlg=" in location and "Signature=" in location
    page = person.web.get(location, timeout=10)
    back = person.at_idp(page)
    assert "SAMLart=" in back and HELLEMAN_BSN not in back
    after = person.back_at_sp(back)
    assert after.status_code == 303 and after.headers["Location"].endswith("/oauth/consent"), after.get_data(True)
    granted = person.consent()
    code = redirect_params(granted)["code"]
    token = person.token(code)
    assert token.status_code == 200, token.get_json()
    bundle = person.fhir("Patient", token.get_json()["access_token"])
    assert bundle.status_code == 200 and "XXX_Helleman" in bundle.get_data(as_text=True)
    # the BSN stayed inside the adapter: in no log record, redirect or cookie
    assert all(HELLEMAN_BSN not in record.getMessage() and HELLEMAN_BSN not in str(record.__dict__)
               for record in caplog.records)
    cookies = " ".join(c.value for c in person.client._cookies.values())
    assert HELLEMAN_BSN not in cookies


def test_a_second_patient_gets_their_own_data(person: IdpBrowser) -> None:
    landing = person.authorize(scope="umcdemo~51")
    after = person.login_via_idp(landing, bsn=BALTUS_BSN)
    assert after.status_code == 303, after.get_data(as_text=True)
    code = redirect_params(person.consent())["code"]
    token = person.token(code).get_json()["access_token"]
    documents = person.fhir("DocumentReference", token).get_data(as_text=True)
    assert "XXX_Baltus" in documents or "kwalificatie1" in documents
    assert "XXX_Helleman" not in person.fhir("Patient", token).get_data(as_text=True)


@pytest.mark.parametrize(("fault", "meaning"), [
    ("bad-signature", "BSN changed after DigiD signed the assertion"),
    ("wrong-audience", "assertion meant for another service provider"),
    ("expired", "assertion past its NotOnOrAfter"),
])
def test_refused_assertions(person: IdpBrowser, fault: str, meaning: str) -> None:
    landing = person.authorize()
    response = person.login_via_idp(landing, fault=fault)
    assert_failure_page(response, "DigiD heeft niet bevestigd wie je bent.")
    no_consent_possible(person)


def test_level_below_the_minimum(person: IdpBrowser) -> None:
    landing = person.authorize()
    response = person.login_via_idp(landing, level="midden")
    assert_failure_page(response, "DigiD Midden", "minimaal DigiD Substantieel")
    no_consent_possible(person)


def test_higher_level_is_fine(person: IdpBrowser) -> None:
    landing = person.authorize()
    assert person.login_via_idp(landing, level="hoog").status_code == 303


def test_cancel_at_digid(person: IdpBrowser) -> None:
    landing = person.authorize(state="annuleer")
    response = person.login_via_idp(landing, action="cancel")
    assert redirect_params(response) == {"error": "access_denied", "error_description": "Authorization denied.",
                                         "state": "annuleer"}
    no_consent_possible(person)


def test_replayed_artifact(person: IdpBrowser) -> None:
    landing = person.authorize()
    back = person.at_idp(person.to_idp(landing))
    assert person.back_at_sp(back).status_code == 303
    # the same answer again, in the same browser: the login state was taken
    landing = person.authorize()
    assert_failure_page(person.back_at_sp(back), "verlopen of al gebruikt")
    # the old artifact with a fresh login's RelayState: DigiD gives each artifact once
    landing = person.authorize()
    fresh = person.at_idp(person.to_idp(landing))
    relay = re.search(r"RelayState=([^&]+)", fresh)
    artifact = re.search(r"SAMLart=([^&]+)", back)
    assert relay and artifact
    assert_failure_page(person.back_at_sp(f"https://localhost/oauth/login/finish?SAMLart={artifact.group(1)}"
                                          f"&RelayState={relay.group(1)}"))


def test_answer_for_another_login(person: IdpBrowser) -> None:
    """An unresolved artifact of login A presented with login B's RelayState: InResponseTo differs."""
    first = person.at_idp(person.to_idp(person.authorize()))
    second = person.at_idp(person.to_idp(person.authorize()))
    artifact = re.search(r"SAMLart=([^&]+)", first)
    relay = re.search(r"RelayState=([^&]+)", second)
    assert artifact and relay
    assert_failure_page(person.back_at_sp(f"https://localhost/oauth/login/finish?SAMLart={artifact.group(1)}"
                                          f"&RelayState={relay.group(1)}"))


def test_answer_in_another_browser(person: IdpBrowser, saml_app: t.Any, digid: t.Any) -> None:
    """An attacker's artifact pushed into someone else's browser (login CSRF) does not count there."""
    back = person.at_idp(person.to_idp(person.authorize()))
    victim = IdpBrowser(saml_app, digid)
    victim.authorize()
    assert_failure_page(victim.back_at_sp(back), "verlopen of al gebruikt")


def test_garbage_artifacts(person: IdpBrowser) -> None:
    for artifact in ("", "bm90LWFuLWFydGlmYWN0", "A" * 300, "%%%"):
        landing = person.authorize()
        fresh = person.at_idp(person.to_idp(landing))
        relay = re.search(r"RelayState=([^&]+)", fresh)
        assert relay
        response = person.back_at_sp(f"https://localhost/oauth/login/finish?SAMLart={artifact}"
                                     f"&RelayState={relay.group(1)}")
        assert_failure_page(response)


def test_sp_metadata_is_published(person: IdpBrowser) -> None:
    response = person.client.get("/oauth/saml/metadata")
    assert response.status_code == 200 and response.mimetype == "application/samlmetadata+xml"
    body = response.get_data(as_text=True)
    assert 'entityID="https://localhost/oauth/saml/metadata"' in body
    assert "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" in body
    assert "https://localhost/oauth/login/finish" in body
    assert 'AuthnRequestsSigned="true"' in body and "X509Certificate" in body


@pytest.fixture(scope="module")
def backchannel_down_app(databases: t.Any, tmp_path_factory: pytest.TempPathFactory, digid: t.Any,
                         login_pki: t.Any) -> t.Iterator[t.Any]:
    """DigiD's metadata with its ArtifactResolutionService on a port where nothing listens."""
    metadata = Path(tmp_path_factory.mktemp("down")) / "idp-metadata.xml"
    metadata.write_text(digid.idp_metadata.read_text().replace(digid.back_url, f"https://127.0.0.1:{free_port()}"))
    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, FRONTCHANNEL_SECURE_COOKIES=False,
                   **saml_config(digid, login_pki, SAML_IDP_METADATA=str(metadata), SAML_TIMEOUT=2))
    load_cert_data(app, "bgz")
    app.extensions["oauth"].directory = StaticDirectory(**DIRECTORY)
    yield app
    app.extensions["dvza.db"].dispose()


def test_digid_backchannel_down(backchannel_down_app: t.Any, digid: t.Any) -> None:
    person = IdpBrowser(backchannel_down_app, digid)
    response = person.login_via_idp(person.authorize())
    assert_failure_page(response, "DigiD is op dit moment niet bereikbaar", unavailable=True)
    no_consent_possible(person)
