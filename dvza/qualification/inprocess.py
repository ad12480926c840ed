"""A ``requests`` transport into this app's own WSGI application.

A qualification session does what Nictiz's test system does against its own server before and after
a client-role script (its ``setup``: e.g. create the ``requested`` Task a PGO must find). The runner
sends those operations with ``requests``; this adapter hands them to the app in the same process
(Werkzeug's test client), marked :data:`~dvza.qualification.recorder.INTERNAL` so they are not
recorded as the PGO's traffic.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from .recorder import INTERNAL

if t.TYPE_CHECKING:
    from flask import Flask

#: the base URL in-process requests are addressed to
INTERNAL_BASE = "http://qualification.internal"


class WsgiAdapter(BaseAdapter):
    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.client = app.test_client()

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: t.Any = None,
             verify: t.Any = True, cert: t.Any = None, proxies: t.Any = None) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body.encode("utf-8") if isinstance(request.body, str) else request.body
        answer = self.client.open(
            path=url.path, query_string=url.query, method=request.method or "GET",
            headers=[(k, v) for k, v in request.headers.items()], data=body,
            base_url=f"{url.scheme}://{url.netloc}", environ_overrides={INTERNAL: True},
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response._content = answer.get_data()  # noqa: SLF001 - how a transport adapter fills a Response
        response.encoding = answer.mimetype_params.get("charset") or "utf-8"
        response.url = request.url or ""
        response.request = request
        response.reason = answer.status.split(" ", 1)[-1]
        return response

    def close(self) -> None:
        pass


def session_for(app: Flask) -> requests.Session:
    """A ``requests`` session whose requests to :data:`INTERNAL_BASE` go into ``app``."""
    session = requests.Session()
    session.trust_env = False
    session.mount(INTERNAL_BASE, WsgiAdapter(app))
    return session
