"""Issue 17 (PGO vendor), in headless Chromium: the typed BSN with Enter, the narrowed scope, a document
opened in the simulator, a questionnaire answered in the simulator and seen on the hospital page, and
langdurige toestemming."""

from __future__ import annotations

import re
import subprocess
import sys
import typing as t

import pytest

from dvza.devtools.cli import DEVELOPMENT_BSNS
from tests.e2e.conftest import person
from tests.e2e.test_browser_flow import browser  # noqa: F401 - the shared Chromium fixture
from tests.e2e.test_browser_flow import check_screen
from tests.e2e.test_browser_flow import page  # noqa: F401 - a fresh page per test
from tests.e2e.test_browser_flow import to_development_login
from tests.support import CERT_SETS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.e2e]

MESKER = "999911284"


def log_in_typing(page: t.Any, bsn: str) -> None:  # noqa: F811
    """Landing page → development login; the BSN typed and sent with Enter (not a test-person button)."""
    to_development_login(page)
    field = page.get_by_label("Burgerservicenummer (BSN)")
    field.fill(bsn)
    field.press("Enter")


def fetch(page: t.Any, network: t.Any, diensten: list[str], bsn: str, *, long_term: bool = False) -> None:  # noqa: F811
    page.goto(f"{network.pgo_url}/")
    for dienst in ("48", "51", "52"):
        page.locator(f"#dienst-{dienst}").set_checked(dienst in diensten)
    page.get_by_role("button", name="Gegevens ophalen").click()
    page.wait_for_url(re.compile(re.escape(network.front_url)))
    log_in_typing(page, bsn)
    check_screen(page, "Toestemming geven")
    if long_term:
        page.get_by_label("Ik geef toestemming voor onbepaalde tijd").check()
    page.get_by_role("button", name="Ja, ik geef toestemming").click()
    page.wait_for_url(re.compile(re.escape(network.pgo_url) + "/callback"))


def test_enter_in_the_bsn_field_logs_in_the_typed_person(page: t.Any, network: t.Any) -> None:  # noqa: F811
    assert MESKER != network.dev_persons()[0]["bsn"]  # the first test-person button is someone else
    fetch(page, network, ["48"], MESKER)
    check_screen(page, "Gegevens van")
    assert "XXX_Mesker" in page.locator("main").inner_text()


def test_fewer_gegevensdiensten_granted_shows_what_was_granted(page: t.Any, network: t.Any) -> None:  # noqa: F811
    fetch(page, network, ["48", "51"], person(network))  # XXX_Helleman has no documents
    check_screen(page, "Gegevens van")
    text = page.locator("main").inner_text()
    assert "gaf geen toegang tot: Documenten" in text
    assert page.get_by_role("heading", name="Patiënt en huisarts").count() == 1
    assert page.get_by_role("heading", name="Documenten").count() == 0


def test_a_document_is_opened_in_the_simulator(page: t.Any, network: t.Any) -> None:  # noqa: F811
    fetch(page, network, ["51"], person(network, "PDF/A"))
    check_screen(page, "Gegevens van")
    link = page.locator("#documenten a[href*='/document/']").first
    with page.expect_response(lambda r: "/document/" in r.url) as opened:
        link.click(modifiers=[])
    answer = opened.value
    # Chromium shows it in its PDF viewer (the response body then reads as the viewer's page)
    assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == 'inline; filename="document-1.pdf"'


def test_long_term_consent_fetches_again_without_a_login(page: t.Any, network: t.Any) -> None:  # noqa: F811
    fetch(page, network, ["48"], person(network), long_term=True)
    check_screen(page, "Gegevens van")
    page.get_by_role("button", name="Nu opnieuw ophalen").click()
    page.wait_for_url(re.compile(re.escape(network.pgo_url) + "/gegevens/"))
    assert "opnieuw opgehaald met je langdurige toestemming" in page.locator("main").inner_text()


def test_a_questionnaire_answered_in_the_simulator_reaches_the_hospital(page: t.Any, network: t.Any) -> None:  # noqa: F811
    template = (CERT_SETS["questionnaires"] / "_reference/resources/resources-specific" /
                "medmij-questionnaires-vl-QuestionnaireProvisioningTask-XXX_Repscher-PHQ9-REQUESTED.xml")
    subprocess.run([sys.executable, "-m", "dvza.cli", "testdata", "task", str(template)], env=network.dvza_env(),
                   check=True, capture_output=True)
    bsn = DEVELOPMENT_BSNS["XXXREPSCHER"]
    page.goto(f"{network.pgo_url}/")
    page.get_by_role("button", name="Vragenlijsten bekijken").click()
    page.wait_for_url(re.compile(re.escape(network.front_url)))
    log_in_typing(page, bsn)
    check_screen(page, "Toestemming geven")
    page.get_by_role("button", name="Ja, ik geef toestemming").click()
    check_screen(page, "Vragenlijsten van")
    page.get_by_role("button", name=re.compile("^Invullen")).first.click()
    check_screen(page, re.compile("PHQ", re.I))
    for group in page.locator("fieldset").all():
        group.locator("input[type=radio]").first.check()
    page.get_by_role("button", name="Versturen").click()
    page.wait_for_url(re.compile(re.escape(network.front_url)))
    log_in_typing(page, bsn)
    check_screen(page, "Bevestigen")
    page.get_by_role("button", name="Ja, ik bevestig dit").click()
    check_screen(page, "Het is gestuurd")
    assert "Antwoorden op" in page.locator("main").inner_text()

    page.goto(f"{network.front_url}/ziekenhuis/wachtrij")
    page.get_by_label("Naam").fill("medewerker")
    page.get_by_label("Wachtwoord").fill(network.hospital_password())
    page.get_by_label("Wachtwoord").press("Enter")
    check_screen(page, "Ontvangen gegevens")
    rows = page.locator("tbody tr").filter(has_text="XXX_Repscher").filter(has_text="PHQ")
    assert rows.count() >= 1, page.locator("main").inner_text()
    # staff read the answers as question → answer (issue 17)
    rows.first.get_by_role("link").first.click()
    page.locator("dl.answers").first.wait_for()
    assert page.get_by_role("heading", name="Vragenlijst: Patient Health Questionnaire (PHQ-9)").count() == 1
    questions = page.locator("dl.answers dt")
    answers = page.locator("dl.answers dd")
    assert questions.count() >= 1 and answers.count() >= 1
    assert all(q.strip() for q in questions.all_inner_texts()) and all(a.strip() for a in answers.all_inner_texts())


def test_reloading_the_callback_shows_the_result_again(page: t.Any, network: t.Any) -> None:  # noqa: F811
    fetch(page, network, ["48"], MESKER)
    check_screen(page, "Gegevens van")
    page.reload()  # the code is used up; the simulator shows what came of it
    check_screen(page, "Gegevens van")
    assert "XXX_Mesker" in page.locator("main").inner_text()
    assert "hoort niet bij een verzoek" not in page.locator("main").inner_text()


def test_cancelling_the_login_is_not_called_a_refusal(page: t.Any, network: t.Any) -> None:  # noqa: F811
    page.goto(f"{network.pgo_url}/")
    page.get_by_role("button", name="Gegevens ophalen").click()
    page.wait_for_url(re.compile(re.escape(network.front_url)))
    to_development_login(page)
    page.get_by_role("button", name="Annuleren").click()
    check_screen(page, "Dat is niet gelukt")
    assert "Je hebt het inloggen afgebroken of geen toestemming gegeven" in page.locator("main").inner_text()
