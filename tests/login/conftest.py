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

import contextlib
import dataclasses
import json
import re
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from dvza.devtools.processes import free_port
from dvza.devtools.processes import wait_until_answers
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


# ------------------------------------------------------------------------------------------ OIDC
OIDC_CLIENT_ID = "dvza-test"
#: the second client at the OP: tls_client_auth (RFC 8705 §2.1) with the certificate of this host name
OIDC_TLS_CLIENT_ID = "dvza-mtls"
OIDC_TLS_CLIENT_HOST = "dvza.localhost"
OIDC_REDIRECT_URI = "https://localhost/oauth/login/finish"
OP_DIR = Path(__file__).resolve().parents[1] / "idp" / "oidc"


class LocalOp:
    """The ``oidc-provider`` process (tests/idp/oidc/op.mjs) and its test controls."""

    def __init__(self, root: Path, pki: t.Any):
        from joserfc.jwk import RSAKey

        self.root, self.pki = root, pki
        self.port = free_port()
        self.issuer = f"https://localhost:{self.port}"
        client_key = RSAKey.generate_key(2048, private=True)
        self.client_key_file = root / "client-key.pem"
        self.client_key_file.write_bytes(client_key.as_pem(private=True))
        public = client_key.as_dict(private=False) | {"kid": "dvza-test-1", "use": "sig", "alg": "RS256"}
        self.config_file = root / "op.json"
        self.config_file.write_text(json.dumps({
            "port": self.port, "issuer": self.issuer, "tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key),
            "ca": str(pki.ca_cert),
            "client": {"client_id": OIDC_CLIENT_ID, "redirect_uri": OIDC_REDIRECT_URI, "jwk": public},
            "tls_client": {"client_id": OIDC_TLS_CLIENT_ID, "redirect_uri": OIDC_REDIRECT_URI,
                           "san_dns": OIDC_TLS_CLIENT_HOST}}))
        self.process: t.Any = None

    def start(self) -> None:
        import subprocess

        self.process = subprocess.Popen(["node", "op.mjs", str(self.config_file)], cwd=OP_DIR,
                                        stdout=subprocess.DEVNULL)
        wait_until_answers(f"{self.issuer}/.well-known/openid-configuration", self.process, timeout=30,
                           verify=str(self.pki.ca_cert))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def discovery(self) -> dict[str, t.Any]:
        answer = requests.get(f"{self.issuer}/.well-known/openid-configuration", verify=str(self.pki.ca_cert),
                              timeout=5)
        assert answer.ok, answer.text
        return t.cast(dict[str, t.Any], answer.json())

    def control(self, **values: t.Any) -> dict[str, t.Any]:
        answer = requests.post(f"{self.issuer}/_test/control", data=values, verify=str(self.pki.ca_cert), timeout=5)
        assert answer.ok, answer.text
        return t.cast(dict[str, t.Any], answer.json())

    @contextlib.contextmanager
    def id_token_claims(self, **claims: t.Any) -> t.Iterator[Reissued]:
        """While inside: the token endpoint's ID tokens carry ``claims`` instead of the real ones
        (``None`` removes one), validly signed with the provider's current key; normal again after,
        when the yielded :class:`Reissued` says how many such tokens the provider handed out."""
        assert self.control(id_token=json.dumps(claims))["id_token"] == claims
        reissued = Reissued()
        try:
            yield reissued
        finally:
            reissued.count = self.control(id_token="{}")["before"]["reissued"]


@dataclasses.dataclass
class Reissued:
    """How many ID tokens the OP handed out with replaced claims (:meth:`LocalOp.id_token_claims`)."""

    count: int = 0


