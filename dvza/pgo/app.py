"""The PGO simulator web app (Dutch pages for people, like a real PGO would show).

Flow (RFC 6749 §4.1): the person picks an aanbieder and what to do → 302 to the aanbieder's
authorization endpoint with a fresh ``state`` → the DVZA's login and consent → back on
``/callback`` with ``code`` and ``state`` (checked, RFC 6749 §10.12) or an error (§4.1.2.1) → the
code is swapped for a token over mutual TLS → the data is fetched or the measurement sent.
Tokens stay in this process's memory, never in the browser's cookie.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import typing as t
from datetime import timedelta

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session

from ..csrf import SessionCsrf
from .catalog import Catalog
from .catalog import find
from .client import Aanbieder
from .client import PgoClient
from .client import PgoError
from .content import batch_outcome
from .content import blood_pressure_bundle
from .content import fetch_bgz
from .content import fetch_documents

bp = Blueprint("pgo", __name__, template_folder="templates", static_folder="static")
CSRF = SessionCsrf("csrf")

#: What the simulator offers: (action, gegevensdiensten, Dutch label).
FETCH_DIENSTEN = ("48", "51")
SEND_DIENST = "53"

#: MedMij error descriptions (medmij-protocol.md §3.7) in words for the person.
ERROR_TEXTS = {
    "Authorization denied.": "Je hebt geen toestemming gegeven. Er zijn geen gegevens opgehaald of gestuurd.",
    "No such resources.": "De zorgaanbieder heeft over jou geen gegevens van deze soort.",
}


class _Results:
    """Recent results (with the token, for document downloads) per browser, kept 15 minutes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, dict[str, t.Any]]] = {}

    def put(self, value: dict[str, t.Any]) -> str:
        key = secrets.token_urlsafe(18)
        with self._lock:
            now = time.monotonic()
            self._items = {k: v for k, v in self._items.items() if now - v[0] < 900}
            self._items[key] = (now, value)
        return key

    def get(self, key: str) -> dict[str, t.Any] | None:
        with self._lock:
            found = self._items.get(key)
        return found[1] if found else None


def client() -> PgoClient:
    return t.cast(PgoClient, current_app.extensions["pgo.client"])


def catalog() -> Catalog:
    return t.cast(Catalog, current_app.extensions["pgo.catalog"])


def results() -> _Results:
    return t.cast(_Results, current_app.extensions["pgo.results"])


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _page(template: str, status: int = 200, **context: t.Any) -> tuple[str, int]:
    return render_template(template, pgo_name=current_app.config["PGO_NAME"], **context), status


@bp.get("/")
def home() -> t.Any:
    aanbieders = catalog().aanbieders()
    return _page("pgo/home.html", aanbieders=aanbieders, dienst_name=catalog().dienst_name,
                 fetch_diensten=FETCH_DIENSTEN, send_dienst=SEND_DIENST, csrf_token=CSRF.token())


@bp.post("/start")
def start() -> t.Any:
    CSRF.check()
    aanbieder = find(catalog(), request.form.get("aanbieder", ""))
    if aanbieder is None:
        return _page("pgo/error.html", 400, message="Kies een zorgaanbieder uit de lijst.")
    action = request.form.get("action")
    if action == "send":
        try:
            systolic, diastolic = int(request.form["systolic"]), int(request.form["diastolic"])
            blood_pressure_bundle(systolic, diastolic)
        except (KeyError, ValueError):
            return _page("pgo/error.html", 400, message="Vul de bovendruk en onderdruk in als hele getallen, "
                                                         "bijvoorbeeld 120 en 80.")
        diensten = [SEND_DIENST]
        pending: dict[str, t.Any] = {"action": "send", "systolic": systolic, "diastolic": diastolic}
    else:
        diensten = [d for d in request.form.getlist("dienst") if d in FETCH_DIENSTEN]
        if not diensten:
            return _page("pgo/error.html", 400, message="Kies welke gegevens je wilt ophalen.")
        pending = {"action": "fetch"}
    diensten = [d for d in diensten if d in aanbieder.diensten] or diensten
    state = secrets.token_urlsafe(24)
    session["pending"] = pending | {"state": state, "aanbieder": aanbieder.naam, "diensten": diensten}
    return redirect(client().authorize_url(aanbieder, diensten, state), code=303)


