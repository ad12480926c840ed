"""An app with the four Cert sets for qualification sessions, and a scripted "perfect client" that sends
exactly the requests of the client-role scripts (the Nictiz fixtures as bodies) through the app."""

from __future__ import annotations

import json
import typing as t
from datetime import date
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from dvza.conformance.runner import RunOptions
from dvza.conformance.runner import ScriptState
from dvza.conformance.runner import TestResult
from dvza.conformance.runner import run_actions
from tests.support import CERT_SETS
from tests.support import DatabaseFactory
from tests.support import load_cert_data
from tests.support import make_app
from tests.support import needs_shared

PGO_BASE = "https://dvza.test"


@pytest.fixture(scope="module")
def qual_app(databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    """One app per module with all four Cert sets; tests end every session they start."""
    needs_shared()
    application = make_app(databases, tmp_path_factory)
    load_cert_data(application, *CERT_SETS)
    yield application
    application.extensions["dvza.db"].dispose()


class AppAdapter(BaseAdapter):
    """``requests`` into the app as an outside client (recorded, unlike the session's own setup)."""

    def __init__(self, app: t.Any, environ: dict[str, t.Any] | None = None) -> None:
        super().__init__()
        self.client = app.test_client()
        self.environ = environ or {}

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body.encode() if isinstance(request.body, str) else request.body
        answer = self.client.open(path=url.path, query_string=url.query, method=request.method,
                                  headers=list(request.headers.items()), data=body, base_url=PGO_BASE,
                                  environ_overrides=self.environ)
        response = requests.Response()
        response.status_code, response._content = answer.status_code, answer.get_data()  # noqa: SLF001
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response.url, response.request, response.encoding = request.url or "", request, "utf-8"
        return response

    def close(self) -> None:
        pass


def http_into(app: t.Any, environ: dict[str, t.Any] | None = None) -> requests.Session:
    session = requests.Session()
    session.mount(PGO_BASE, AppAdapter(app, environ))
    return session


def perfect_client(app: t.Any, session: t.Any, *, skip: t.Container[str] = (),
                   tokens: dict[str, str] | None = None) -> None:
    """Send the client operations of the current step's scripts as the scripts describe them (the
    Nictiz qualification tokens, or ``tokens`` replacing them), except tests named in ``skip``."""
    service = app.extensions["dvza.qualification"]
    variables = json.loads(session.variables)
    http = http_into(app)
    for path in json.loads(session.steps)[session.step]:
        script = service._script(path)  # noqa: SLF001 - the same parsed script the session uses
        state = ScriptState(script, RunOptions(base_url=PGO_BASE + "/fhir", today=date.fromisoformat(session.today),
                                               variables=variables.get(path, {}), session=http,
                                               tokens=tokens or {}))
        for test in script.tests:
            if test.id in skip:
                continue
            actions = [a for a in test.actions if a.operation is not None]
            if tokens:
                for action in actions:
                    assert action.operation is not None
                    action.operation.request_headers = [
                        (k, tokens.get(v, v)) for k, v in action.operation.request_headers]
            run_actions(state, actions, TestResult(test.id or ""))
