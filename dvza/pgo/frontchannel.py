"""Walking a DVZA's development frontchannel without a browser (``dvza pgo fetch|send``, tests).

It does what a person does on the pages of ``oauth`` with the development login adapter: open the
authorization URL, press "Inloggen met DigiD", choose a BSN on the stand-in login page (never real
DigiD) and grant or refuse consent, then read ``code`` or ``error`` off the redirect to the PGO
(RFC 6749 §4.1.2). It follows the forms on the pages (action, hidden fields), so it needs no
knowledge of the server's URLs beyond the first one.
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs
from urllib.parse import urljoin
from urllib.parse import urlsplit

import lxml.html
import requests

from .client import PgoError


def _form(page: requests.Response, *, containing: str | None = None) -> tuple[str, dict[str, str]]:
    document = lxml.html.fromstring(page.content)
    for form in document.forms:
        buttons = form.xpath(".//button")
        if containing and not any(containing in (b.text_content() or "") or b.get("name") == containing
                                  for b in buttons):
            continue
        fields = {i.get("name"): i.get("value") or "" for i in form.xpath(".//input[@type='hidden']")}
        return urljoin(page.url, form.get("action") or page.url), fields
    raise PgoError(f"no form{f' with {containing!r}' if containing else ''} on {page.url} ({page.status_code})")


class DevBrowser:
    """A person's browser on the development frontchannel: follows redirects itself, and stops at one to the PGO
    (``redirect_prefix``), giving that redirect's parameters instead of a page."""

    def __init__(self, *, verify: str | bool = True, redirect_prefix: str | None = None):
        self.session = requests.Session()
        self.session.trust_env = False  # ``verify`` decides, not REQUESTS_CA_BUNDLE
        self.session.verify = verify
        self.redirect_prefix = redirect_prefix

    def follow(self, response: requests.Response) -> requests.Response | dict[str, str]:
        while response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if self.redirect_prefix and location.startswith(self.redirect_prefix):
                return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            response = self.session.get(location, allow_redirects=False)
        return response

    def get(self, url: str) -> requests.Response | dict[str, str]:
        return self.follow(self.session.get(url, allow_redirects=False))

    def post(self, action: str, data: dict[str, str]) -> requests.Response | dict[str, str]:
        return self.follow(self.session.post(action, data=data, allow_redirects=False))

    def log_in(self, page: requests.Response, *, bsn: str) -> requests.Response | dict[str, str]:
        """From a page with an "Inloggen" button through the development login as ``bsn`` (choosing it when the
        DVZA offers several logins): the page after the login, or the redirect to the PGO."""
        action, fields = _form(page, containing="Inloggen")
        login = self.post(action, fields)
        if isinstance(login, dict):
            return login
        if b'name="adapter"' in login.content:  # a choice of logins (make run): take the development login
            action, fields = _form(login, containing="adapter")
            login = self.post(action, fields | {"adapter": "development"})
            if isinstance(login, dict):
                return login
        action, fields = _form(login)
        return self.post(action, fields | {"bsn": bsn})


def authorize_with_dev_login(authorize_url: str, *, bsn: str, grant: bool = True, verify: str | bool = True,
                             redirect_prefix: str, long_term: bool = False) -> dict[str, str]:
    """Run the frontchannel for a person with ``bsn``; return the parameters of the redirect to the
    PGO (``code`` and ``state``, or ``error``, ``error_description``, ``state``). With ``long_term``
    the person ticks "toestemming voor onbepaalde tijd" when the consent page offers it."""
    browser = DevBrowser(verify=verify, redirect_prefix=redirect_prefix)
    landing = browser.get(authorize_url)
    if isinstance(landing, dict):
        return landing
    if landing.status_code != 200:
        raise PgoError(f"authorization request refused with an error page ({landing.status_code})")
    consent = browser.log_in(landing, bsn=bsn)
    if isinstance(consent, dict):
        return consent
    action, fields = _form(consent, containing="decision")
    choice = {"decision": "grant" if grant else "refuse"} | ({"long_term": "yes"} if long_term else {})
    decided = browser.post(action, fields | choice)
    if isinstance(decided, dict):
        return decided
    raise PgoError(f"the frontchannel did not send the browser back to the PGO ({decided.status_code} "
                   f"{decided.url})")


__all__: t.Sequence[str] = ["DevBrowser", "authorize_with_dev_login"]
