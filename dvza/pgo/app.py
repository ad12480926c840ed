"""The PGO simulator web app (Dutch pages for people, like a real PGO would show).

Flow (RFC 6749 §4.1): the person picks an aanbieder and what to do → 302 to the aanbieder's
authorization endpoint with a fresh ``state`` → the DVZA's login and consent → back on
``/callback`` with ``code`` and ``state`` (checked, RFC 6749 §10.12) or an error (§4.1.2.1) → the
code is swapped for a token over mutual TLS → the data is fetched or sent.

What it does (the Nictiz PGO qualification scenarios, fhir-content.md §2–§5):

* fetch (Verzamelen): BgZ (48), documents (51: documents, document sets, open a PDF, a period) and
  measurements (52: per kind, the latest, a period) — only what the token's ``scope`` grants;
* send (Delen): a measurement (53) and PDF documents (57);
* questionnaires: the open tasks (59), the questionnaire, accept and answer — the answers go in a
  second authorization (60) — or decline; a questionnaire that cannot be retrieved fails the task.

Tokens (and a refresh token for langdurige toestemming) stay in this process's memory, bound to the
browser's session, never in the browser's cookie; results expire after 15 minutes.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import typing as t
from datetime import date
from datetime import datetime
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
from flask import url_for

from ..csrf import SessionCsrf
from . import measurements as ms
from . import questionnaires as qs
from .catalog import Catalog
from .catalog import find
from .client import Aanbieder
from .client import PgoClient
from .client import PgoError
from .content import batch_outcome
from .content import fetch_bgz
from .content import fetch_measurements
from .documents import DocumentError
from .documents import document_bundle
from .documents import fetch_documents
from .documents import open_document

bp = Blueprint("pgo", __name__, template_folder="templates", static_folder="static")
CSRF = SessionCsrf("csrf")

#: What the simulator offers: Verzamelen ids to fetch, the Delen ids, the questionnaire pair.
FETCH_DIENSTEN = ("48", "51", "52")
SEND_DIENST = "53"
DOCUMENTS_DIENST = "57"
TASKS_DIENST, ANSWERS_DIENST = "59", "60"

#: MedMij error descriptions (medmij-protocol.md §3.7) in words for the person. A DVZA answers
#: "Authorization denied." both when the person refuses consent and when they stop at the login.
ERROR_TEXTS = {
    "Authorization denied.": "Je hebt het inloggen afgebroken of geen toestemming gegeven. Er zijn geen gegevens "
                             "opgehaald of gestuurd.",
    "No such resources.": "De zorgaanbieder heeft over jou geen gegevens van deze soort.",
}
MEASUREMENT_CHOICES = [(ms.ALL, "Alle vitale functies"), (ms.MAIN, "Bloeddruk, gewicht, bloedglucose en hartslag")] + [
    (k.key, k.name) for k in ms.KINDS.values()]


class _Results:
    """Recent results (with their tokens) per browser, kept 15 minutes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, dict[str, t.Any]]] = {}

    def put(self, value: dict[str, t.Any]) -> str:
        key = secrets.token_urlsafe(18)
        with self._lock:
            now = time.monotonic()
            self._items = {k: v for k, v in self._items.items() if now - v[0] < 900}
            self._items[key] = (now, value | {"owner": _browser()})
        return key

    def get(self, key: str) -> dict[str, t.Any] | None:
        with self._lock:
            found = self._items.get(key)
        if found is None or time.monotonic() - found[0] >= 900 or found[1].get("owner") != _browser():
            return None
        return found[1]


def _browser() -> str:
    """A random id for this browser's session: results are only shown to the browser they belong to."""
    if "browser" not in session:
        session["browser"] = secrets.token_urlsafe(16)
    return str(session["browser"])


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
    return render_template(template, pgo_name=current_app.config["PGO_NAME"], csrf_token=CSRF.token(),
                           dienst_name=catalog().dienst_name, **context), status


def _error(message: str, status: int = 400, **context: t.Any) -> tuple[str, int]:
    return _page("pgo/error.html", status, message=message, **context)


def _stop(message: str, status: int) -> t.NoReturn:
    """End the request with the error page."""
    html, code = _error(message, status)
    abort(Response(html, status=code, content_type="text/html; charset=utf-8"))


