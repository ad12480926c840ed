"""What the person sees (issue 17, "Patient"): the consent page says who is logged in, what each
gegevensdienst holds, which asked-for data is not there, how long the consent lasts and how to withdraw
it; *Mijn toestemmingen* is linked from every page, shows local Dutch times and one line for identical
consents; one register (je/jij); the hospital's house style from configuration on every page, under a
strict CSP (no inline styles or scripts)."""

from __future__ import annotations

import re
import typing as t
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from oauth.directory import StaticDirectory
from oauth.models import Consent
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import PGO
from tests.oauth.conftest import REDIRECT
from tests.oauth.conftest import Browser
from tests.support import make_app

#: formal address ("u", "uw") in visible text; the pages use je/jij only
FORMAL = re.compile(r"\b(u|uw|Uw|U)\b")


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"</?(strong|a|span|em)\b[^>]*>", "", html)  # inline: no word break
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def assert_person_page(html: str) -> None:
    """Dutch, informal, no inline style or script (strict CSP), and *Mijn toestemmingen* linked."""
    assert '<html lang="nl">' in html
    assert not FORMAL.search(visible_text(html)), FORMAL.search(visible_text(html))
    assert "<style" not in html and "style=" not in html and "<script" not in html
    assert 'href="/oauth/toestemmingen"' in html


def logged_in_manager(app: t.Any, bsn: str = HELLEMAN_BSN) -> Browser:
    manage = Browser(app)
    start = manage.client.get("/oauth/toestemmingen")
    login_page = manage.client.post("/oauth/toestemmingen/login", data={"csrf_token": manage.csrf(start)})
    assert manage.client.post("/oauth/login/finish", data={"csrf_token": manage.csrf(login_page), "bsn": bsn}
                              ).status_code == 303
    return manage


def test_consent_page_says_who_what_how_long_and_how_to_stop(browser: Browser) -> None:
    landing = browser.authorize(scope="umcdemo~48 umcdemo~51")
    assert_person_page(landing.get_data(as_text=True))
    browser.login(landing, HELLEMAN_BSN)
    page = browser.client.get("/oauth/consent")
    html = page.get_data(as_text=True)
    text = visible_text(html)
    assert_person_page(html)
    assert "Je bent ingelogd als Johan XXX_Helleman." in text
    # MedMij R2.2.4 text
    assert "Wil je de gegevens die UMC Demo over jou heeft in jouw PGO zetten?" in text
    assert "Dan heeft UMC Demo jouw toestemming nodig om deze gegevens met Test-PGO te delen." in text
    # what Basisgegevens zorg holds (configuration defaults)
    assert "MRSA" in text and "alcohol en drugs" in text
    # 51 was asked for, Helleman has no documents: named as not there, not dropped
    assert re.search(r"Deze gegevens zijn er niet .* Documenten", text)
    assert "Je toestemming geldt voor één keer" in text and "Na 15 minuten stopt je toestemming vanzelf" in text
    assert "'Toestemmingen aanpassen'" in text and "Mijn toestemmingen" in text
    assert "onbepaalde tijd" not in text  # long-term consent is off here


def test_long_term_option_names_the_lapse_in_words(browser: Browser, oauth_app: t.Any) -> None:
    settings = oauth_app.extensions["oauth"].settings
    settings.long_term_consent = True
    try:
        browser.login(browser.authorize(scope="umcdemo~48"), HELLEMAN_BSN)
        text = visible_text(browser.client.get("/oauth/consent").get_data(as_text=True))
    finally:
        settings.long_term_consent = False
    assert "Als je langer dan zes maanden geen gegevens in je PGO zet, is de langdurige toestemming niet meer " \
           "geldig." in text
    assert "kiezen voor toestemming voor onbepaalde tijd" in text


def test_descriptions_come_from_configuration(browser: Browser, oauth_app: t.Any) -> None:
    settings = oauth_app.extensions["oauth"].settings
    before = settings.dienst_descriptions
    settings.dienst_descriptions = {"48": "Alles wat wij over je gezondheid weten."}
    try:
        browser.login(browser.authorize(scope="umcdemo~48"), HELLEMAN_BSN)
        text = visible_text(browser.client.get("/oauth/consent").get_data(as_text=True))
    finally:
        settings.dienst_descriptions = before
    assert "Alles wat wij over je gezondheid weten." in text and "MRSA" not in text


