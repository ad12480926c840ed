"""The hospital-side pages for client qualification sessions (``/ziekenhuis/kwalificatie``), in Dutch.

Behind the staff sign-in (:mod:`dvza.staff`): staff start a session for a PGO vendor, see which test
persons to use in the current step and which requests came in, go to the next step, end the session
and read the report (per script, test and assert; each failed assert with what was expected and the
request it looked at). The text and JUnit forms of the report can be downloaded. Forms carry the
staff CSRF token. Only registered in qualification mode.
"""

from __future__ import annotations

import json
import typing as t
from datetime import UTC
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from ..conformance.report import junit_xml
from ..conformance.report import text_report
from ..conformance.runner import FAIL
from ..conformance.runner import PASS
from ..conformance.runner import SKIP
from ..conformance.runner import WARN
from ..conformance.runner import AssertResult
from ..staff import STAFF_CSRF
from ..staff import require_staff
from .sessions import QualificationService
from .sessions import SessionError
from .sets import SETS

bp = Blueprint("qualification", __name__, url_prefix="/ziekenhuis/kwalificatie", template_folder="templates")

STATUS_NAMES = {PASS: "Goed", FAIL: "Fout", WARN: "Waarschuwing", SKIP: "Overgeslagen"}
SESSION_STATUS = {"active": "Loopt", "ended": "Afgerond"}


def service() -> QualificationService:
    return t.cast(QualificationService, current_app.extensions["dvza.qualification"])


def local_time(moment: datetime | str | None) -> str:
    """A moment as people read it here: local time (``TIMEZONE``), Dutch order (dd-mm-jjjj uu:mm)."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    zone = ZoneInfo(current_app.config.get("TIMEZONE") or "Europe/Amsterdam")
    return moment.astimezone(zone).strftime("%d-%m-%Y %H:%M:%S")


def token_name(label: str) -> str:
    """A recorded token's label in Dutch: kind and non-secret reference."""
    kind, _, ref = label.rpartition(" ")
    return f"{'kwalificatietoken' if kind.startswith('qualification') else 'toegangstoken'} {ref}"


def _page(template: str, status: int = 200, **context: t.Any) -> tuple[str, int]:
    return render_template(template, aanbieder=current_app.config["AANBIEDER_WEERGAVENAAM"],
                           csrf_token=STAFF_CSRF.token(), local_time=local_time, token_name=token_name, sets=SETS,
                           status_names=STATUS_NAMES, session_status=SESSION_STATUS, **context), status


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/")
def sessions() -> t.Any:
    user = require_staff()
    return _page("qualification/sessions.html", user=user, found=service().list())


@bp.post("/")
def start() -> t.Any:
    user = require_staff()
    STAFF_CSRF.check()
    chosen = [key for key in request.form.getlist("set") if key in SETS]
    client_id = request.form.get("pgo", "").strip() or None
    if not chosen:
        return _page("qualification/sessions.html", 400, user=user, found=service().list(),
                     error="Kies minstens één onderdeel.", pgo=client_id or "")
    try:
        session = service().start(chosen, actor=f"staff:{user}", client_id=client_id)
    except SessionError as exc:
        return _page("qualification/sessions.html", 409, user=user, found=service().list(),
                     error=f"De sessie kon niet beginnen. {exc.dutch}", pgo=client_id or "")
    return redirect(url_for("qualification.session_page", session_id=session.id), code=303)


def _session_or_404(session_id: str) -> t.Any:
    try:
        return service().find(session_id)
    except SessionError:
        abort(404)


@bp.get("/<session_id>")
def session_page(session_id: str) -> t.Any:
    user = require_staff()
    session = _session_or_404(session_id)
    recorded = service().traffic(session.id)
    return _page("qualification/session.html", user=user, session=session, step=service().step_info(session),
                 recorded=recorded, set_names=[SETS[k].name for k in session.sets.split() if k in SETS],
                 last_step=session.step + 1 >= len(json.loads(session.steps)))


@bp.post("/<session_id>")
def act(session_id: str) -> t.Any:
    user = require_staff()
    STAFF_CSRF.check()
    session = _session_or_404(session_id)
    action = request.form.get("action")
    try:
        if action == "next":
            service().advance(session.id, actor=f"staff:{user}")
        elif action == "end":
            service().end(session.id, actor=f"staff:{user}")
            return redirect(url_for("qualification.report", session_id=session.id), code=303)
        else:
            abort(400)
    except SessionError as exc:
        return _page("qualification/message.html", 409, user=user, message=exc.dutch, session=session)
    return redirect(url_for("qualification.session_page", session_id=session.id), code=303)


@bp.get("/<session_id>/verzoek/<int:number>")
def recorded_request(session_id: str, number: int) -> t.Any:
    user = require_staff()
    session = _session_or_404(session_id)
    traffic = service().traffic(session.id)
    if not 1 <= number <= len(traffic):
        abort(404)
    exchange = traffic[number - 1]
    # the recorded answer holds the test person's data: who looked at it is logged (NEN 7513)
    current_app.extensions["dvza.audit"].write(
        event_type="qualification.request-viewed", outcome="success", actor=f"staff:{user}",
        patient_id=exchange.patient_id, detail=f"session {session.id}, request {number}")
    return _page("qualification/request.html", user=user, session=session, ex=exchange, number=number)


@bp.get("/<session_id>/rapport")
def report(session_id: str) -> t.Any:
    user = require_staff()
    session = _session_or_404(session_id)
    results, unmatched = service().results(session)
    return _page("qualification/report.html", user=user, session=session, results=results, unmatched=unmatched,
                 is_assert=lambda item: isinstance(item, AssertResult))


@bp.get("/<session_id>/rapport.<fmt>")
def report_file(session_id: str, fmt: str) -> t.Any:
    require_staff()
    session = _session_or_404(session_id)
    results, _ = service().results(session)
    if not results:
        abort(404)
    name = f"kwalificatie-{session.id[:8]}"
    if fmt == "xml":
        return Response(junit_xml(results), content_type="application/xml",
                        headers={"Content-Disposition": f'attachment; filename="{name}-junit.xml"'})
    if fmt == "txt":
        return Response(text_report(results), content_type="text/plain; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.txt"'})
    abort(404)
