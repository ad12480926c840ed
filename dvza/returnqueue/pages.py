"""The hospital's page on the return queue (``/ziekenhuis``): what patients sent from their PGO.

For staff of the aanbieder, in Dutch. Sign-in with a name and password from ``HOSPITAL_USERS``
(name → Werkzeug password hash, made with ``dvza queue user NAME``); in production this sits
behind the hospital's own single sign-on, which can set the same session key. Every view of an
item and every decision goes through :class:`~dvza.returnqueue.queue.ReturnQueue`, so it is audit-logged with
the patient it concerns (NEN 7513 §5: who looked at which patient's data, when). Forms carry a
CSRF token; the session cookie is the app's (HttpOnly, SameSite=Lax, Secure outside development).

What staff read (:mod:`dvza.returnqueue.content`): the patient by name, birth date and BSN, the PGO by
its OCL display name, local times, measurements by their Dutch zib names, questionnaire answers as
question → answer, and the status in words.
"""

from __future__ import annotations

import typing as t

from flask import Blueprint
from flask import Flask
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from werkzeug.security import check_password_hash

from .. import identity
from ..csrf import SessionCsrf
from . import content
from .queue import STATUSES
from .queue import QueueError
from .queue import ReturnQueue

bp = Blueprint("hospital", __name__, url_prefix="/ziekenhuis", template_folder="templates", static_folder="static",
               static_url_path="/static")

STATUS_NAMES = {"new": "Nieuw", "claimed": "In behandeling", "accepted": "Opgenomen in dossier",
                "rejected": "Afgewezen"}
KIND_NAMES = {"vitalsigns": "Zelfmeting", "documents": "Document", "questionnaire-answers": "Antwoorden vragenlijst",
              "task-status": "Status vragenlijst"}
SESSION_USER = "hospital_user"
SESSION_CSRF = "hospital_csrf"


def _queue() -> ReturnQueue:
    return t.cast(ReturnQueue, current_app.extensions["dvza.queue"])


def _user() -> str | None:
    return t.cast("str | None", session.get(SESSION_USER))


CSRF = SessionCsrf(SESSION_CSRF)


def _page(template: str, status: int = 200, **context: t.Any) -> tuple[str, int]:
    context.setdefault("user", _user())
    return render_template(template, aanbieder=current_app.config["AANBIEDER_WEERGAVENAAM"],
                           csrf_token=CSRF.token(), status_names=STATUS_NAMES, kind_names=KIND_NAMES,
                           dienst_name=_dienst_name, pgo_name=_pgo_name, **context), status


def _pgo_name(client_id: str) -> str:
    """The PGO as people know it: its ``OAuthclientOrganisatienaam`` on the OCL, else its hostname."""
    oauth = current_app.extensions.get("oauth")
    return (oauth.directory.client_name(client_id) if oauth is not None else None) or client_id


def _zone() -> str:
    return str(current_app.config["TIMEZONE"])


def _patients(patient_ids: t.Iterable[str]) -> dict[str, content.PatientCard]:
    cipher = identity.cipher_from_config(current_app.config)
    with current_app.extensions["dvza.db"].sessionmaker() as session:
        return {pid: content.patient_card(session, pid, cipher) for pid in set(patient_ids)}


def _item_page(view: t.Any, resources: list[dict[str, t.Any]], user: str, status: int = 200,
               **extra: t.Any) -> tuple[str, int]:
    base = current_app.config.get("PUBLIC_BASE_URL")
    with current_app.extensions["dvza.db"].sessionmaker() as session:
        shown = content.entries(session, resources, _zone(), (base.rstrip("/"),) if base else ())
    return _page("hospital/item.html", status, item=view, entries=shown, patient=_patients([view.patient_id])[
        view.patient_id], status_text=content.status_text(view, _zone()), mine=view.claimed_by == f"web:{user}",
        **extra)


def _queue_problem(error: QueueError) -> tuple[str, int]:
    message = {404: "Dit bericht bestaat niet (meer).",
               400: "Dat verzoek is niet compleet."}.get(error.status, "Dit bericht is al in behandeling bij een "
                                                                      "collega of is al afgehandeld.")
    return _page("hospital/message.html", error.status, message=message, technical=str(error))


def _dienst_name(dienst: str | None) -> str:
    if not dienst:
        return ""
    directory = current_app.extensions.get("oauth")
    name = directory.directory.dienst_name(dienst) if directory is not None else None
    return name or f"Gegevensdienst {dienst}"


@bp.after_request
def _headers(response: t.Any) -> t.Any:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/inloggen", methods=["GET", "POST"])
def sign_in() -> t.Any:
    error = None
    if request.method == "POST":
        CSRF.check()
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        stored = (current_app.config.get("HOSPITAL_USERS") or {}).get(name)
        if stored and check_password_hash(stored, password):
            session.pop(SESSION_CSRF, None)
            session[SESSION_USER] = name
            return redirect(url_for("hospital.items"), code=303)
        error = "De naam of het wachtwoord klopt niet."
        current_app.extensions["dvza.audit"].write(event_type="hospital.sign-in", outcome="failure",
                                                   actor=f"staff:{name}"[:120], detail="wrong name or password")
    return _page("hospital/sign_in.html", 401 if error else 200, error=error)


@bp.post("/uitloggen")
def sign_out() -> t.Any:
    CSRF.check()
    session.pop(SESSION_USER, None)
    session.pop(SESSION_CSRF, None)
    return redirect(url_for("hospital.sign_in"), code=303)


def _signed_in() -> str:
    user = _user()
    if not user or user not in (current_app.config.get("HOSPITAL_USERS") or {}):
        abort(redirect(url_for("hospital.sign_in"), code=303))
    return t.cast(str, user)


@bp.get("/wachtrij")
def items() -> t.Any:
    _signed_in()
    status = request.args.get("status") or None
    if status not in (None, *STATUSES):
        status = None
    found = _queue().list(status=status, limit=200)
    return _page("hospital/items.html", items=found, status=status, counts=_queue().counts(), statuses=STATUSES,
                 patients=_patients(i.patient_id for i in found))


@bp.get("/wachtrij/<item_id>")
def item(item_id: str) -> t.Any:
    user = _signed_in()
    try:
        view, resources = _queue().get(item_id, actor=f"staff:web:{user}")
    except QueueError as error:
        return _queue_problem(error)
    return _item_page(view, resources, user)


@bp.post("/wachtrij/<item_id>")
def decide(item_id: str) -> t.Any:
    user = _signed_in()
    CSRF.check()
    consumer = f"web:{user}"
    action = request.form.get("action")
    try:
        if action == "claim":
            _queue().claim_item(item_id, consumer)
        elif action == "accept":
            _queue().accept(item_id, consumer)
        elif action == "reject":
            reason = request.form.get("reason", "").strip()
            if not reason:
                view, resources = _queue().get(item_id, actor=f"staff:web:{user}")
                return _item_page(view, resources, user, 400, reason_error="Vul een reden in.")
            _queue().reject(item_id, consumer, reason)
        elif action == "release":
            _queue().release(item_id, consumer)
        else:
            abort(400)
    except QueueError as error:
        return _queue_problem(error)
    return redirect(url_for("hospital.item", item_id=item_id), code=303)


def init_app(app: Flask) -> None:
    app.config.setdefault("HOSPITAL_USERS", {})
    app.register_blueprint(bp)