def test_delen_confirmation_in_the_same_register(browser: Browser) -> None:
    landing = browser.authorize(scope="umcdemo~53")
    browser.login(landing, HELLEMAN_BSN)
    html = browser.client.get("/oauth/consent").get_data(as_text=True)
    assert_person_page(html)
    text = visible_text(html)
    assert "Je bevestigt dat Test-PGO deze gegevens mag delen met UMC Demo" in text
    assert "Metingen die je zelf hebt gedaan" in text and "Deze bevestiging geldt alleen voor dit keer" in text


def test_my_consents_groups_identical_consents_in_local_time(browser: Browser, oauth_app: t.Any) -> None:
    tokens = [browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"] for _ in range(4)]
    other = browser.token(browser.code_for(scope="umcdemo~52")).get_json()["access_token"]
    manage = logged_in_manager(oauth_app)
    overview = manage.client.get("/oauth/toestemmingen")
    html = overview.get_data(as_text=True)
    assert_person_page(html)
    text = visible_text(html)
    assert "Je bent ingelogd als Johan XXX_Helleman." in text
    with oauth_app.extensions["dvza.db"].sessionmaker() as session:
        mine = session.scalars(select(Consent).where(Consent.patient_id == "medmij-bgz-patient-ts-01",
                                                     Consent.revoked_at.is_(None),
                                                     Consent.gegevensdiensten == "48")
                               .order_by(Consent.granted_at.desc())).all()
    newest = mine[0].granted_at
    local = (newest if newest.tzinfo else newest.replace(tzinfo=ZoneInfo("UTC"))).astimezone(
        ZoneInfo("Europe/Amsterdam"))
    months = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
              "november", "december"]
    expected = f"{local.day} {months[local.month - 1]} {local.year}, {local:%H:%M}"
    assert f"het laatst op {expected}" in text, text
    lines = re.findall(r"/oauth/toestemmingen/([0-9a-f-]{36})/intrekken", html)
    assert len(lines) == 2  # four identical consents are one line; the one for 52 is another
    assert re.search(r"Je gaf deze toestemming [4-9] keer", text)
    line_48 = next(i for i in lines if i == mine[0].id)
    revoked = manage.client.post(f"/oauth/toestemmingen/{line_48}/intrekken",
                                 data={"csrf_token": manage.csrf(overview)})
    assert revoked.status_code == 200 and "Toestemming ingetrokken" in revoked.get_data(as_text=True)
    assert all(browser.fhir("Patient", token).status_code == 401 for token in tokens)
    assert browser.fhir("Observation?category=http://hl7.org/fhir/observation-category|vital-signs",
                        other).status_code == 200
    after = visible_text(manage.client.get("/oauth/toestemmingen").get_data(as_text=True))
    assert "Meetwaarden vitale functies" in after and "Basisgegevens zorg" not in after


def test_times_follow_the_configured_zone() -> None:
    from datetime import UTC

    from oauth.presentation import duration_in_words
    from oauth.presentation import fhir_time
    from oauth.presentation import local_time

    winter, summer = datetime(2026, 11, 28, 13, 5, tzinfo=UTC), datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    assert local_time(winter) == "28 november 2026, 14:05"
    assert local_time(summer) == "1 juli 2026, 10:30"
    assert local_time(winter.replace(tzinfo=None)) == "28 november 2026, 14:05"  # stored naive = UTC
    assert local_time(winter, "America/Curacao") == "28 november 2026, 09:05"
    assert fhir_time("2026-03-03T08:30:00Z") == "3 maart 2026, 09:30" and fhir_time("1980-03-12") == "12 maart 1980"
    assert fhir_time("1980-03") == "maart 1980" and fhir_time("1980") == "1980"
    from datetime import timedelta

    assert duration_in_words(timedelta(seconds=900)) == "15 minuten"
    assert duration_in_words(timedelta(days=183)) == "zes maanden"
    assert duration_in_words(timedelta(hours=1)) == "één uur"


