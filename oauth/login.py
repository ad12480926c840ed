"""Authenticating the person (MedMij: DigiD; R2: a separate authentication service, "DVAuthN").

A :class:`LoginAdapter` starts the authentication (render a page or redirect to an identity
provider) and, when the browser comes back, returns the person's BSN. A real DigiD (SAML) or
OIDC broker plugs in here; the server around it does not change.

:class:`DevelopmentLogin` is a stand-in for local use and tests: a page, clearly marked as *not
DigiD*, where one picks a test person or types a BSN (checked with the elfproef).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from flask import Request
from flask import Response
from flask import render_template


@dataclass(frozen=True, slots=True)
class Person:
    bsn: str


class LoginCancelled(Exception):
    """The person stopped at the identity provider (event receive_authorization_cancellation)."""


class LoginFailed(Exception):
    """The identity provider could not establish who the person is (event receive_authentication_error)."""


class LoginUnavailable(LoginFailed):
    """The identity provider could not be reached or answered with a server error (try again later)."""


class LoginAdapter(t.Protocol):
    name: str

    def start(self, *, csrf_token: str, finish_url: str) -> Response:
        """Begin authentication; the identity provider must bring the browser back to ``finish_url``."""
        ...

    def finish(self, request: Request) -> Person:
        """The authenticated person, from the request at ``finish_url``; raises LoginCancelled/LoginFailed."""
        ...


def is_valid_bsn(bsn: str) -> bool:
    """The BSN "elfproef": nine digits, weighted sum (9..2, -1) divisible by 11."""
    if len(bsn) != 9 or not bsn.isdigit() or bsn == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(bsn[:8], range(9, 1, -1), strict=True)) - int(bsn[8])
    return total % 11 == 0


@dataclass(slots=True)
class DevelopmentLogin:
    """Development stand-in for DigiD. Never enable it in production (``LOGIN_ADAPTER``)."""

    #: (name, BSN) of test persons offered as buttons
    persons: t.Sequence[tuple[str, str]] = ()
    name: str = "development"

    def start(self, *, csrf_token: str, finish_url: str) -> Response:
        return Response(render_template("oauth/login_dev.html", persons=self.persons, csrf_token=csrf_token,
                                        finish_url=finish_url))

    def finish(self, request: Request) -> Person:
        if request.form.get("cancel"):
            raise LoginCancelled()
        # a test-person button sends its BSN; the typed BSN comes in its own form (so that Enter in the
        # field sends the typed number, not the first button's): exactly one "bsn" arrives
        given = request.form.getlist("bsn")
        if len(given) != 1:
            raise LoginFailed("Kies een testpersoon of typ één burgerservicenummer (BSN).")
        bsn = given[0].replace(" ", "").strip()
        if not is_valid_bsn(bsn):
            raise LoginFailed("Dit is geen geldig burgerservicenummer (BSN).")
        return Person(bsn)
