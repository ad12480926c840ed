"""Server-side browser sessions (issue 13): logout ends them, an idle timeout and an absolute lifetime
apply, the id changes at sign-in and only its hash is stored — for the hospital pages and for
*Mijn toestemmingen*."""

from __future__ import annotations

import hashlib
import re
import typing as t
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from dvza import sessions
from dvza.sessions import BrowserSession
from tests.support import make_app

PASSWORD = "correct horse battery"
HELLEMAN_BSN = "999911120"
COOKIE = "dvza_session"


@pytest.fixture()
def sapp(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, HOSPITAL_USERS={"anna": generate_password_hash(PASSWORD)},
                   FRONTCHANNEL_SECURE_COOKIES=False, SESSION_IDLE_TIMEOUT=15 * 60,
                   SESSION_ABSOLUTE_LIFETIME=60 * 60)
    yield app
    app.extensions["dvza.db"].dispose()


def csrf(response: t.Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)[:300]
    return found.group(1)


def cookie(client: t.Any) -> str:
    found = client.get_cookie(COOKIE)
    assert found is not None
    return str(found.value)


def signed_in(app: t.Any) -> t.Any:
    client = app.test_client()
    page = client.get("/ziekenhuis/inloggen")
    assert client.post("/ziekenhuis/inloggen", data={"csrf_token": csrf(page), "name": "anna",
                                                      "password": PASSWORD}).status_code == 303
    return client


def with_cookie(app: t.Any, value: str) -> t.Any:
    """Another browser, with a copied session cookie."""
    client = app.test_client()
    client.set_cookie(COOKIE, value)
    return client


def opens_queue(client: t.Any) -> bool:
    return client.get("/ziekenhuis/wachtrij").status_code == 200


def test_signing_out_ends_the_session_on_the_server(sapp: t.Any) -> None:
    client = signed_in(sapp)
    copied = cookie(client)
    assert opens_queue(with_cookie(sapp, copied))
    token = csrf(client.get("/ziekenhuis/wachtrij"))
    assert client.post("/ziekenhuis/uitloggen", data={"csrf_token": token}).status_code == 303
    assert not opens_queue(client)
    assert not opens_queue(with_cookie(sapp, copied))  # the copy made before "Uitloggen" is worthless
    with sapp.extensions["dvza.db"].sessionmaker() as db:
        assert db.get(BrowserSession, sessions.hash_id(copied)) is None


def test_the_session_id_changes_at_sign_in(sapp: t.Any) -> None:
    """Session fixation: an id planted before sign-in does not become a signed-in session."""
    client = sapp.test_client()
    page = client.get("/ziekenhuis/inloggen")
    planted = cookie(client)
    client.post("/ziekenhuis/inloggen", data={"csrf_token": csrf(page), "name": "anna", "password": PASSWORD})
    assert cookie(client) != planted
    assert opens_queue(client)
    assert not opens_queue(with_cookie(sapp, planted))


def test_only_a_hash_of_the_id_is_stored(sapp: t.Any) -> None:
    client = signed_in(sapp)
    value = cookie(client)
    assert len(value) >= 43  # 256 bits
    with sapp.extensions["dvza.db"].sessionmaker() as db:
        rows = db.scalars(select(BrowserSession)).all()
    assert [r.id_hash for r in rows] == [hashlib.sha256(value.encode()).hexdigest()]
    assert value not in str([(r.id_hash, r.data) for r in rows])
    assert "anna" in rows[0].data  # the values live on the server, not in the cookie
    assert "anna" not in value