def test_every_page_is_informal_and_links_my_consents(browser: Browser, oauth_app: t.Any) -> None:
    landing = browser.authorize()
    login_page = browser.client.post("/oauth/login", data={"csrf_token": browser.csrf(landing)})
    html = login_page.get_data(as_text=True)
    assert_person_page(html)
    assert "<title>Inloggen (testomgeving) – UMC Demo</title>" in html  # the hospital's name, not empty
    for response in (
        browser.authorize(client_id="onbekend.example.nl", redirect_uri="https://onbekend.example.nl/cb"),
        browser.authorize(redirect_uri="https://evil.example.org/cb"),
        Browser(oauth_app).client.post("/oauth/login", data={"csrf_token": "x"}),  # no flow
        Browser(oauth_app).client.get("/oauth/toestemmingen"),
    ):
        assert_person_page(response.get_data(as_text=True))
    unknown = Browser(oauth_app)
    start = unknown.client.get("/oauth/toestemmingen")
    login = unknown.client.post("/oauth/toestemmingen/login", data={"csrf_token": unknown.csrf(start)})
    answer = unknown.client.post("/oauth/login/finish", data={"csrf_token": unknown.csrf(login), "bsn": "111222333"})
    assert answer.status_code == 404 and "geen toestemmingen van jou" in answer.get_data(as_text=True)
    assert_person_page(answer.get_data(as_text=True))


# ------------------------------------------------------------------------------------- branding
LOGO = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


@pytest.fixture()
def branded(databases: t.Any, tmp_path_factory: t.Any, tmp_path: Path) -> t.Iterator[t.Any]:
    logo = tmp_path / "logo.svg"
    logo.write_bytes(LOGO)
    app = make_app(databases, tmp_path_factory, FRONTCHANNEL_SECURE_COOKIES=False, AANBIEDER_WEERGAVENAAM="Isala",
                   BRAND_LOGO=str(logo), BRAND_COLOURS={"accent": "#5a2d82", "header-background": "#fff"},
                   BRAND_CONTACT_URL="https://www.isala.nl/contact", BRAND_PRIVACY_URL="https://www.isala.nl/privacy")
    app.extensions["oauth"].directory = StaticDirectory(clients={PGO: "Test-PGO"}, whitelist={PGO},
                                                        diensten={"48": "Basisgegevens zorg"})
    yield app
    app.extensions["dvza.db"].dispose()


def test_house_style_is_configuration_on_every_page(branded: t.Any) -> None:
    client = branded.test_client()
    pages = [client.get("/oauth/authorize?response_type=code&client_id=pgo.example.nl&scope=umcdemo&state=s"
                        f"&redirect_uri={REDIRECT}"),
             client.get("/oauth/toestemmingen"),
             client.get("/oauth/authorize?client_id=nobody")]
    for page in pages:
        html = page.get_data(as_text=True)
        assert_person_page(html)
        assert "– Isala</title>" in html
        assert '<img class="logo" src="/oauth/huisstijl/logo" alt="">' in html
        assert '<link rel="stylesheet" href="/oauth/huisstijl.css">' in html
        assert '<a href="https://www.isala.nl/contact">Contact met Isala</a>' in html
        assert '<a href="https://www.isala.nl/privacy">Privacy</a>' in html
    css = client.get("/oauth/huisstijl.css")
    assert css.mimetype == "text/css" and "--accent: #5a2d82;" in css.get_data(as_text=True)
    assert "--header-background: #fff;" in css.get_data(as_text=True)
    logo = client.get("/oauth/huisstijl/logo")
    assert logo.status_code == 200 and logo.mimetype == "image/svg+xml" and logo.data == LOGO
    assert "sandbox" in logo.headers["Content-Security-Policy"]


def test_without_house_style_the_pages_still_work(browser: Browser) -> None:
    html = browser.authorize().get_data(as_text=True)
    assert "<img" not in html and "Contact met" not in html
    client = browser.client
    assert client.get("/oauth/huisstijl/logo").status_code == 404
    assert "no house colours" in client.get("/oauth/huisstijl.css").get_data(as_text=True)


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("BRAND_COLOURS", {"accent": "red; } body { display: none"}, "BRAND_COLOURS"),
    ("BRAND_COLOURS", {"background-image": "#fff"}, "unknown colour"),
    ("BRAND_LOGO", "/nonexistent/logo.svg", "does not exist"),
    ("BRAND_LOGO", "/etc/passwd", "BRAND_LOGO must be"),
    ("BRAND_CONTACT_URL", "javascript:alert(1)", "BRAND_CONTACT_URL"),
    ("BRAND_PRIVACY_URL", "http://plain.example/privacy", "BRAND_PRIVACY_URL"),
    ("GEGEVENSDIENST_BESCHRIJVINGEN", {"48": 5}, "GEGEVENSDIENST_BESCHRIJVINGEN"),
    ("TIMEZONE", "Mars/Olympus", "TIMEZONE"),
])
def test_bad_house_style_stops_the_start(databases: t.Any, tmp_path_factory: t.Any, setting: str, value: t.Any,
                                         message: str) -> None:
    from dvza.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        make_app(databases, tmp_path_factory, **{setting: value})
