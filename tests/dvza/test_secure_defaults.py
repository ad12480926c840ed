"""Secure by default for operators (issue 13): a real login outside qualification/development mode,
readiness details only for operators, security headers on every person-facing page, no caching of
FHIR and OAuth answers."""

from __future__ import annotations

import hashlib
import re
import typing as t

import pytest
from flask import Response
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import generate_password_hash

from dvza import config as config_module
from dvza import create_app
from oauth.login import Person
from tests.support import make_app

INTERNAL = {"dvza.internal": True}


class StandInForDigiD:
    """A login adapter as an operator would plug in (``LOGIN_ADAPTER=package.module:factory``)."""

    name = "test-idp"

    def start(self, *, csrf_token: str, finish_url: str) -> Response:
        return Response(status=302, headers={"Location": "https://idp.example/login"})

    def finish(self, request: t.Any) -> Person:
        return Person("999911120")


def real_login(config: t.Mapping[str, t.Any]) -> StandInForDigiD:
    return StandInForDigiD()


def bare_config(tmp_path: t.Any, **extra: t.Any) -> dict[str, t.Any]:
    """What an operator's ``dvza serve`` sees: no qualification mode, no development switch."""
    return {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "LOG_FORMAT": "console",
            "LOG_LEVEL": "ERROR", **extra}


# ------------------------------------------------------------------------------------ login adapter
@pytest.mark.parametrize("adapter", [None, "development"])
def test_the_development_login_is_refused_outside_development(tmp_path: t.Any, adapter: str | None) -> None:
    extra = {"LOGIN_ADAPTER": adapter} if adapter else {}
    with pytest.raises(config_module.ConfigError, match="LOGIN_ADAPTER") as refused:
        create_app(bare_config(tmp_path, **extra))
    assert "DVZA_DEVELOPMENT_LOGIN=true" in str(refused.value)


