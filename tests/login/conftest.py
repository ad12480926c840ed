"""Real identity providers for the login-adapter tests, started as separate processes.

* ``digid``: the local DigiD-like SAML IdP (``dvza.devtools.digid_idp``) on two free ports: the
  frontchannel login page and the SOAP backchannel with mutual TLS; certificates from ``certs/``.
* ``saml_app``: the DVZA with ``LOGIN_ADAPTER=digid-saml`` pointed at it, the BgZ/PDF/A Cert data and
  the MedMij directory of ``tests/oauth``.

The person's browser is the Flask test client for the DVZA and ``requests`` for the IdP: every
message between them travels as a real browser's would (redirects, form posts), and the DVZA
resolves the artifact over real mutual TLS.
"""

from __future__ import annotations

import re
import socket
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from oauth.directory import StaticDirectory
from tests.oauth.conftest import BALTUS_BSN
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import NOT_WHITELISTED
from tests.oauth.conftest import OTHER_PGO
from tests.oauth.conftest import PGO
from tests.oauth.conftest import UNLISTED
from tests.oauth.conftest import Browser
from tests.support import load_cert_data
from tests.support import make_app

SP_ENTITY_ID = "https://localhost/oauth/saml/metadata"
SP_BASE_URL = "https://localhost"
PERSONS = [{"name": "Johan XXX_Helleman", "bsn": HELLEMAN_BSN}, {"name": "XXX_Baltus", "bsn": BALTUS_BSN}]
DIRECTORY = dict(
    clients={PGO: "Test-PGO", OTHER_PGO: "Andere PGO", NOT_WHITELISTED: "Vergeten PGO"},
    whitelist={PGO, OTHER_PGO, UNLISTED},
    diensten={"48": "Basisgegevens zorg", "51": "Documenten"},
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def login_pki(tmp_path_factory: pytest.TempPathFactory) -> t.Any:
    from certs.pki import ensure_dev_pki

    return ensure_dev_pki(tmp_path_factory.mktemp("login-pki"), server_hostnames=["localhost", "127.0.0.1"],
                          clients=["dvza.localhost", "andere-dienst.localhost"])


def saml_config(idp: t.Any, pki: t.Any, **overrides: t.Any) -> dict[str, t.Any]:
    cert, key = idp.sp_signing_files()
    return {
        "LOGIN_ADAPTER": "digid-saml", "SAML_SP_ENTITY_ID": SP_ENTITY_ID, "SAML_SP_BASE_URL": SP_BASE_URL,
        "SAML_SP_KEY": str(key), "SAML_SP_CERT": str(cert), "SAML_IDP_METADATA": str(idp.idp_metadata),
        "SAML_TLS_CERT": str(pki.client_cert("dvza.localhost")), "SAML_TLS_KEY": str(pki.client_key("dvza.localhost")),
        "SAML_TLS_CA": str(pki.ca_cert), "SAML_TIMEOUT": 5,
    } | overrides


@pytest.fixture(scope="session")
def digid(login_pki: t.Any, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    from dvza.authorization import saml_settings
    from dvza.config import defaults
    from dvza.devtools.digid_idp import DigidIdp
    from dvza.pgo import localnames

    localnames.install()
    idp = DigidIdp(tmp_path_factory.mktemp("digid"), login_pki, front_port=free_port(), back_port=free_port(),
                   persons=PERSONS)
    idp.prepare(saml_settings(defaults(str(idp.root)) | saml_config(idp, login_pki)))
    idp.start()
    try:
        yield idp
    finally:
        idp.stop()


@pytest.fixture(scope="module")
def saml_app(databases: t.Any, tmp_path_factory: pytest.TempPathFactory, digid: t.Any,
             login_pki: t.Any) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, FRONTCHANNEL_SECURE_COOKIES=False,
                   **saml_config(digid, login_pki))
    load_cert_data(app, "bgz", "pdfa")
    app.extensions["oauth"].directory = StaticDirectory(**DIRECTORY)
    yield app
    app.extensions["dvza.db"].dispose()


class IdpBrowser(Browser):
    """The test client for the DVZA plus a ``requests`` session for the IdP's pages."""

    def __init__(self, app: t.Any, idp: t.Any):
        super().__init__(app)
        self.idp = idp
        self.web = requests.Session()
        self.web.trust_env = False  # REQUESTS_CA_BUNDLE would override the development CA
        self.web.verify = str(idp.pki.ca_cert)

    def to_idp(self, landing: t.Any) -> t.Any:
        """Landing page → our AuthnRequest → the IdP's login page (a ``requests`` response)."""
        sent = self.client.post("/oauth/login", data={"csrf_token": self.csrf(landing)})
        assert sent.status_code in (302, 303), sent.get_data(as_text=True)[:300]
        location = sent.headers["Location"]
        assert location.startswith(self.idp.front_url + "/saml/idp/request_authentication?"), location
        page = self.web.get(location, timeout=10)
        assert page.status_code == 200, page.text[-500:]
        return page

    def at_idp(self, page: t.Any, *, bsn: str = HELLEMAN_BSN, level: str = "substantieel", fault: str = "",
               action: str = "login") -> str:
        """Fill in the IdP's page; returns the URL the IdP sends the browser back to (with the artifact)."""
        key = re.search(r'name="key" value="([^"]+)"', page.text)
        assert key, page.text[:500]
        answer = self.web.post(f"{self.idp.front_url}/saml/idp/login", allow_redirects=False, timeout=10,
                               data={"key": key.group(1), "bsn": bsn, "level": level, "fault": fault,
                                     "action": action})
        assert answer.status_code == 303, answer.text[:500]
        return str(answer.headers["Location"])

    def back_at_sp(self, url: str) -> t.Any:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == SP_BASE_URL and parts.path == "/oauth/login/finish", url
        return self.client.get(f"{parts.path}?{parts.query}")

    def login_via_idp(self, landing: t.Any, **answer: t.Any) -> t.Any:
        return self.back_at_sp(self.at_idp(self.to_idp(landing), **answer))


@pytest.fixture()
def person(saml_app: t.Any, digid: t.Any) -> IdpBrowser:
    return IdpBrowser(saml_app, digid)


def repo_file(*parts: str) -> Path:
    return Path(__file__).resolve().parents[2].joinpath(*parts)


def back_link(response: t.Any) -> dict[str, str]:
    """The failure page's way back to the PGO: the MedMij error it carries."""
    import html
    from urllib.parse import parse_qs

    from tests.oauth.conftest import REDIRECT

    body = response.get_data(as_text=True)
    match = re.search(r'<a class="button" href="([^"]+)"', body)
    assert match, body[:800]
    url = html.unescape(match.group(1))
    assert url.startswith(REDIRECT), url
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def assert_failure_page(response: t.Any, *texts: str, unavailable: bool = False) -> None:
    """A clear Dutch page for the person; the PGO gets ``unauthorized_client`` with its ``state``."""
    body = response.get_data(as_text=True)
    assert response.status_code == 401, body[:500]
    assert '<html lang="nl">' in body and body.count("<h1>") == 1 and "Inloggen is niet gelukt" in body
    for text in texts:
        assert text in body, body
    params = back_link(response)
    assert params["error"] == "unauthorized_client" and params["state"] == "st-123"
    expected = "The identity provider is not available." if unavailable else "The person could not be authenticated."
    assert params["error_description"] == expected
