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


def to_development_login(page: t.Any) -> None:
    """Landing page → "Inloggen met DigiD" (keyboard) → make run's choice between the development login
    and the local DigiD (SAML) → the development login."""
    login = page.get_by_role("button", name="Inloggen met DigiD")
    login.focus()
    page.keyboard.press("Enter")
    check_screen(page, "Kies hoe je inlogt")
    page.get_by_role("button", name=re.compile("Ontwikkel-login")).click()
    check_screen(page, "géén DigiD")


def log_in(page: t.Any, network: t.Any) -> None:
    """Landing page → development login (keyboard only) → consent page."""
    to_development_login(page)
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
    # the PGO by its OCL name (issue 17), not its hostname
    rows = page.locator("tbody tr").filter(has_text="bloeddruk").filter(has_text=network.pgo_name)
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


def test_consent_page_and_my_consents_reached_by_a_link(page: t.Any, network: t.Any) -> None:
    """Issue 17: the consent page says who is logged in, what Basisgegevens zorg holds, how long the
    consent lasts and how to withdraw it; *Mijn toestemmingen* is reached by a link from the frontchannel's
    start page, shows the consent in local time and withdraws it."""
    page.goto(f"{network.pgo_url}/")
    page.get_by_label("Basisgegevens zorg").check()
    page.get_by_role("button", name="Gegevens ophalen").click()
    page.wait_for_url(re.compile(re.escape(network.front_url)))
    log_in(page, network)
    check_screen(page, "Toestemming geven")
    body = page.locator("main").inner_text()
    assert "Je bent ingelogd als" in body and "XXX_Helleman" in body
    assert "MRSA" in body and "Na 15 minuten stopt je toestemming vanzelf" in body
    assert "Toestemmingen aanpassen" in body
    assert page.get_by_role("link", name="Mijn toestemmingen").count() >= 1  # in the text and the footer
    page.get_by_role("button", name="Ja, ik geef toestemming").click()
    page.wait_for_url(re.compile(re.escape(network.pgo_url) + "/callback"))
    assert page.get_by_role("heading", name="Patiënt en huisarts").count() == 1

    # the frontchannel's own address: a Dutch start page with the link
    page.goto(f"{network.front_url}/")
    check_screen(page, f"Je gegevens van {network.aanbieder_weergavenaam} in je PGO")
    link = page.locator("main").get_by_role("link", name="Mijn toestemmingen")
    link.focus()
    page.keyboard.press("Enter")
    check_screen(page, "Mijn toestemmingen")
    to_development_login(page)
    page.get_by_label("Burgerservicenummer (BSN)").fill(person(network))
    page.get_by_role("button", name="Inloggen", exact=True).click()
    check_screen(page, "Mijn toestemmingen")
    overview = page.locator("main").inner_text()
    assert network.pgo_name in overview and "Basisgegevens zorg" in overview
    months = "januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december"
    assert re.search(rf"\d{{1,2}} ({months}) \d{{4}}, \d\d:\d\d", overview), overview
    line = page.locator("ul.consents > li").filter(has_text=network.pgo_name).filter(has_text="Basisgegevens zorg")
    line.first.get_by_role("button", name=re.compile("Toestemming intrekken")).click()
    check_screen(page, "Toestemming ingetrokken")

    # an unknown address answers in Dutch too
    missing = page.goto(f"{network.front_url}/bestaat-niet")
    assert missing is not None and missing.status == 404
    check_screen(page, "Deze pagina bestaat niet")
