"""Issue 14, in a real browser: the person logs in through the local DigiD-like SAML IdP of the
development network — signed AuthnRequest, the IdP's page, the artifact back, resolved by the DVZA over
the SOAP backchannel with mutual TLS — then consents and the PGO simulator shows the BgZ. And a login
below the required DigiD level: a Dutch page at the DVZA whose way back gives the PGO the MedMij error.
"""

from __future__ import annotations

import re
import typing as t

import pytest

from tests.e2e.conftest import person
from tests.e2e.test_browser_flow import browser  # noqa: F401 (fixture)
from tests.e2e.test_browser_flow import check_screen
from tests.e2e.test_browser_flow import page  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.e2e]


def to_digid(page: t.Any, network: t.Any) -> None:  # noqa: F811
    page.goto(f"{network.pgo_url}/")
    page.get_by_label("Basisgegevens zorg").check()
    page.get_by_role("button", name="Gegevens ophalen").click()
    page.wait_for_url(re.compile(re.escape(network.front_url)))
    page.get_by_role("button", name="Inloggen met DigiD").click()
    check_screen(page, "Kies hoe je inlogt")
    page.get_by_role("button", name=re.compile("DigiD via SAML")).click()
    page.wait_for_url(re.compile(r"https://digid\.localhost:\d+/saml/idp/request_authentication\?SAMLRequest="))
    check_screen(page, "Inloggen met DigiD (testomgeving)")


def test_fetch_after_digid_saml_login(page: t.Any, network: t.Any) -> None:  # noqa: F811
    to_digid(page, network)
    bsn = person(network)
    page.get_by_label("Burgerservicenummer (BSN)").fill(bsn)
    page.get_by_label("Betrouwbaarheidsniveau").select_option("substantieel")
    page.get_by_role("button", name="Inloggen", exact=True).click()
    check_screen(page, "Toestemming geven")
    assert bsn not in page.url
    page.get_by_role("button", name="Ja, ik geef toestemming").click()
    page.wait_for_url(re.compile(re.escape(network.pgo_url) + "/callback"))
    assert page.get_by_role("heading", name="Patiënt en huisarts").count() == 1
    cookies = " ".join(c["value"] for c in page.context.cookies())
    assert bsn not in cookies


def test_level_too_low_in_the_browser(page: t.Any, network: t.Any) -> None:  # noqa: F811
    to_digid(page, network)
    page.get_by_label("Burgerservicenummer (BSN)").fill(person(network))
    page.get_by_label("Betrouwbaarheidsniveau").select_option("basis")
    page.get_by_role("button", name="Inloggen", exact=True).click()
    check_screen(page, "Inloggen is niet gelukt")
    assert "DigiD Basis" in page.locator("main").inner_text()
    page.get_by_role("link", name=re.compile("Terug naar")).click()
    page.wait_for_url(re.compile(re.escape(network.pgo_url) + r"/callback\?error=unauthorized_client"))
