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


def authorize_with_dev_login(authorize_url: str, *, bsn: str, grant: bool = True, verify: str | bool = True,
                             redirect_prefix: str, long_term: bool = False) -> dict[str, str]:
    """Run the frontchannel for a person with ``bsn``; return the parameters of the redirect to the
    PGO (``code`` and ``state``, or ``error``, ``error_description``, ``state``). With ``long_term``
    the person ticks "toestemming voor onbepaalde tijd" when the consent page offers it."""
    browser = requests.Session()
    browser.trust_env = False  # ``verify`` decides, not REQUESTS_CA_BUNDLE
    browser.verify = verify

    def follow(response: requests.Response) -> requests.Response | dict[str, str]:
        while response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(redirect_prefix):
                return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            response = browser.get(location, allow_redirects=False)
        return response

    landing = follow(browser.get(authorize_url, allow_redirects=False))
    if isinstance(landing, dict):
        return landing
    if landing.status_code != 200:
        raise PgoError(f"authorization request refused with an error page ({landing.status_code})")
    action, fields = _form(landing, containing="Inloggen")
    login = follow(browser.post(action, data=fields, allow_redirects=False))
    if isinstance(login, dict):
        return login
    if b'name="adapter"' in login.content:  # a choice of logins (make run): take the development login
        action, fields = _form(login, containing="adapter")
        login = follow(browser.post(action, data=fields | {"adapter": "development"}, allow_redirects=False))
        if isinstance(login, dict):
            return login
    action, fields = _form(login)
    consent = follow(browser.post(action, data=fields | {"bsn": bsn}, allow_redirects=False))
    if isinstance(consent, dict):
        return consent
    action, fields = _form(consent, containing="decision")
    choice = {"decision": "grant" if grant else "refuse"} | ({"long_term": "yes"} if long_term else {})
    decided = follow(browser.post(action, data=fields | choice, allow_redirects=False))
    if isinstance(decided, dict):
        return decided
    raise PgoError(f"the frontchannel did not send the browser back to the PGO ({decided.status_code} "
                   f"{decided.url})")


__all__: t.Sequence[str] = ["authorize_with_dev_login"]