def test_an_idle_session_ends(sapp: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = signed_in(sapp)
    start = sessions._utcnow()
    monkeypatch.setattr(sessions, "_utcnow", lambda: start + timedelta(minutes=14))
    assert opens_queue(client)  # used within 15 minutes: still there, and the idle clock restarts
    monkeypatch.setattr(sessions, "_utcnow", lambda: start + timedelta(minutes=28))
    assert opens_queue(client)
    monkeypatch.setattr(sessions, "_utcnow", lambda: start + timedelta(minutes=44))
    assert not opens_queue(client)
    with sapp.extensions["dvza.db"].sessionmaker() as db:
        assert db.scalars(select(BrowserSession)).all() == []


def test_a_busy_session_still_ends_at_its_absolute_lifetime(sapp: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = signed_in(sapp)
    start = sessions._utcnow()
    for minutes in range(10, 60, 10):
        monkeypatch.setattr(sessions, "_utcnow", lambda m=minutes: start + timedelta(minutes=m))
        assert opens_queue(client), minutes
    monkeypatch.setattr(sessions, "_utcnow", lambda: start + timedelta(minutes=61))
    assert not opens_queue(client)


def test_timeouts_are_configurable_and_checked(databases: t.Any, tmp_path_factory: t.Any) -> None:
    from dvza.config import ConfigError

    with pytest.raises(ConfigError, match="SESSION_IDLE_TIMEOUT may not exceed"):
        make_app(databases, tmp_path_factory, SESSION_IDLE_TIMEOUT=7200, SESSION_ABSOLUTE_LIFETIME=3600)
    with pytest.raises(ConfigError, match="SESSION_IDLE_TIMEOUT must be"):
        make_app(databases, tmp_path_factory, SESSION_IDLE_TIMEOUT="soon")


def test_a_forged_cookie_opens_nothing(sapp: t.Any) -> None:
    client = signed_in(sapp)
    stored_hash = hashlib.sha256(cookie(client).encode()).hexdigest()
    assert not opens_queue(with_cookie(sapp, stored_hash))  # the stored hash is not a key
    assert not opens_queue(with_cookie(sapp, "x" * 43))


# ---------------------------------------------------------------------------------- Mijn toestemmingen
def my_consents_login(app: t.Any) -> t.Any:
    client = app.test_client()
    start = client.get("/oauth/toestemmingen")
    before = cookie(client)
    login_page = client.post("/oauth/toestemmingen/login", data={"csrf_token": csrf(start)})
    client.post("/oauth/login/finish", data={"csrf_token": csrf(login_page), "bsn": HELLEMAN_BSN})
    assert cookie(client) != before  # a new id after the person authenticated
    return client


def test_logging_out_of_my_consents_ends_the_session(databases: t.Any, tmp_path_factory: t.Any) -> None:
    from oauth.models import Consent
    from oauth.tokens import utcnow
    from tests.support import load_cert_data

    app = make_app(databases, tmp_path_factory, FRONTCHANNEL_SECURE_COOKIES=False)
    load_cert_data(app, "bgz")
    consent_id = "0b0e3c36-8d63-4f3c-9a59-3f0c1b2a7d11"
    with app.extensions["dvza.db"].sessionmaker() as db:  # a long-term consent, so it is listed
        db.add(Consent(id=consent_id, patient_id="medmij-bgz-patient-ts-01", client_id="pgo.example.nl",
                       client_name="Test-PGO", usecase="verzamelen", gegevensdiensten="48", long_term=True,
                       granted_at=utcnow()))
        db.commit()
    try:
        client = my_consents_login(app)
        overview = client.get("/oauth/toestemmingen")
        assert "Test-PGO" in overview.get_data(as_text=True)
        copied, token = cookie(client), csrf(overview)
        assert client.post("/oauth/toestemmingen/uitloggen").status_code == 303
        assert "Test-PGO" not in client.get("/oauth/toestemmingen").get_data(as_text=True)
        old = with_cookie(app, copied)
        again = old.get("/oauth/toestemmingen").get_data(as_text=True)
        assert "Test-PGO" not in again and "Inloggen met DigiD" in again  # the login page, not the overview
        revoke = old.post(f"/oauth/toestemmingen/{consent_id}/intrekken", data={"csrf_token": token})
        assert revoke.status_code == 303 and revoke.headers["Location"].endswith("/oauth/toestemmingen")
        with app.extensions["dvza.db"].sessionmaker() as db:
            assert db.get(Consent, consent_id).revoked_at is None
    finally:
        app.extensions["dvza.db"].dispose()
