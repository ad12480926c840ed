"""Driving the PGO simulator web app like a person's browser (without a real browser): forms with their
CSRF token, and the DVZA's development login and consent walked by :mod:`dvza.pgo.frontchannel`."""

from __future__ import annotations

import re
import typing as t

import requests

from dvza.pgo.frontchannel import authorize_with_dev_login


class SimulatorBrowser:
    def __init__(self, network: t.Any) -> None:
        self.network = network
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(network.pki.ca_cert)
        self.base = network.pgo_url

    def csrf(self, html: str | None = None) -> str:
        page = html if html is not None else self.http.get(f"{self.base}/").text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, page[:500]
        return found.group(1)

    def get(self, path: str) -> requests.Response:
        return self.http.get(path if path.startswith("http") else f"{self.base}{path}")

    def post(self, path: str, data: dict[str, t.Any], *, bsn: str | None = None, long_term: bool = False,
             files: t.Any = None) -> requests.Response:
        """POST a simulator form; when it sends the browser to the DVZA, log in as ``bsn``, consent,
        and come back on the simulator's callback. Returns the page the simulator ends on."""
        url = path if path.startswith("http") else f"{self.base}{path}"
        answer = self.http.post(url, data={"csrf_token": self.csrf()} | data, files=files, allow_redirects=False)
        location = answer.headers.get("Location", "")
        if answer.status_code == 303 and not location.startswith(self.base) and not location.startswith("/"):
            assert bsn, f"the simulator asks for a login at {location}"
            params = authorize_with_dev_login(location, bsn=bsn, verify=str(self.network.pki.ca_cert),
                                              redirect_prefix=f"{self.base}/callback", long_term=long_term)
            assert "code" in params, params
            return self.http.get(f"{self.base}/callback", params=params)
        if answer.is_redirect:
            return self.http.get(location if location.startswith("http") else f"{self.base}{location}")
        return answer

    @staticmethod
    def result_of(response: requests.Response) -> str:
        """The key of the stored result a simulator page shows (in its links and forms)."""
        found = re.search(r'/(?:gegevens|document|vragenlijsten)/([A-Za-z0-9_-]{20,})[/"]', response.text)
        assert found, response.text[:1000]
        return found.group(1)