@bp.get("/")
def home() -> t.Any:
    return _page("pgo/home.html", aanbieders=catalog().aanbieders(), fetch_diensten=FETCH_DIENSTEN,
                 send_dienst=SEND_DIENST, documents_dienst=DOCUMENTS_DIENST, tasks_dienst=TASKS_DIENST,
                 kinds=ms.KINDS)


def _authorize(aanbieder: Aanbieder, diensten: list[str], pending: dict[str, t.Any]) -> Response:
    state = secrets.token_urlsafe(24)
    session["pending"] = pending | {"state": state, "aanbieder": aanbieder.naam, "diensten": diensten}
    return redirect(client().authorize_url(aanbieder, diensten, state), code=303)


def _moment(raw: str) -> datetime:
    if not raw.strip():
        return datetime.now().astimezone()
    try:
        return datetime.fromisoformat(raw.strip()).astimezone()
    except ValueError:
        raise ms.MeasurementError("Vul het moment van meten in als datum en tijd.") from None


@bp.post("/start")
def start() -> t.Any:
    CSRF.check()
    aanbieder = find(catalog(), request.form.get("aanbieder", ""))
    if aanbieder is None:
        return _error("Kies een zorgaanbieder uit de lijst.")
    action = request.form.get("action")
    if action == "send":
        kind = request.form.get("kind", "bloeddruk")
        values = [request.form.get("systolic", ""), request.form.get("diastolic", "")] if kind == "bloeddruk" else \
            [request.form.get("value", "")]
        try:
            measurement = ms.make(kind, values, _moment(request.form.get("when", "")))
        except ms.MeasurementError as exc:
            return _error(str(exc))
        key = results().put({"measurements": [measurement]})
        return _authorize(aanbieder, [SEND_DIENST], {"action": "send", "draft": key})
    if action == "documents":
        files = [(f.filename or "document.pdf", f.read()) for f in request.files.getlist("document") if f.filename]
        titles = [request.form.get("title", "").strip() or name.rsplit(".", 1)[0] for name, _ in files]
        try:
            document_bundle(list(zip(titles, (data for _, data in files), strict=True)))
        except DocumentError as exc:
            return _error(str(exc))
        key = results().put({"files": list(zip(titles, (data for _, data in files), strict=True)),
                             "description": request.form.get("title", "").strip() or None})
        return _authorize(aanbieder, [DOCUMENTS_DIENST], {"action": "documents", "draft": key})
    if action == "questionnaires":
        return _authorize(aanbieder, [TASKS_DIENST], {"action": "questionnaires"})
    diensten = [d for d in request.form.getlist("dienst") if d in FETCH_DIENSTEN]
    if not diensten:
        return _error("Kies welke gegevens je wilt ophalen.")
    return _authorize(aanbieder, diensten, {"action": "fetch"})


@bp.get("/callback")
def callback() -> t.Any:
    state = request.args.get("state", "")
    done = session.get("done") or {}
    pending = session.get("pending")
    if not pending or not secrets.compare_digest(str(pending.get("state")), state):
        if state and state in done:
            # a reload of a page that was already handled (the code is used up): show what came of it
            stored = results().get(done[state]) if done[state] else None
            if stored is not None:
                view = "pgo.tasks" if "tasks" in stored else "pgo.show"
                return redirect(url_for(view, result=done[state]), code=303)
            return _error("Dit is al afgehandeld. Ga terug naar het begin om opnieuw te beginnen.", 200)
        return _error("Dit antwoord hoort niet bij een verzoek van deze PGO. Begin opnieuw.")
    session.pop("pending", None)
    aanbieder = find(catalog(), pending["aanbieder"])
    if aanbieder is None:
        abort(400)
    if "error" in request.args:
        _remember(state, None)
        description = request.args.get("error_description", "")
        message = ERROR_TEXTS.get(description, "Het ophalen of sturen is niet gelukt.")
        return _page("pgo/error.html", 200, message=message, technical=f"{request.args['error']}: {description}",
                     aanbieder=aanbieder)
    try:
        grant = client().exchange_code(aanbieder, request.args.get("code", ""))
        action = pending["action"]
        if action == "send":
            return _send(aanbieder, grant.access_token, pending, state)
        if action == "documents":
            return _send_documents(aanbieder, grant.access_token, pending, state)
        if action == "questionnaires":
            key = results().put({"token": grant.access_token, "aanbieder": aanbieder.naam,
                                 "tasks": qs.open_tasks(client(), aanbieder, grant.access_token)})
            _remember(state, key)
            return tasks(key)
        if action == "answers":
            return _send_answers(aanbieder, grant.access_token, pending, state)
        granted = grant.granted(pending["diensten"])
        stored = {"token": grant.access_token, "refresh": grant.refresh_token, "aanbieder": aanbieder.naam,
                  "asked": pending["diensten"], "granted": granted}
        _fetch(aanbieder, stored)
        key = results().put(stored)
        _remember(state, key)
        return show(key)
    except PgoError as exc:
        _remember(state, None)
        return _page("pgo/error.html", 502, message="Er ging iets mis bij het contact met de zorgaanbieder.",
                     technical=str(exc), aanbieder=aanbieder)


