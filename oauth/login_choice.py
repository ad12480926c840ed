"""A choice between login adapters, for development: ``LOGIN_ADAPTER=development,digid-saml``.

``make run`` offers the development login *and* the local DigiD-like SAML IdP, so one can follow the
real redirect dance on one machine. :class:`LoginChoice` shows a page with one button per adapter;
the button posts (with the flow's CSRF token) to ``/oauth/login/kies``, which starts the chosen
adapter. The choice is remembered in the signed session cookie; when the browser comes back at the
finish URL, the chosen adapter (and only that one) checks the answer, so an answer meant for one
adapter can never be taken by another. Not for production: a real deployment has one identity
provider (and issue 13's start-up check refuses ``development`` outside development).
"""

from __future__ import annotations

import hmac
import typing as t

from flask import Blueprint
from flask import Request
from flask import Response
from flask import render_template
from flask import request
from flask import session as browser
from flask import url_for

from .login import LoginAdapter
from .login import LoginFailed
from .login import Person
from .tokens import hash_secret

_PENDING = "oauth_login_choice"
_CHOSEN = "oauth_login_chosen"


class LoginChoice:
    """Offers ``options`` — (key, label, adapter) — and delegates to the one the person picks."""

    name = "choice"

    def __init__(self, options: t.Sequence[tuple[str, str, LoginAdapter]]):
        self.options = {key: (label, adapter) for key, label, adapter in options}
        self.blueprint = Blueprint("oauth_login_choice", __name__, url_prefix="/oauth/login")
        self.blueprint.add_url_rule("/kies", "choose", self.choose, methods=["POST"])
        children = [getattr(adapter, "blueprint", None) for _, adapter in self.options.values()]
        self.blueprint.record_once(lambda state: [state.app.register_blueprint(c) for c in children if c])

    def start(self, *, csrf_token: str, finish_url: str) -> Response:
        # the CSRF token of the flow is already in the page; keeping it in the signed cookie lets the
        # chosen adapter's page post it back to finish_url, where the server checks it
        browser[_PENDING] = {"csrf": csrf_token, "finish": finish_url}
        browser.pop(_CHOSEN, None)
        return Response(render_template("oauth/login_choice.html", csrf_token=csrf_token,
                                        action=url_for("oauth_login_choice.choose"),
                                        options=[(k, label) for k, (label, _) in self.options.items()]))

    def choose(self) -> Response:
        pending = browser.pop(_PENDING, None)
        token = request.form.get("csrf_token", "")
        key = request.form.get("adapter", "")
        if not isinstance(pending, dict) or not token or key not in self.options or \
                not hmac.compare_digest(hash_secret(token), hash_secret(str(pending.get("csrf", "")))):
            from .server import services

            return Response(render_template(
                "oauth/request_error.html", aanbieder=services().settings.aanbieder_weergavenaam,
                message="Deze keuze is verlopen of ongeldig.",
                detail="Ga terug naar je persoonlijke gezondheidsomgeving (PGO) en begin opnieuw."), 400)
        browser[_CHOSEN] = key
        return self.options[key][1].start(csrf_token=pending["csrf"], finish_url=pending["finish"])

    def finish(self, request: Request) -> Person:
        key = browser.pop(_CHOSEN, None)
        if key not in self.options:
            raise LoginFailed("Je hebt nog niet gekozen hoe je wilt inloggen. Begin opnieuw vanuit je PGO.")
        return self.options[key][1].finish(request)