def test_the_environment_cannot_sneak_the_development_login_in(tmp_path: t.Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVZA_DEVELOPMENT_LOGIN", "yes")  # not JSON true: refused, not taken as "on"
    with pytest.raises(config_module.ConfigError, match="DEVELOPMENT_LOGIN must be true or false"):
        create_app(bare_config(tmp_path))


def test_a_real_login_adapter_starts_without_development_banner(tmp_path: t.Any) -> None:
    app = create_app(bare_config(tmp_path, LOGIN_ADAPTER=f"{__name__}:real_login"))
    assert isinstance(app.extensions["oauth"].login, StandInForDigiD)
    page = app.test_client().get("/oauth/toestemmingen").get_data(as_text=True)
    assert "Testomgeving" not in page and "dev-notice" not in page
    app.extensions["dvza.db"].dispose()


@pytest.mark.parametrize("switch", [{"DEVELOPMENT_LOGIN": True}, {"QUALIFICATION_MODE": True}])
def test_the_development_login_says_so_on_every_page(tmp_path: t.Any, switch: dict[str, t.Any]) -> None:
    app = create_app(bare_config(tmp_path, HOSPITAL_USERS={"anna": generate_password_hash("x")}, **switch))
    assert app.config["LOGIN_ADAPTER"] == "development"
    client = app.test_client()
    for path in ("/oauth/toestemmingen", "/ziekenhuis/inloggen", "/oauth/authorize?client_id=x"):
        page = client.get(path).get_data(as_text=True)
        assert 'class="dev-notice"' in page and "niet\n    met DigiD" in page, path
    app.extensions["dvza.db"].dispose()


# ------------------------------------------------------------------------------------------ readyz
def test_readiness_is_status_only_in_public(tmp_path: t.Any, databases: t.Any, tmp_path_factory: t.Any) -> None:
    key = "operator-readiness-key"
    app = make_app(databases, tmp_path_factory, READYZ_KEY_SHA256=hashlib.sha256(key.encode()).hexdigest())
    client = app.test_client()
    public = client.get("/readyz")
    assert public.status_code == 200 and public.get_json() == {"status": "ready"}
    assert client.get("/readyz", headers={"X-Readyz-Key": "wrong"}).get_json() == {"status": "ready"}
    for details in (client.get("/readyz", environ_base=INTERNAL),
                    client.get("/readyz", headers={"X-Readyz-Key": key})):
        assert details.get_json()["checks"]["database"]["ok"] is True
    # a client cannot claim the internal bind through a header
    assert client.get("/readyz", headers={"Dvza-Internal": "1", "dvza.internal": "true"}).get_json() == {
        "status": "ready"}
    app.extensions["dvza.db"].dispose()


def test_an_unready_answer_shows_no_internals_in_public(app: t.Any) -> None:
    app.extensions["dvza.db"].engine.dispose()
    app.extensions["dvza.db"].engine = __import__("sqlalchemy").create_engine("sqlite:////nonexistent/dir/x.db")
    public = app.test_client().get("/readyz")
    assert public.status_code == 503 and public.get_json() == {"status": "unavailable"}
    internal = app.test_client().get("/readyz", environ_base=INTERNAL)
    assert internal.status_code == 503 and internal.get_json()["checks"]["database"]["ok"] is False


# ---------------------------------------------------------------------------------------- headers
@pytest.fixture()
def staff_app(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, HOSPITAL_USERS={"anna": generate_password_hash("geheim")})
    yield app
    app.extensions["dvza.db"].dispose()


PERSON_PAGES = ["/ziekenhuis/inloggen", "/ziekenhuis/wachtrij", "/oauth/toestemmingen",
                "/oauth/authorize?client_id=unknown", "/ziekenhuis/bestaat-niet", "/"]


@pytest.mark.parametrize("path", PERSON_PAGES)
def test_security_headers_on_person_facing_pages(staff_app: t.Any, path: str) -> None:
    response = staff_app.test_client().get(path)
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in headers  # plain HTTP: no HSTS


def test_hospital_pages_work_under_their_policy(staff_app: t.Any) -> None:
    """No inline styles or scripts, which the Content-Security-Policy forbids."""
    client = staff_app.test_client()
    page = client.get("/ziekenhuis/inloggen")
    html = page.get_data(as_text=True)
    assert "<style" not in html and "style=" not in html and "<script" not in html
    stylesheet = re.search(r'href="(/ziekenhuis/static/hospital\.css)"', html)
    assert stylesheet and client.get(stylesheet.group(1)).status_code == 200


def test_hsts_when_the_app_ends_tls(staff_app: t.Any) -> None:
    over_tls = staff_app.test_client().get("/ziekenhuis/inloggen", base_url="https://dvza.example")
    assert over_tls.headers["Strict-Transport-Security"] == "max-age=31536000"
    staff_app.wsgi_app = ProxyFix(staff_app.wsgi_app, x_proto=1)
    behind_proxy = staff_app.test_client().get("/ziekenhuis/inloggen", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in behind_proxy.headers  # the proxy sends its own


def test_fhir_answers_are_never_cached(cert_client: t.Any) -> None:
    from tests.support import bearer

    token = bearer("example-pdfa-kwalificatie1")
    answers = {
        "metadata": cert_client.get("/fhir/metadata"),
        "search": cert_client.get("/fhir/DocumentReference", headers=token),
        "no token": cert_client.get("/fhir/Patient"),
        "not found": cert_client.get("/fhir/Patient/does-not-exist", headers=token),
        "unsupported": cert_client.delete("/fhir/Patient/x", headers=token),
    }
    documents = answers["search"].get_json()["entry"]
    binary = next(e["resource"]["content"][0]["attachment"]["url"] for e in documents
                  if e["resource"]["content"][0]["attachment"].get("url", "").startswith("Binary/"))
    answers["raw binary"] = cert_client.get(f"/fhir/{binary}", headers={**token, "Accept": "application/pdf"})
    assert answers["raw binary"].mimetype == "application/pdf"
    for name, response in answers.items():
        assert response.headers.get("Cache-Control") == "no-store", name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name


def test_oauth_answers_are_never_cached(staff_app: t.Any) -> None:
    client = staff_app.test_client()
    answers = {
        "error page": client.get("/oauth/authorize?client_id=unknown"),
        "my consents": client.get("/oauth/toestemmingen"),
        "token": client.post("/oauth/token", data={"grant_type": "authorization_code"}),
        "not found": client.get("/oauth/nothing-here"),
        "logout redirect": client.post("/oauth/toestemmingen/uitloggen"),
    }
    for name, response in answers.items():
        assert response.headers.get("Cache-Control") == "no-store", name
