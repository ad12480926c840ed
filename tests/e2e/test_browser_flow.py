"""Issue 7, in a real browser: a person uses the PGO simulator, logs in and consents at the DVZA,
sees the BgZ, sends a blood pressure, and hospital staff see it in the return queue; and the
refusal path. Drives Debian's headless Chromium through Playwright (no browser download).

Every screen is checked for Dutch text (``lang="nl"``) and basic accessibility: one ``h1``, a
label for every form field, and the main buttons work with the keyboard.
"""

from __future__ import annotations

import re
import shutil
import typing as t

import pytest

from tests.e2e.conftest import person

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Fields and buttons without an accessible name, as Chromium computes it.
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML)"""


@pytest.fixture(scope="module")
def browser() -> t.Iterator[t.Any]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/browser.sh installs Debian's chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: t.Any) -> t.Iterator[t.Any]:
    # the development CA is not in Chromium's trust store; the tests of certs/ check the chain itself
    context = browser.new_context(ignore_https_errors=True, locale="nl-NL")
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def check_screen(page: t.Any, heading: str | re.Pattern[str]) -> None:
    """Dutch, one h1 with the expected text, every field labelled (waits for the page to arrive)."""
    page.locator("h1", has_text=heading).first.wait_for()
    assert page.locator("html").get_attribute("lang") == "nl", page.url
    h1 = page.locator("h1")
    assert h1.count() == 1, page.url
    text = h1.inner_text()
    assert (heading.search(text) if isinstance(heading, re.Pattern) else heading in text), (page.url, text)
    assert page.evaluate(UNLABELLED) == [], page.url


def log_in(page: t.Any, network: t.Any) -> None:
    """Landing page → development login (keyboard only) → consent page."""
    login = page.get_by_role("button", name="Inloggen met DigiD")
    login.focus()
    page.keyboard.press("Enter")
    check_screen(page, "géén DigiD")
    page.get_by_label("Burgerservicenummer (BSN)").fill(person(network))
    page.get_by_role("button", name="Inloggen", exact=True).click()


def test_fetch_send_and_hospital_queue(page: t.Any, network: t.Any) -> None:
    page.goto(f"{network.pgo_url}/")
    check_screen(page, "Mijn gezondheidsgegevens")
    page.get_by_label("Basisgegevens zorg").check()
    page.get_by_role("button", name="Gegevens ophalen").click()

    page.wait_for_url(re.compile(re.escape(network.front_url)))
    check_screen(page, f"Gegevens ophalen bij {network.aanbieder_weergavenaam}")
    log_in(page, network)
    check_screen(page, "Toestemming geven")
    body = page.locator("main").inner_text()
    assert network.pgo_name in body and "Basisgegevens zorg" in body and network.aanbieder_weergavenaam in body
    page.get_by_role("button", name="Ja, ik geef toestemming").click()

    page.wait_for_url(re.compile(re.escape(network.pgo_url) + "/callback"))
    check_screen(page, re.compile("gegevens", re.I))
    assert page.get_by_role("heading", name="Patiënt en huisarts").count() == 1
    assert page.get_by_role("heading", name="Medicatie").count() == 1

    # send a blood pressure back (Zelfmetingen, Delen)
    page.goto(f"{network.pgo_url}/")
    page.get_by_label("Bovendruk (mmHg)").fill("127")
    page.get_by_label("Onderdruk (mmHg)").fill("83")
    page.get_by_role("button", name="Meting sturen").click()
    page.wait_for_url(re.compile(re.escape(network.front_url)))
    check_screen(page, f"Gegevens delen met {network.aanbieder_weergavenaam}")
    log_in(page, network)
    check_screen(page, "Bevestigen")
    page.get_by_role("button", name="Ja, ik bevestig dit").click()
    page.wait_for_url(re.compile(re.escape(network.pgo_url) + "/callback"))
    assert "127" in page.locator("main").inner_text() and "83" in page.locator("main").inner_text()

    # the hospital sees it
    page.goto(f"{network.front_url}/ziekenhuis/wachtrij")
    check_screen(page, "Inloggen voor medewerkers")
    page.get_by_label("Naam").fill("medewerker")
    page.get_by_label("Wachtwoord").fill(network.hospital_password())
    page.get_by_label("Wachtwoord").press("Enter")
    check_screen(page, "Ontvangen gegevens")
    rows = page.locator("tbody tr").filter(has_text="bloeddruk").filter(has_text=network.pgo_hostname)
    assert rows.count() >= 1, page.locator("main").inner_text()
    for index in range(rows.count()):  # newest first; other tests may send measurements too
        rows.nth(index).get_by_role("link").click()
        detail = page.locator("main").inner_text()
        if "127 mmHg" in detail:
            break
        page.go_back()
    check_screen(page, re.compile("."))
    assert "127 mmHg" in detail and "83 mmHg" in detail, detail


def test_refusing_consent_fetches_nothing(page: t.Any, network: t.Any) -> None:
    page.goto(f"{network.pgo_url}/")
    page.get_by_role("button", name="Gegevens ophalen").click()
    page.wait_for_url(re.compile(re.escape(network.front_url)))
    log_in(page, network)
    check_screen(page, "Toestemming geven")
    refuse = page.get_by_role("button", name="Nee, ik geef geen toestemming")
    refuse.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(network.pgo_url) + "/callback"))
    text = page.locator("main").inner_text()
    # a DVZA answers "Authorization denied." for a refusal and for a stop at the login alike (issue 17)
    assert "Je hebt het inloggen afgebroken of geen toestemming gegeven" in text
    assert page.get_by_role("heading", name="Patiënt en huisarts").count() == 0