@bp.get("/callback")
def callback() -> t.Any:
    pending = session.pop("pending", None)
    if not pending or not secrets.compare_digest(str(pending.get("state")), request.args.get("state", "")):
        return _page("pgo/error.html", 400, message="Dit antwoord hoort niet bij een verzoek van deze PGO. "
                                                     "Begin opnieuw.")
    aanbieder = find(catalog(), pending["aanbieder"])
    if aanbieder is None:
        abort(400)
    if "error" in request.args:
        description = request.args.get("error_description", "")
        message = ERROR_TEXTS.get(description, "Het ophalen of sturen is niet gelukt.")
        return _page("pgo/error.html", 200, message=message, technical=f"{request.args['error']}: {description}",
                     aanbieder=aanbieder)
    try:
        grant = client().exchange_code(aanbieder, request.args.get("code", ""))
        if pending["action"] == "send":
            return _send(aanbieder, grant.access_token, pending)
        return _fetch(aanbieder, grant.access_token, pending["diensten"])
    except PgoError as exc:
        return _page("pgo/error.html", 502, message="Er ging iets mis bij het contact met de zorgaanbieder.",
                     technical=str(exc), aanbieder=aanbieder)


def _fetch(aanbieder: Aanbieder, token: str, diensten: list[str]) -> t.Any:
    sections = fetch_bgz(client(), aanbieder, token) if "48" in diensten else []
    documents = fetch_documents(client(), aanbieder, token) if "51" in diensten else []
    key = results().put({"token": token, "aanbieder": aanbieder.naam, "documents": documents})
    return _page("pgo/data.html", aanbieder=aanbieder, sections=sections, documents=documents, result=key,
                 show_documents="51" in diensten, dienst_names=[catalog().dienst_name(d) for d in diensten])


def _send(aanbieder: Aanbieder, token: str, pending: dict[str, t.Any]) -> t.Any:
    bundle = blood_pressure_bundle(pending["systolic"], pending["diastolic"])
    answer = client().post_bundle(aanbieder, token, bundle)
    return _page("pgo/sent.html", aanbieder=aanbieder, systolic=pending["systolic"], diastolic=pending["diastolic"],
                 outcome=batch_outcome(answer))


@bp.get("/document/<result>/<int:number>")
def document(result: str, number: int) -> t.Any:
    stored = results().get(result)
    if stored is None or not 0 <= number < len(stored["documents"]):
        return _page("pgo/error.html", 404, message="Dit document is niet meer beschikbaar. Haal de gegevens "
                                                     "opnieuw op.")
    aanbieder = find(catalog(), stored["aanbieder"])
    url = stored["documents"][number]["url"]
    if aanbieder is None or not url:
        abort(404)
    path = url.split("/Binary/", 1)[-1]
    try:
        content, content_type = client().get_bytes(aanbieder, stored["token"], f"Binary/{path}", "application/pdf")
    except PgoError as exc:
        return _page("pgo/error.html", 502, message="Het document kon niet worden opgehaald.", technical=str(exc))
    return Response(content, content_type=content_type,
                    headers={"Content-Disposition": f'inline; filename="document-{number + 1}.pdf"'})


def create_pgo_app(config: t.Mapping[str, t.Any] | None = None, *, catalog: Catalog | None = None) -> Flask:
    """The simulator app. Settings (env ``PGO_*`` or ``config``): ``PGO_HOSTNAME`` (client_id),
    ``PGO_REDIRECT_URI``, ``PGO_CLIENT_CERT``/``PGO_CLIENT_KEY``, ``PGO_CA_BUNDLE``, ``PGO_NAME``,
    ``PGO_LISTS_DIR`` (ZAL + GNL files) and ``SECRET_KEY``."""
    app = Flask(__name__)
    app.config.update(PGO_NAME="Demo-PGO", PGO_HOSTNAME="localhost", PGO_REDIRECT_URI=None, PGO_CLIENT_CERT=None,
                      PGO_CLIENT_KEY=None, PGO_CA_BUNDLE=None, PGO_LISTS_DIR=None, SECRET_KEY=None,
                      SESSION_COOKIE_NAME="pgo_session", SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=timedelta(hours=1))
    app.config.update({key: value for key, value in os.environ.items() if key.startswith("PGO_")})
    if os.environ.get("PGO_SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["PGO_SECRET_KEY"]
    app.config.update(config or {})
    app.config["SECRET_KEY"] = app.config["SECRET_KEY"] or secrets.token_hex(32)
    app.extensions["pgo.client"] = PgoClient.configured(
        app.config["PGO_HOSTNAME"], cert=app.config["PGO_CLIENT_CERT"], key=app.config["PGO_CLIENT_KEY"],
        ca=app.config["PGO_CA_BUNDLE"], redirect_uri=app.config["PGO_REDIRECT_URI"])
    if catalog is None:
        from .lists import catalog_from_lists

        catalog = catalog_from_lists(app.config["PGO_LISTS_DIR"])
    app.extensions["pgo.catalog"] = catalog
    app.extensions["pgo.results"] = _Results()
    app.register_blueprint(bp)
    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    return app