def _remember(state: str, key: str | None) -> None:
    done = dict(session.get("done") or {})
    done[state] = key
    session["done"] = dict(list(done.items())[-10:])


def _fetch(aanbieder: Aanbieder, stored: dict[str, t.Any]) -> None:
    token, granted = stored["token"], stored["granted"]
    stored["sections"] = fetch_bgz(client(), aanbieder, token) if "48" in granted else []
    stored["documents"] = fetch_documents(client(), aanbieder, token) if "51" in granted else None
    if "52" in granted:
        stored["measurement_filter"] = {"kind": ms.ALL, "latest": False, "since": "", "until": ""}
        stored["measurements"] = fetch_measurements(client(), aanbieder, token, ms.search_query(ms.ALL))
    else:
        stored["measurements"] = None


def _stored(result: str) -> tuple[dict[str, t.Any], Aanbieder]:
    stored = results().get(result)
    aanbieder = find(catalog(), stored["aanbieder"]) if stored and "aanbieder" in stored else None
    if stored is None or aanbieder is None:
        _stop("Deze gegevens zijn niet meer beschikbaar. Haal ze opnieuw op.", 404)
    return stored, aanbieder


@bp.get("/gegevens/<result>")
def show(result: str) -> t.Any:
    stored, aanbieder = _stored(result)
    refused = [d for d in stored["asked"] if d not in stored["granted"]]
    return _page("pgo/data.html", aanbieder=aanbieder, result=result, stored=stored, refused=refused,
                 choices=MEASUREMENT_CHOICES)


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        _stop("Vul een datum in, bijvoorbeeld 2026-10-01.", 400)


@bp.post("/gegevens/<result>/documenten")
def filter_documents(result: str) -> t.Any:
    CSRF.check()
    stored, aanbieder = _stored(result)
    if stored.get("documents") is None:
        abort(400)
    since, until = _date(request.form.get("since")), _date(request.form.get("until"))
    try:
        stored["documents"] = fetch_documents(client(), aanbieder, stored["token"], since=since, until=until,
                                              with_sets=not (since or until))
    except PgoError as exc:
        return _error("De documenten konden niet worden opgehaald.", 502, technical=str(exc))
    return redirect(url_for("pgo.show", result=result) + "#documenten", code=303)


@bp.post("/gegevens/<result>/meetwaarden")
def filter_measurements(result: str) -> t.Any:
    CSRF.check()
    stored, aanbieder = _stored(result)
    if stored.get("measurements") is None:
        abort(400)
    kind = request.form.get("kind", ms.ALL)
    if kind not in dict(MEASUREMENT_CHOICES):
        abort(400)
    chosen = {"kind": kind, "latest": request.form.get("latest") == "yes", "since": request.form.get("since", ""),
              "until": request.form.get("until", "")}
    query = ms.search_query(kind, latest=chosen["latest"], since=_date(chosen["since"]), until=_date(chosen["until"]))
    try:
        stored["measurements"] = fetch_measurements(client(), aanbieder, stored["token"], query)
    except PgoError as exc:
        return _error("De meetwaarden konden niet worden opgehaald.", 502, technical=str(exc))
    stored["measurement_filter"] = chosen
    return redirect(url_for("pgo.show", result=result) + "#meetwaarden", code=303)


