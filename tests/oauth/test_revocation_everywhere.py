"""A revoked token is refused on the very next request by every worker (issue 12).

Two apps on one database stand for two worker processes (or two instances): each has its own per-process
state — engine and connection pool, compiled statements, the resource server's caches — and both have served
the token before it is revoked through the other. Nothing per process may keep the token alive.
(``tests/e2e/test_instances.py`` does the same with real ``dvza serve`` processes on PostgreSQL.)
"""

from __future__ import annotations

import re
import typing as t

import pytest

from oauth.directory import StaticDirectory
from tests.oauth.conftest import HELLEMAN_BSN
from tests.oauth.conftest import Browser
from tests.oauth.test_person_pages import logged_in_manager
from tests.support import make_app


@pytest.fixture(scope="module")
def twin(oauth_app: t.Any, databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    """A second app on the same database and configuration: another worker."""
    app = make_app(databases, tmp_path_factory, DATABASE_URL=oauth_app.config["DATABASE_URL"],
                   QUALIFICATION_MODE=False, FRONTCHANNEL_SECURE_COOKIES=False,
                   DEV_LOGIN_PERSONS=[{"name": "Johan XXX_Helleman", "bsn": HELLEMAN_BSN}])
    directory = oauth_app.extensions["oauth"].directory
    app.extensions["oauth"].directory = StaticDirectory(clients=directory.clients, whitelist=directory.whitelist,
                                                        diensten=directory.diensten)
    yield app
    app.extensions["dvza.db"].dispose()


def _warm(token: str, *apps: t.Any) -> None:
    for app in apps:
        for path in ("Patient", "Condition", "Patient"):
            assert Browser(app).fhir(path, token).status_code == 200


def _refused(token: str, *apps: t.Any) -> None:
    for app in apps:
        response = Browser(app).fhir("Patient", token)
        assert response.status_code == 401, response.get_data(as_text=True)
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_consent_withdrawn_on_one_worker_is_refused_at_once_on_every_worker(oauth_app: t.Any, twin: t.Any) -> None:
    browser = Browser(oauth_app)
    token = browser.token(browser.code_for(scope="umcdemo~48")).get_json()["access_token"]
    _warm(token, oauth_app, twin)
    manage = logged_in_manager(twin)
    page = manage.client.get("/oauth/toestemmingen").get_data(as_text=True)
    for consent_id in set(re.findall(r"/oauth/toestemmingen/([0-9a-f-]{36})/intrekken", page)):
        answer = manage.client.post(f"/oauth/toestemmingen/{consent_id}/intrekken",
                                    data={"csrf_token": Browser.csrf(manage.client.get("/oauth/toestemmingen"))})
        assert answer.status_code == 200
    _refused(token, oauth_app, twin)


def test_code_replayed_on_another_worker_revokes_the_token_everywhere(oauth_app: t.Any, twin: t.Any) -> None:
    browser = Browser(oauth_app)
    code = browser.code_for(scope="umcdemo~48")
    token = browser.token(code).get_json()["access_token"]
    _warm(token, oauth_app, twin)
    replay = Browser(twin).token(code)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    _refused(token, twin, oauth_app)
