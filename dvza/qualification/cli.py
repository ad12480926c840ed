"""``dvza conformance client``: client qualification sessions from the command line.

Run with the same settings as the DVZA (``DVZA_INSTANCE_PATH`` / ``DVZA_DATABASE_URL``,
``DVZA_QUALIFICATION_MODE=true``): the session lives in the DVZA's database, the running DVZA records
the traffic, these commands start, step and end it and print the report.
"""

from __future__ import annotations

import json
import sys
import typing as t
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..conformance.report import junit_xml
from ..conformance.report import text_report
from .pages import local_time
from .sessions import QualificationService
from .sessions import SessionError
from .sets import SETS

START_HELP = f"""Start a client qualification session: this DVZA plays Nictiz's test server for your PGO.

\b
  dvza conformance client start --set bgz [--set pdfa …] [--pgo pgo.example.nl]

Sets: {", ".join(SETS)}. With --pgo only that PGO's access tokens are recorded (its OAuth client_id, the
PGO's hostname); without it every request with a token of the session's test persons counts,
including the Nictiz qualification tokens. Then let your PGO do what the printed step asks, as the
test persons shown, over the normal MedMij flow (login, consent, token over mutual TLS, FHIR).
`next` goes to the next step (questionnaire scripts each get a fresh Task), `end` evaluates the
Nictiz client-role scripts against what your PGO sent and prints the report.
"""


def _service() -> QualificationService:
    service = current_app.extensions.get("dvza.qualification")
    if service is None:
        raise click.ClickException("client qualification needs qualification mode: set DVZA_QUALIFICATION_MODE=true "
                                   "(never in production)")
    return t.cast(QualificationService, service)


def _describe(service: QualificationService, session: t.Any) -> None:
    click.echo(f"session {session.id}  sets: {session.sets}  status: {session.status}"
               f"{'  PGO: ' + session.client_id if session.client_id else ''}")
    if session.status != "active":
        click.echo(f"ended: {session.passed} passed, {session.failed} failed, {session.warnings} warnings")
        return
    step = service.step_info(session)
    click.echo(f"step {step.number} of {step.count} — do now with your PGO:")
    for info in step.scripts:
        persons = ", ".join(f"{p.name}" + (f" (BSN {p.bsn})" if p.bsn else "") for p in info.persons)
        click.echo(f"  {info.title}  [as {persons}]")
        if info.description:
            click.echo(f"      {info.description}")
    recorded = len(service.requests(session.id))
    click.echo(f"{recorded} requests recorded so far.")
    later = "next (then end)" if step.number < step.count else "end"
    click.echo(f"when done: dvza conformance client {later} {session.id[:8]}")


@click.group("client", help="Client qualification sessions: the DVZA plays Nictiz's test server for a PGO.")
def client_group() -> None:
    pass


@client_group.command("start", help=START_HELP)
@click.option("--set", "sets", multiple=True, required=True, type=click.Choice(sorted(SETS), case_sensitive=False))
@click.option("--pgo", "client_id", help="Record only this PGO's access tokens (its hostname = client_id).")
@with_appcontext
def start(sets: tuple[str, ...], client_id: str | None) -> None:
    service = _service()
    try:
        session = service.start(list(sets), actor="cli", client_id=client_id)
    except SessionError as exc:
        raise click.ClickException(str(exc)) from None
    _describe(service, session)
    work = json.loads(session.work)
    for path, done in work.items():
        if "setup" in done:
            failed = [i for i in done["setup"]["items"] if i.get("assert", {}).get("status") == "FAIL"]
            if failed:
                click.echo(f"warning: the setup of {Path(path).name} failed: {failed[0]['assert']['detail']}", err=True)


@client_group.command("status", help="Show a session: its step, what to do, how many requests were recorded.")
@click.argument("session_id")
@with_appcontext
def status(session_id: str) -> None:
    service = _service()
    try:
        _describe(service, service.find(session_id))
    except SessionError as exc:
        raise click.ClickException(str(exc)) from None


@client_group.command("next", help="Go to the next step (teardown of this step's scripts, setup of the next).")
@click.argument("session_id")
@with_appcontext
def next_step(session_id: str) -> None:
    service = _service()
    try:
        session = service.advance(service.find(session_id).id, actor="cli")
    except SessionError as exc:
        raise click.ClickException(str(exc)) from None
    _describe(service, session)


def _write_reports(service: QualificationService, session: t.Any, junit: Path | None, text: Path | None,
                   verbose: bool) -> int:
    results, unmatched = service.results(session)
    report = text_report(results, verbose=verbose)
    if unmatched:
        click.echo(f"{len(unmatched)} recorded requests belonged to no expected operation (allowed):")
        for label in unmatched:
            click.echo(f"  {label}")
    click.echo(report)
    if junit:
        junit.write_bytes(junit_xml(results))
    if text:
        text.write_text(report + "\n", encoding="utf-8")
    return 1 if session.failed else 0


def _report_options(function: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """--junit, --text and --verbose of the commands that print a session's report."""
    for option in reversed([
        click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML here."),
        click.option("--text", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write the text report here."),
        click.option("-v", "--verbose", is_flag=True, help="Show passing asserts too."),
    ]):
        function = option(function)
    return function


@client_group.command("end", help="End the session and evaluate the client-role scripts; exit 1 on any failure.")
@click.argument("session_id")
@_report_options
@with_appcontext
def end(session_id: str, junit: Path | None, text: Path | None, verbose: bool) -> None:
    service = _service()
    try:
        session = service.end(service.find(session_id).id, actor="cli")
    except SessionError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(_write_reports(service, session, junit, text, verbose))


@client_group.command("report", help="Print the report of an ended session again.")
@click.argument("session_id")
@_report_options
@with_appcontext
def report(session_id: str, junit: Path | None, text: Path | None, verbose: bool) -> None:
    service = _service()
    try:
        session = service.find(session_id)
    except SessionError as exc:
        raise click.ClickException(str(exc)) from None
    if session.status != "ended":
        raise click.ClickException("the session is still running: end it first")
    sys.exit(_write_reports(service, session, junit, text, verbose))


@client_group.command("list", help="The latest sessions.")
@with_appcontext
def list_sessions() -> None:
    for session in _service().list():
        result = f"{session.passed} passed, {session.failed} failed" if session.status == "ended" else \
            f"step {session.step + 1}"
        started = local_time(session.started_at)
        click.echo(f"{session.id}  {started}  {session.status:6}  {session.sets:30}  {result}")