@bp.post("/gegevens/<result>/vernieuwen")
def renew(result: str) -> t.Any:
    """Langdurige toestemming (MedMij R2): fetch again with the refresh token, without a new login."""
    CSRF.check()
    stored, aanbieder = _stored(result)
    if not stored.get("refresh"):
        abort(400)
    try:
        grant = client().refresh(aanbieder, stored["refresh"])
        fresh = {"token": grant.access_token, "refresh": grant.refresh_token, "aanbieder": aanbieder.naam,
                 "asked": stored["asked"], "granted": grant.granted(stored["asked"]), "renewed": True}
        _fetch(aanbieder, fresh)
    except PgoError as exc:
        return _error("Opnieuw ophalen lukte niet. Misschien is de toestemming gestopt; vraag dan opnieuw toestemming.",
                      502, technical=str(exc), aanbieder=aanbieder)
    return redirect(url_for("pgo.show", result=results().put(fresh)), code=303)


@bp.get("/document/<result>/<int:number>")
def document(result: str, number: int) -> t.Any:
    stored, aanbieder = _stored(result)
    view = stored.get("documents")
    documents = view.all() if view is not None else []
    if not 0 <= number < len(documents):
        return _error("Dit document is niet meer beschikbaar. Haal de gegevens opnieuw op.", 404)
    try:
        content, content_type = open_document(client(), aanbieder, stored["token"], documents[number])
    except PgoError as exc:
        return _error("Het document kon niet worden geopend.", 502, technical=str(exc), aanbieder=aanbieder)
    return Response(content, content_type=content_type,
                    headers={"Content-Disposition": f'inline; filename="document-{number + 1}.pdf"'})


def _send(aanbieder: Aanbieder, token: str, pending: dict[str, t.Any], state: str) -> t.Any:
    draft = results().get(pending["draft"]) or {}
    measurements = draft.get("measurements") or []
    if not measurements:
        return _error("Deze meting is niet meer beschikbaar. Vul hem opnieuw in.", 404)
    answer = client().post_bundle(aanbieder, token, ms.batch(measurements))
    _remember(state, None)
    return _page("pgo/sent.html", aanbieder=aanbieder, what=[m.text() for m in measurements],
                 outcome=batch_outcome(answer))


def _send_documents(aanbieder: Aanbieder, token: str, pending: dict[str, t.Any], state: str) -> t.Any:
    draft = results().get(pending["draft"]) or {}
    if not draft.get("files"):
        return _error("Dit document is niet meer beschikbaar. Kies het opnieuw.", 404)
    answer = client().post_bundle(aanbieder, token, document_bundle(draft["files"], description=draft["description"]))
    _remember(state, None)
    return _page("pgo/sent.html", aanbieder=aanbieder, what=[title for title, _ in draft["files"]],
                 outcome=batch_outcome(answer))


# ------------------------------------------------------------------------------- questionnaires
def _task(stored: dict[str, t.Any], task_id: str) -> dict[str, t.Any]:
    task = next((t_ for t_ in stored.get("tasks", []) if t_.get("id") == task_id), None)
    if task is None:
        _stop("Deze vragenlijst staat niet (meer) klaar. Bekijk je vragenlijsten opnieuw.", 404)
    return task


@bp.get("/vragenlijsten/<result>")
def tasks(result: str) -> t.Any:
    stored, aanbieder = _stored(result)
    return _page("pgo/tasks.html", aanbieder=aanbieder, result=result, tasks=stored.get("tasks", []),
                 title=qs.task_title)


@bp.post("/vragenlijsten/<result>/<task_id>")
def task_action(result: str, task_id: str) -> t.Any:
    CSRF.check()
    stored, aanbieder = _stored(result)
    task = _task(stored, task_id)
    try:
        if request.form.get("action") == "weigeren":
            qs.set_status(client(), aanbieder, stored["token"], task, "rejected")
            stored["tasks"] = [t_ for t_ in stored["tasks"] if t_.get("id") != task_id]
            return _page("pgo/message.html", heading="Vragenlijst niet ingevuld",
                         message=f"Je hebt '{qs.task_title(task)}' niet ingevuld. {aanbieder.weergavenaam} krijgt "
                                 "daarvan bericht.", back=url_for("pgo.tasks", result=result))
        questionnaire = qs.load_questionnaire(client(), aanbieder, stored["token"], task)
        if questionnaire is None:
            qs.set_status(client(), aanbieder, stored["token"], task, "failed")
            stored["tasks"] = [t_ for t_ in stored["tasks"] if t_.get("id") != task_id]
            return _page("pgo/message.html", heading="Vragenlijst niet beschikbaar",
                         message=f"De vragenlijst '{qs.task_title(task)}' kan niet worden geopend. "
                                 f"{aanbieder.weergavenaam} krijgt daarvan bericht.",
                         back=url_for("pgo.tasks", result=result))
        if task.get("status") == "requested":
            task = qs.set_status(client(), aanbieder, stored["token"], task, "accepted")
            stored["tasks"] = [task if t_.get("id") == task_id else t_ for t_ in stored["tasks"]]
    except PgoError as exc:
        return _error("Er ging iets mis bij het contact met de zorgaanbieder.", 502, technical=str(exc))
    stored.setdefault("questionnaires", {})[task_id] = questionnaire
    return redirect(url_for("pgo.questionnaire", result=result, task_id=task_id), code=303)