@pytest.fixture(scope="session")
def oidc_op(login_pki: t.Any, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[LocalOp]:
    import shutil

    if shutil.which("node") is None or not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("node or the npm package oidc-provider is missing (bash .ci/login-idps.sh installs it)")
    op = LocalOp(tmp_path_factory.mktemp("op"), login_pki)
    op.start()
    try:
        yield op
    finally:
        op.stop()


def oidc_config(op: LocalOp, **overrides: t.Any) -> dict[str, t.Any]:
    return {"LOGIN_ADAPTER": "oidc", "OIDC_ISSUER": op.issuer, "OIDC_CLIENT_ID": OIDC_CLIENT_ID,
            "OIDC_REDIRECT_URI": OIDC_REDIRECT_URI, "OIDC_PRIVATE_KEY": str(op.client_key_file),
            "OIDC_CA_BUNDLE": str(op.pki.ca_cert), "OIDC_TIMEOUT": 5,
            "OIDC_ACR_VALUES": "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard"} | overrides


def tls_client_auth_config(op: LocalOp, cert: Path | str, key: Path | str, **overrides: t.Any) -> dict[str, t.Any]:
    """The DVZA as the OP's ``tls_client_auth`` client (RFC 8705 §2.1), presenting ``cert``/``key``."""
    return oidc_config(op, OIDC_CLIENT_AUTH="tls_client_auth", OIDC_CLIENT_ID=OIDC_TLS_CLIENT_ID,
                       OIDC_PRIVATE_KEY=None, OIDC_TLS_CERT=str(cert), OIDC_TLS_KEY=str(key)) | overrides


@pytest.fixture(scope="module")
def oidc_app(databases: t.Any, tmp_path_factory: pytest.TempPathFactory, oidc_op: LocalOp) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, FRONTCHANNEL_SECURE_COOKIES=False,
                   **oidc_config(oidc_op))
    load_cert_data(app, "bgz", "pdfa")
    app.extensions["oauth"].directory = StaticDirectory(**DIRECTORY)
    yield app
    app.extensions["dvza.db"].dispose()


class OpBrowser(Browser):
    """The test client for the DVZA plus a ``requests`` session (with cookies) for the OP."""

    def __init__(self, app: t.Any, op: LocalOp):
        super().__init__(app)
        self.op = op
        self.web = requests.Session()
        self.web.trust_env = False
        self.web.verify = str(op.pki.ca_cert)

    def to_op(self, landing: t.Any) -> str:
        """Landing page → authorization request → the OP's login page; returns that page's URL."""
        sent = self.client.post("/oauth/login", data={"csrf_token": self.csrf(landing)})
        assert sent.status_code in (302, 303), sent.get_data(as_text=True)[:500]
        location = sent.headers["Location"]
        assert location.startswith(self.op.issuer + "/auth?"), location
        page = self.web.get(location, timeout=10)
        assert page.status_code == 200 and "/interaction/" in page.url, page.text[:500]
        return str(page.url)

    def at_op(self, page_url: str, *, bsn: str = HELLEMAN_BSN, level: str = "substantieel",
              action: str = "login") -> str:
        """Answer the OP's page; follow the OP's redirects until it sends the browser back to us."""
        answer = self.web.post(page_url, data={"bsn": bsn, "level": level, "action": action}, allow_redirects=False,
                               timeout=10)
        for _ in range(10):
            location = answer.headers.get("Location", "")
            assert answer.status_code in (302, 303), answer.text[:500]
            if location.startswith(OIDC_REDIRECT_URI):
                return location
            answer = self.web.get(location if location.startswith("http") else self.op.issuer + location,
                                  allow_redirects=False, timeout=10)
        raise AssertionError("the OP did not send the browser back")

    def back_at_rp(self, url: str) -> t.Any:
        parts = urlsplit(url)
        assert parts.path == "/oauth/login/finish", url
        return self.client.get(f"{parts.path}?{parts.query}")

    def login_via_op(self, landing: t.Any, **answer: t.Any) -> t.Any:
        return self.back_at_rp(self.at_op(self.to_op(landing), **answer))


@pytest.fixture()
def oidc_person(oidc_app: t.Any, oidc_op: LocalOp) -> OpBrowser:
    return OpBrowser(oidc_app, oidc_op)


@pytest.fixture(scope="module")
def oidc_mtls_app(databases: t.Any, tmp_path_factory: pytest.TempPathFactory, oidc_op: LocalOp,
                  login_pki: t.Any) -> t.Iterator[t.Any]:
    """The DVZA authenticating to the OP with its own client certificate (``dvza.localhost``)."""
    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, FRONTCHANNEL_SECURE_COOKIES=False,
                   **tls_client_auth_config(oidc_op, login_pki.client_cert(OIDC_TLS_CLIENT_HOST),
                                            login_pki.client_key(OIDC_TLS_CLIENT_HOST)))
    load_cert_data(app, "bgz")
    app.extensions["oauth"].directory = StaticDirectory(**DIRECTORY)
    yield app
    app.extensions["dvza.db"].dispose()
