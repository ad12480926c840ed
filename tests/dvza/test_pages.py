"""The frontchannel's start page and the Dutch error pages (issue 17): the README's frontchannel URL and
any unknown path answer in Dutch, in the house style, instead of Werkzeug's English "Not Found"; machine
interfaces keep their own error forms."""

from __future__ import annotations

import typing as t

import pytest

from tests.oauth.test_person_pages import assert_person_page
from tests.oauth.test_person_pages import visible_text


def test_the_start_page_explains_and_links_my_consents(client: t.Any) -> None:
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert_person_page(html)
    assert "<h1>Je gegevens van UMC Demo in je PGO</h1>" in html and html.count("<h1>") == 1
    assert "Je begint altijd in je PGO" in visible_text(html)


@pytest.mark.parametrize(("method", "path", "status", "heading"), [
    ("GET", "/bestaat-niet", 404, "Deze pagina bestaat niet"),
    ("GET", "/oauth/bestaat-niet", 404, "Deze pagina bestaat niet"),
    ("GET", "/ziekenhuis/bestaat-niet", 404, "Deze pagina bestaat niet"),
    ("POST", "/", 405, "Dat kan hier niet"),
    ("POST", "/ziekenhuis/inloggen", 400, "Dit verzoek klopt niet"),  # no CSRF token
])
def test_person_facing_errors_are_dutch_pages(client: t.Any, method: str, path: str, status: int,
                                              heading: str) -> None:
    response = client.open(path, method=method)
    html = response.get_data(as_text=True)
    assert response.status_code == status and response.mimetype == "text/html"
    assert_person_page(html)
    assert f"<h1>{heading}</h1>" in html and "Not Found" not in html and "Method Not Allowed" not in html
    assert 'href="/"' in html


def test_house_style_on_the_error_page(databases: t.Any, tmp_path_factory: t.Any) -> None:
    from tests.support import make_app

    app = make_app(databases, tmp_path_factory, AANBIEDER_WEERGAVENAAM="Isala",
                   BRAND_PRIVACY_URL="https://www.isala.nl/privacy")
    html = app.test_client().get("/nergens").get_data(as_text=True)
    assert "<title>Deze pagina bestaat niet – Isala</title>" in html and "https://www.isala.nl/privacy" in html
    app.extensions["dvza.db"].dispose()


def test_machine_interfaces_keep_their_own_errors(client: t.Any) -> None:
    fhir = client.get("/fhir/Patient/x/y/z")
    assert fhir.mimetype == "application/fhir+json" and fhir.get_json()["resourceType"] == "OperationOutcome"
    token = client.get("/oauth/token")
    assert token.status_code == 405
    for path in ("/queue/api/bestaat-niet", "/healthz/x"):
        response = client.get(path)
        assert response.status_code == 404 and "Deze pagina bestaat niet" not in response.get_data(as_text=True)