@bp.get("/vragenlijsten/<result>/<task_id>/invullen")
def questionnaire(result: str, task_id: str) -> t.Any:
    stored, aanbieder = _stored(result)
    task = _task(stored, task_id)
    found = (stored.get("questionnaires") or {}).get(task_id)
    if found is None:
        abort(404)
    return _page("pgo/questionnaire.html", aanbieder=aanbieder, result=result, task=task,
                 title=qs.task_title(task), questions=qs.questions(found), answers={}, problems={})


@bp.post("/vragenlijsten/<result>/<task_id>/invullen")
def answer(result: str, task_id: str) -> t.Any:
    CSRF.check()
    stored, aanbieder = _stored(result)
    task = _task(stored, task_id)
    found = (stored.get("questionnaires") or {}).get(task_id)
    if found is None:
        abort(404)
    form = {key: request.form.getlist(key) for key in request.form if key.startswith("q:")}
    response, problems = qs.build_response(found, task, form)
    if problems:
        return _page("pgo/questionnaire.html", 400, aanbieder=aanbieder, result=result, task=task,
                     title=qs.task_title(task), questions=qs.questions(found), answers=form, problems=problems)
    draft = results().put({"task": task, "response": response, "aanbieder": aanbieder.naam, "tasks": result})
    return _authorize(aanbieder, [ANSWERS_DIENST], {"action": "answers", "draft": draft})


def _send_answers(aanbieder: Aanbieder, token: str, pending: dict[str, t.Any], state: str) -> t.Any:
    draft = results().get(pending["draft"]) or {}
    if not draft.get("response"):
        return _error("Deze antwoorden zijn niet meer beschikbaar. Vul de vragenlijst opnieuw in.", 404)
    answer = client().post_bundle(aanbieder, token, qs.answers_transaction(aanbieder, draft["task"], draft["response"]))
    _remember(state, None)
    listing = results().get(draft["tasks"])
    if listing is not None:
        listing["tasks"] = [t_ for t_ in listing.get("tasks", []) if t_.get("id") != draft["task"].get("id")]
    return _page("pgo/sent.html", aanbieder=aanbieder, what=[f"Antwoorden op '{qs.task_title(draft['task'])}'"],
                 outcome=batch_outcome(answer))


def create_pgo_app(config: t.Mapping[str, t.Any] | None = None, *, catalog: Catalog | None = None) -> Flask:
    """The simulator app. Settings (env ``PGO_*`` or ``config``): ``PGO_HOSTNAME`` (client_id),
    ``PGO_REDIRECT_URI``, ``PGO_CLIENT_CERT``/``PGO_CLIENT_KEY``, ``PGO_CA_BUNDLE``, ``PGO_NAME``,
    ``PGO_LISTS_DIR`` (ZAL + GNL files) and ``SECRET_KEY``."""
    app = Flask(__name__)
    app.config.update(PGO_NAME="Demo-PGO", PGO_HOSTNAME="localhost", PGO_REDIRECT_URI=None, PGO_CLIENT_CERT=None,
                      PGO_CLIENT_KEY=None, PGO_CA_BUNDLE=None, PGO_LISTS_DIR=None, SECRET_KEY=None,
                      SESSION_COOKIE_NAME="pgo_session", SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=timedelta(hours=1),
                      MAX_CONTENT_LENGTH=40 * 1024 * 1024)
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
