"""An app with the BgZ and PDF/A Cert data, a fixed MedMij directory and test PGO certificates."""

from __future__ import annotations

import re
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest

from oauth.directory import StaticDirectory
from tests.oauth.pki import client_certificate_pem
from tests.support import load_cert_data
from tests.support import make_app

PGO = "pgo.example.nl"
OTHER_PGO = "andere-pgo.example.nl"
UNLISTED = "niet-gelijst.example.nl"
NOT_WHITELISTED = "niet-op-whitelist.example.nl"
REDIRECT = f"https://{PGO}/medmij/callback"
HELLEMAN_BSN = "999911120"
BALTUS_BSN = "999910796"

CERTS = {host: client_certificate_pem(host) for host in (PGO, OTHER_PGO, UNLISTED, NOT_WHITELISTED)}


@pytest.fixture(scope="module")
def oauth_app(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, FRONTCHANNEL_SECURE_COOKIES=False,
                   DEV_LOGIN_PERSONS=[{"name": "Johan XXX_Helleman", "bsn": HELLEMAN_BSN}])
    load_cert_data(app, "bgz", "pdfa")
    app.extensions["oauth"].directory = StaticDirectory(
        clients={PGO: "Test-PGO", OTHER_PGO: "Andere PGO", NOT_WHITELISTED: "Vergeten PGO"},
        whitelist={PGO, OTHER_PGO, UNLISTED},
        diensten={"48": "Basisgegevens zorg", "51": "Documenten", "52": "Meetwaarden vitale functies",
                  "53": "Meetwaarden vitale functies (Delen)", "57": "Documenten (Delen)",
                  "59": "Vragenlijsten", "60": "Antwoorden vragenlijst"},
    )
    yield app
    app.extensions["dvza.db"].dispose()


class Browser:
    """The person's browser (a test client with cookies) plus the PGO's backchannel calls."""

    def __init__(self, app: t.Any):
        self.app = app
        self.client = app.test_client()

    def authorize(self, **params: str) -> t.Any:
        query = {"response_type": "code", "client_id": PGO, "redirect_uri": REDIRECT, "scope": "umcdemo",
                 "state": "st-123", "MedMij-Request-ID": "11111111-1111-4111-8111-111111111111",
                 "X-Correlation-ID": "22222222-2222-4222-8222-222222222222"} | params
        query = {k: v for k, v in query.items() if v is not None}
        return self.client.get("/oauth/authorize?" + urlencode(query))

    @staticmethod
    def csrf(response: t.Any) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
        assert match, response.get_data(as_text=True)[:500]
        return match.group(1)

    def login(self, landing: t.Any, bsn: str) -> t.Any:
        login_page = self.client.post("/oauth/login", data={"csrf_token": self.csrf(landing)})
        assert login_page.status_code == 200, login_page.get_data(as_text=True)[:300]
        return self.client.post("/oauth/login/finish", data={"csrf_token": self.csrf(login_page), "bsn": bsn})

    def consent(self, decision: str = "grant", **extra: str) -> t.Any:
        page = self.client.get("/oauth/consent")
        assert page.status_code == 200, page.get_data(as_text=True)[:300]
        return self.client.post("/oauth/consent", data={"csrf_token": self.csrf(page), "decision": decision, **extra})

    def code_for(self, bsn: str = HELLEMAN_BSN, **params: str) -> str:
        landing = self.authorize(**params)
        assert landing.status_code == 200, landing.get_data(as_text=True)[:300]
        after_login = self.login(landing, bsn)
        assert after_login.status_code == 303, after_login.headers.get("Location")
        granted = self.consent()
        assert granted.status_code == 302
        return redirect_params(granted)["code"]

    def token(self, code: str, *, client_id: str = PGO, cert: str | None = PGO, redirect_uri: str = REDIRECT,
              **extra: str) -> t.Any:
        data = {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                "redirect_uri": redirect_uri} | extra
        environ = {"SSL_CLIENT_CERT": CERTS[cert]} if cert else {}
        return self.client.post("/oauth/token", data=data, environ_overrides=environ,
                                headers={"MedMij-Request-ID": "r", "X-Correlation-ID": "c"})

    def fhir(self, path: str, access_token: str, cert: str | None = PGO) -> t.Any:
        environ = {"SSL_CLIENT_CERT": CERTS[cert]} if cert else {}
        return self.client.get(f"/fhir/{path}", headers={"Authorization": f"Bearer {access_token}"},
                               environ_overrides=environ)


def redirect_params(response: t.Any) -> dict[str, str]:
    location = response.headers["Location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.fixture()
def browser(oauth_app: t.Any) -> Browser:
    return Browser(oauth_app)
