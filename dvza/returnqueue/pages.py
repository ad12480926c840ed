"""The hospital's page on the return queue (``/ziekenhuis``): what patients sent from their PGO.

For staff of the aanbieder, in Dutch. Sign-in with a name and password from ``HOSPITAL_USERS``
(name → Werkzeug password hash, made with ``dvza queue user NAME``); in production this sits
behind the hospital's own single sign-on, which can set the same session key. Every view of an
item and every decision goes through :class:`~dvza.returnqueue.queue.ReturnQueue`, so it is audit-logged with
the patient it concerns (NEN 7513 §5: who looked at which patient's data, when); so is every sign-in,
refused or not. Forms carry a CSRF token; the session is server-side (:mod:`dvza.sessions`: ended by
"Uitloggen", an idle timeout and an absolute lifetime) and sign-in is throttled
(:mod:`dvza.returnqueue.signin`).

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

from .. import identity
from .. import metrics
from ..csrf import SessionCsrf
from . import content
from . import signin
from .queue import STATUSES
from .queue import QueueError
from .queue import ReturnQueue
from .signin import check_password
from .signin import retry_after
from .signin import signed_in_user

bp = Blueprint("hospital", __name__, url_prefix="/ziekenhuis", template_folder="templates",
               static_folder="static", static_url_path="/static")

STATUS_NAMES = {"new": "Nieuw", "claimed": "In behandeling", "accepted": "Opgenomen in dossier",
                "rejected": "Afgewezen"}
KIND_NAMES = {"vitalsigns": "Zelfmeting", "documents": "Document", "questionnaire-answers": "Antwoorden vragenlijst",
              "task-status": "Status vragenlijst"}
SESSION_CSRF = "hospital_csrf"


def _queue() -> ReturnQueue:
    return t.cast(ReturnQueue, current_app.extensions["dvza.queue"])


CSRF = SessionCsrf(SESSION_CSRF)


def _page(template: str, status: int = 200, **context: t.Any) -> tuple[str, int]:
    context.setdefault("user", signed_in_user())
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


def _audit_sign_in(outcome: str, name: str, detail: str) -> None:
    current_app.extensions["dvza.audit"].write(event_type="hospital.sign-in", outcome=outcome,
                                               actor=f"staff:{name}"[:120], remote_addr=request.remote_addr,
                                               detail=detail)


@bp.route("/inloggen", methods=["GET", "POST"])
def sign_in() -> t.Any:
    """Throttled per account and per address (:func:`dvza.returnqueue.signin.init_app`)."""
    error = None
    if request.method == "POST":
        CSRF.check()
        name = request.form.get("name", "").strip()
        if check_password(name, request.form.get("password", "")):
            session.pop(SESSION_CSRF, None)
            signin.sign_in(name)
            _audit_sign_in("success", name, "signed in")
            return redirect(url_for("hospital.items"), code=303)
        error = "De naam of het wachtwoord klopt niet."
        _audit_sign_in("failure", name, "wrong name or password")
        metrics.sign_in_failed("credentials")
    return _page("hospital/sign_in.html", signin.REFUSED if error else 200, error=error)


@bp.errorhandler(429)
def _throttled(_error: Exception) -> t.Any:
    """Too many refused sign-ins for this name or from this address (OWASP: throttle, don't lock out)."""
    wait = retry_after()
    _audit_sign_in("failure", request.form.get("name", "").strip(), "throttled: too many failed sign-ins")
    metrics.sign_in_failed("throttled")
    minutes = max(1, -(-wait // 60))
    error = (f"Er is te vaak een verkeerde naam of een verkeerd wachtwoord ingevuld. Wacht {minutes} "
             f"{'minuut' if minutes == 1 else 'minuten'} en probeer het dan opnieuw.")
    body, status = _page("hospital/sign_in.html", 429, error=error)
    return body, status, {"Retry-After": str(wait)}


@bp.post("/uitloggen")
def sign_out() -> t.Any:
    """Uitloggen ends the whole session on the server: a copy of the cookie opens nothing afterwards."""
    CSRF.check()
    user = signed_in_user()
    signin.sign_out()
    if user:
        current_app.extensions["dvza.audit"].write(event_type="hospital.sign-out", outcome="success",
                                                   actor=f"staff:{user}", remote_addr=request.remote_addr)
    return redirect(url_for("hospital.sign_in"), code=303)


def _signed_in() -> str:
    user = signed_in_user()
    if user is None:
        abort(redirect(url_for("hospital.sign_in"), code=303))
    return user


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
    signin.init_app(app, app.extensions["dvza.db"])
