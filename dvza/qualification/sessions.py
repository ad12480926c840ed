"""Client qualification sessions: start, step, end, evaluate (issue 15; fhir-content.md §7–§8).

A vendor (or hospital staff for them) starts a session for one or more Nictiz client-role sets. The
DVZA then plays Nictiz's test server: it serves the Cert test data, runs each script's ``setup``
itself (e.g. creates the ``requested`` Task the PGO must find) and records every FHIR request the
session's tokens make (:mod:`dvza.qualification.recorder`). When the session ends, each script is
evaluated against that traffic (:mod:`dvza.conformance.clientrole`) and the report is kept.

Steps: scripts without setup can all run at once; a script whose setup prepares data for a test
person (the questionnaire scripts) runs in a step of its own when another such script of the same
person is already in the step — on Touchstone each script runs on its own for the same reason
("someone else is running a test for this patient"). ``next`` runs the teardown of the step's
scripts and the setup of the next step's. A script without setup may be done in any step.

Test data: Nictiz's test server holds every fixture of a set's load script. This DVZA's loader refuses
one of them on purpose — PDF/A's DocumentReference 3, whose document does not exist (a DVZA must not
serve it; client scenario 1.4 checks that the PGO copes with the 404). While a session of that set
runs, such a DocumentReference is served as on Nictiz's server; when the session ends it is hidden
again (``hidden_by`` :data:`TEST_SERVER_FIXTURE`).

Teardown: the scripts delete what the test created. This DVZA closes a Task the session created and
the PGO left open (status ``cancelled``) and keeps the answers a PGO sent: they are a submission in
the return queue like any other, so staff can see them on the hospital page.

Only in qualification mode; a session refuses test persons that another active session records.
"""

from __future__ import annotations

import json
import re
import typing as t
import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from fhir_api import fhirjson
from fhir_api.models import ResourceRow
from fhir_api.store import ResourceStore
from oauth.models import Token
from oauth.tokens import QUALIFICATION
from oauth.tokens import hash_secret

from ..conformance.clientrole import ClientScript
from ..conformance.clientrole import Recorded
from ..conformance.clientrole import SessionEvaluation
from ..conformance.clientrole import document_of
from ..conformance.clientrole import evaluate_session
from ..conformance.report import results_from_json
from ..conformance.report import results_to_json
from ..conformance.report import test_from_json
from ..conformance.report import test_to_json
from ..conformance.report import totals
from ..conformance.runner import FAIL
from ..conformance.runner import PASS
from ..conformance.runner import SKIP
from ..conformance.runner import WARN
from ..conformance.runner import OperationResult
from ..conformance.runner import RunOptions
from ..conformance.runner import ScriptResult
from ..conformance.runner import ScriptState
from ..conformance.runner import TestResult
from ..conformance.runner import pin_defaults
from ..conformance.runner import run_actions
from ..conformance.testscript import TestScript
from ..conformance.testscript import parse_testscript
from ..db import savepoint
from .inprocess import INTERNAL_BASE
from .inprocess import session_for
from .models import QualificationSession
from .models import RecordedRequest
from .sets import ClientSet
from .sets import TestPerson
from .sets import find_set
from .sets import script_paths
from .sets import scripts_root
from .sets import test_persons

if t.TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.orm import Session

#: questionnaire Tasks a PGO can still act on (STU3 task-status)
OPEN_TASK_STATUSES = frozenset({"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"})
QUESTIONNAIRE_TASK_CODE = ("http://loinc.org", "74468-0")
#: ``hidden_by`` of test-server fixtures this DVZA serves only during a session (see the module docstring)
TEST_SERVER_FIXTURE = "qualification:test-server-fixture"


class SessionError(Exception):
    """A session cannot be started, stepped or ended: why, in English (CLI) and in Dutch (staff pages)."""

    def __init__(self, message: str, dutch: str | None = None) -> None:
        super().__init__(message)
        self.dutch = dutch or message


@dataclass
class ScriptInfo:
    """What a vendor needs to know about one script of the current step."""

    path: str
    title: str
    description: str
    persons: list[TestPerson] = field(default_factory=list)
    has_setup: bool = False


@dataclass
class StepInfo:
    number: int
    count: int
    scripts: list[ScriptInfo]


class QualificationService:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.database = app.extensions["dvza.db"]
        self.root = scripts_root(app.config)

    # ---------------------------------------------------------------------------------- helpers
    def _db(self) -> Session:
        return t.cast("Session", self.database.sessionmaker())

    def _script(self, path: str) -> TestScript:
        return parse_testscript(self.root / path)

    def token_patient(self, db: Session) -> t.Callable[[str], str | None]:
        """The patient of a script's ``Authorization`` value (a Nictiz qualification token)."""
        cache: dict[str, str | None] = {}

        def lookup(header: str) -> str | None:
            token = header.split(" ", 1)[1].strip() if " " in header else header.strip()
            if token not in cache:
                row = db.scalar(select(Token).where(Token.token_hash == hash_secret(token),
                                                    Token.kind == QUALIFICATION))
                cache[token] = row.patient_id if row is not None else None
            return cache[token]

        return lookup

    def script_patients(self, script: TestScript, lookup: t.Callable[[str], str | None],
                        *, setup_only: bool = False) -> list[str]:
        actions = script.setup if setup_only else list(script.all_actions())
        found: list[str] = []
        for action in actions:
            if action.operation is None:
                continue
            for name, value in action.operation.request_headers:
                if name.lower() == "authorization" and "${" not in value:
                    patient = lookup(value)
                    if patient and patient not in found:
                        found.append(patient)
        return found

    def persons(self) -> dict[str, TestPerson]:
        persons = test_persons(self.root)
        # test persons without a BSN on the Nictiz list (the questionnaire persons) may have one in
        # the development login (``dvza demo prepare``)
        for entry in self.app.config.get("DEV_LOGIN_PERSONS") or []:
            name, bsn = str(entry.get("name", "")), str(entry.get("bsn", ""))
            for pid, person in list(persons.items()):
                if person.bsn is None and name.split(" (")[0] == person.name:
                    persons[pid] = TestPerson(pid, person.name, bsn)
        return persons

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.app.config.get("TIMEZONE") or "Europe/Amsterdam")).date()

    # ------------------------------------------------------------------------------------ start
    def start(self, set_names: t.Sequence[str], *, actor: str, client_id: str | None = None) -> QualificationSession:
        """Start a session for the named sets and run the setup of its first step."""
        if not self.app.config.get("QUALIFICATION_MODE"):
            raise SessionError("Client qualification sessions need qualification mode (DVZA_QUALIFICATION_MODE=true); "
                               "never switch it on in production.", "Dit kan alleen in de kwalificatiemodus.")
        try:
            chosen: list[ClientSet] = list(dict.fromkeys(find_set(n) for n in set_names))
        except ValueError as exc:
            raise SessionError(str(exc), "Dit onderdeel bestaat niet.") from None
        if not chosen:
            raise SessionError("Choose at least one set.", "Kies minstens één onderdeel.")
        try:
            paths = [p for s in chosen for p in script_paths(self.root, s)]
        except FileNotFoundError as exc:
            raise SessionError(str(exc), "De scripts van Nictiz zijn niet gevonden. Vraag de beheerder om ze te "
                                         "installeren (DVZA_QUALIFICATION_SCRIPTS_DIR).") from None
        client_id = (client_id or "").strip().lower() or None
        with self._db() as db:
            lookup = self.token_patient(db)
            scripts = {p: self._script(p) for p in paths}
            patients_of = {p: self.script_patients(s, lookup) for p, s in scripts.items()}
            missing = [p for p, found in patients_of.items() if not found]
            if missing:
                raise SessionError(f"The test persons of {Path(missing[0]).name} are not known here: load the Cert "
                                   "test data and the qualification tokens first (dvza demo prepare, or dvza testdata "
                                   "load + dvza testdata tokens).",
                                   "De testpersonen van Nictiz zijn hier niet bekend. Vraag de beheerder om de "
                                   "testgegevens en de kwalificatietokens te laden.")
            patients = sorted({pid for found in patients_of.values() for pid in found})
            absent = [pid for pid in patients if db.scalar(select(ResourceRow.pk).where(
                ResourceRow.resource_type == "Patient", ResourceRow.logical_id == pid)) is None]
            if absent:
                raise SessionError(f"Test person {absent[0]} is not loaded: load the Cert test data first "
                                   "(dvza demo prepare or dvza testdata load).",
                                   f"Testpersoon {absent[0]} is niet geladen. Vraag de beheerder om de testgegevens "
                                   "te laden.")
            busy = self._busy(db, patients)
            if busy:
                raise SessionError(f"Another session ({busy[0][:8]}) is running for test person {busy[1]}. End it "
                                   "first, or wait until it is done.",
                                   f"Er loopt al een sessie ({busy[0][:8]}) met testpersoon {busy[1]}. Rond die "
                                   "eerst af, of wacht tot die klaar is.")
            steps = plan_steps(scripts, {p: self.script_patients(s, lookup, setup_only=True)
                                         for p, s in scripts.items()})
            today = self.today()
            session = QualificationSession(
                id=str(uuid.uuid4()), status="active", sets=" ".join(s.key for s in chosen),
                started_at=datetime.now(UTC), started_by=actor[:128], client_id=client_id,
                today=today.isoformat(), step=0, steps=json.dumps(steps), patients=json.dumps(patients),
                variables=json.dumps({p: pin_defaults(s, today) for p, s in scripts.items()}), work="{}",
            )
            db.add(session)
            db.commit()
        self._audit("qualification.session-started", actor, session, f"sets {session.sets}")
        self._serve_test_server_fixtures(session.id, chosen, today)
        self._run_setups(session.id)
        return self.get(session.id)

    def _busy(self, db: Session, patients: list[str]) -> tuple[str, str] | None:
        for other in db.scalars(select(QualificationSession).where(QualificationSession.status == "active")):
            overlap = set(json.loads(other.patients)) & set(patients)
            if overlap:
                return other.id, sorted(overlap)[0]
        return None

    # ------------------------------------------------------------------------------- stepping
    def advance(self, session_id: str, *, actor: str) -> QualificationSession:
        """Teardown of the current step's scripts, then setup of the next step's."""
        session = self._active(session_id)
        steps = json.loads(session.steps)
        if session.step + 1 >= len(steps):
            raise SessionError("This is the last step; end the session to get the report.",
                               "Dit is de laatste stap. Rond de sessie af om het rapport te krijgen.")
        self._run_teardowns(session_id)
        with self._db() as db:
            row = db.get(QualificationSession, session_id)
            assert row is not None
            row.step += 1
            db.commit()
        self._audit("qualification.session-step", actor, session, f"step {session.step + 2} of {len(steps)}")
        self._run_setups(session_id)
        return self.get(session_id)

    def end(self, session_id: str, *, actor: str) -> QualificationSession:
        """Teardown of the current step, then evaluate every script against the recorded traffic."""
        self._active(session_id)
        self._run_teardowns(session_id)
        self._hide_test_server_fixtures(session_id)
        with self._db() as db:
            row = db.get(QualificationSession, session_id)
            assert row is not None
            row.status = "ended"
            row.ended_at = datetime.now(UTC)
            db.commit()
        evaluation = self.evaluate(session_id)
        counts = totals(evaluation.results)
        with self._db() as db:
            row = db.get(QualificationSession, session_id)
            assert row is not None
            row.report = json.dumps({"results": results_to_json(evaluation.results),
                                     "unmatched": [ex.label() for ex in evaluation.unmatched]})
            row.passed, row.failed, row.warnings, row.skipped = (counts[PASS], counts[FAIL], counts[WARN],
                                                                 counts[SKIP])
            db.commit()
        session = self.get(session_id)
        self._audit("qualification.session-ended", actor, session, f"{session.passed} passed, {session.failed} failed")
        return session

    def _active(self, session_id: str) -> QualificationSession:
        session = self.find(session_id)
        if session.status != "active":
            raise SessionError("This session has ended.", "Deze sessie is al afgerond.")
        return session

    # ------------------------------------------------------------------------- setup/teardown
    def _client_scripts(self, session: QualificationSession) -> list[tuple[int, str]]:
        return [(index, path) for index, step in enumerate(json.loads(session.steps)) for path in step]

    def _run_setups(self, session_id: str) -> None:
        session = self.get(session_id)
        variables = json.loads(session.variables)
        work = json.loads(session.work)
        for path in json.loads(session.steps)[session.step]:
            script = self._script(path)
            if not script.setup:
                continue
            result = self._setup(script, variables.get(path, {}), date.fromisoformat(session.today))
            work.setdefault(path, {})["setup"] = test_to_json(result)
        self._save_work(session_id, work)

    def _setup(self, script: TestScript, variables: dict[str, str], today: date) -> TestResult:
        test = TestResult("setup (done by the DVZA as the test server)")
        if any(a.operation is not None and a.operation.resource == "Task" for a in script.setup):
            with self._db() as db:
                patients = self.script_patients(script, self.token_patient(db), setup_only=True)
            closed = self.close_open_tasks(patients)
            if closed:
                test.items.append(OperationResult(
                    "close open questionnaire Tasks", "hook",
                    f"{len(closed)} open Task(s) of {', '.join(patients)} closed before the setup: "
                    f"{', '.join(closed)}"))
        state = ScriptState(script, RunOptions(
            base_url=INTERNAL_BASE + self.app.config["FHIR_BASE_PATH"], today=today, variables=variables,
            session=session_for(self.app)))
        run_actions(state, script.setup, test)
        return test

    def _run_teardowns(self, session_id: str) -> None:
        session = self.get(session_id)
        variables = json.loads(session.variables)
        work = json.loads(session.work)
        for path in json.loads(session.steps)[session.step]:
            script = self._script(path)
            if script.teardown:
                work.setdefault(path, {})["teardown"] = test_to_json(self._teardown(script, variables.get(path, {})))
        self._save_work(session_id, work)

    def _teardown(self, script: TestScript, variables: dict[str, str]) -> TestResult:
        test = TestResult("teardown (done by the DVZA as the test server)")
        state = ScriptState(script, RunOptions(base_url="", variables=variables))
        for action in script.teardown:
            op = action.operation
            if op is None:
                continue
            if op.type_code == "delete" and op.resource == "Task":
                try:
                    task_id = state.substitute(op.params or "").strip("/")
                except ValueError as exc:
                    test.items.append(OperationResult(op.title, "error", str(exc)))
                    continue
                closed = self.close_task(task_id)
                test.items.append(OperationResult(f"delete Task/{task_id}", "hook",
                                                  "closed (status cancelled)" if closed else "already closed"))
            else:
                test.items.append(OperationResult(op.title, "hook", "kept: what a PGO sent stays in the return queue "
                                                                    "for the hospital to see"))
        return test

    def _save_work(self, session_id: str, work: dict[str, t.Any]) -> None:
        with self._db() as db:
            row = db.get(QualificationSession, session_id)
            assert row is not None
            row.work = json.dumps(work)
            db.commit()

    # --------------------------------------------------------------------- test-server fixtures
    def _serve_test_server_fixtures(self, session_id: str, chosen: t.Sequence[ClientSet], today: date) -> None:
        from fhir_api.errors import InvalidResource
        from fhir_api.store import document_issues

        from ..devtools import testdata

        served: list[str] = []
        with self._db() as db:
            store = ResourceStore(db)
            for client_set in chosen:
                cert = (self.root / client_set.folders[0]).parent
                for script in sorted((cert / "_LoadResources").glob("*.xml")):
                    for path in testdata.fixtures_of_load_script(script):
                        resource = testdata.read_fixture(path, today) if path.is_file() else "missing"
                        if isinstance(resource, str) or resource.get("resourceType") != "DocumentReference":
                            continue
                        row = store.get("DocumentReference", str(resource.get("id")))
                        if row is not None:
                            if row.hidden_by == TEST_SERVER_FIXTURE:
                                store.set_hidden("DocumentReference", row.logical_id, None)
                                served.append(f"DocumentReference/{row.logical_id}")
                            continue
                        try:
                            with savepoint(db):
                                store.put(resource)
                        except InvalidResource:
                            if not document_issues(resource, lambda t_, i: store.get(t_, i) is not None, ()):
                                continue
                            store.put(resource, prepared=True)  # as on Nictiz's server: its document is missing
                            served.append(f"DocumentReference/{resource['id']}")
            row = db.get(QualificationSession, session_id)
            assert row is not None
            work = json.loads(row.work)
            work["_fixtures"] = served
            row.work = json.dumps(work)
            db.commit()

    def _hide_test_server_fixtures(self, session_id: str) -> None:
        with self._db() as db:
            session = db.get(QualificationSession, session_id)
            assert session is not None
            for key in json.loads(session.work).get("_fixtures", []):
                type_name, _, logical_id = key.partition("/")
                ResourceStore(db).set_hidden(type_name, logical_id, TEST_SERVER_FIXTURE)
            db.commit()

    # ----------------------------------------------------------------------- questionnaire Tasks
    def close_open_tasks(self, patients: t.Sequence[str]) -> list[str]:
        """Close (``cancelled``) the open questionnaire Tasks of these patients; the ``Task/<id>`` closed."""
        closed = []
        with self._db() as db:
            rows = db.scalars(select(ResourceRow).where(ResourceRow.resource_type == "Task",
                                                        ResourceRow.patient_id.in_(list(patients))))
            for row in list(rows):
                if _close(db, row):
                    closed.append(f"Task/{row.logical_id}")
            db.commit()
        return closed

    def close_task(self, task_id: str) -> bool:
        with self._db() as db:
            row = db.scalar(select(ResourceRow).where(ResourceRow.resource_type == "Task",
                                                      ResourceRow.logical_id == task_id))
            closed = row is not None and _close(db, row)
            db.commit()
        return closed

    # ------------------------------------------------------------------------------- reading
    def find(self, session_id: str) -> QualificationSession:
        """A session by id or by an unambiguous prefix of at least 6 characters."""
        with self._db() as db:
            row = db.get(QualificationSession, session_id)
            if row is None and re.fullmatch(r"[0-9a-f-]{6,36}", session_id):
                found = list(db.scalars(select(QualificationSession).where(
                    QualificationSession.id.startswith(session_id))))
                row = found[0] if len(found) == 1 else None
        if row is None:
            raise SessionError(f"No session {session_id!r}.", "Deze sessie bestaat niet.")
        return row

    def get(self, session_id: str) -> QualificationSession:
        return self.find(session_id)

    def list(self, limit: int = 50) -> list[QualificationSession]:
        with self._db() as db:
            return list(db.scalars(select(QualificationSession)
                                   .order_by(QualificationSession.started_at.desc()).limit(limit)))

    def requests(self, session_id: str) -> list[RecordedRequest]:
        with self._db() as db:
            return list(db.scalars(select(RecordedRequest).where(RecordedRequest.session_id == session_id)
                                   .order_by(RecordedRequest.id)))

    def traffic(self, session_id: str) -> list[Recorded]:
        recorded = []
        for seq, row in enumerate(self.requests(session_id), start=1):
            request_headers = json.loads(row.request_headers)
            response_headers = json.loads(row.response_headers)
            recorded.append(Recorded(
                method=row.method, url=row.url, request_headers=request_headers,
                request=document_of(row.request_body, _header(request_headers, "Content-Type")),
                status=row.status, response_headers=response_headers,
                response=document_of(row.response_body, _header(response_headers, "Content-Type")) or
                document_of("", None),
                seq=seq, recorded_at=_iso(row.recorded_at), patient_id=row.patient_id, client_id=row.client_id,
                token_label=row.token_label, base_url=row.base_url, step=row.step,
            ))
        return recorded

    def evaluate(self, session_id: str) -> SessionEvaluation:
        session = self.get(session_id)
        variables = json.loads(session.variables)
        work = json.loads(session.work)
        scripts = []
        for index, path in self._client_scripts(session):
            script = self._script(path)
            done = work.get(path, {})
            scripts.append(ClientScript(
                script, variables.get(path, {}), frozenset({index}) if script.setup else None,
                setup=test_from_json(done["setup"]) if "setup" in done else None,
                teardown=test_from_json(done["teardown"]) if "teardown" in done else None))
        with self._db() as db:
            return evaluate_session(scripts, self.traffic(session_id), token_patient=self.token_patient(db),
                                    today=date.fromisoformat(session.today))

    def results(self, session: QualificationSession) -> tuple[list[ScriptResult], list[str]]:
        if not session.report:
            return [], []
        data = json.loads(session.report)
        return results_from_json(data["results"]), list(data.get("unmatched", []))

    def step_info(self, session: QualificationSession) -> StepInfo:
        steps = json.loads(session.steps)
        persons = self.persons()
        with self._db() as db:
            lookup = self.token_patient(db)
            infos = []
            for path in steps[min(session.step, len(steps) - 1)]:
                script = self._script(path)
                found = self.script_patients(script, lookup)
                infos.append(ScriptInfo(
                    path=path, title=script.title or script.name or Path(path).stem,
                    description=script.description or "",
                    persons=[persons.get(pid) or TestPerson(pid, pid, None) for pid in found],
                    has_setup=bool(script.setup)))
        return StepInfo(session.step + 1, len(steps), infos)

    def _audit(self, event: str, actor: str, session: QualificationSession, detail: str) -> None:
        audit = self.app.extensions.get("dvza.audit")
        if audit is not None:
            audit.write(event_type=event, outcome="success", actor=actor[:120],
                        detail=f"session {session.id}: {detail}"[:500])


def plan_steps(scripts: t.Mapping[str, TestScript], setup_patients: t.Mapping[str, list[str]]) -> list[list[str]]:
    """Group scripts into steps (see the module docstring): a script with a setup opens a new step when
    the current one already holds a setup of one of its test persons."""
    steps: list[list[str]] = [[]]
    busy: set[str] = set()
    for path, script in scripts.items():
        if script.setup:
            patients = set(setup_patients.get(path, []))
            if patients & busy:
                steps.append([])
                busy = set()
            busy |= patients
        steps[-1].append(path)
    return steps


def _close(db: Session, row: ResourceRow) -> bool:
    task = fhirjson.loads(row.json_text)
    codes = {(c.get("system"), c.get("code")) for c in (task.get("code") or {}).get("coding", [])}
    if QUESTIONNAIRE_TASK_CODE not in codes or task.get("status") not in OPEN_TASK_STATUSES:
        return False
    task["status"] = "cancelled"
    task.pop("text", None)
    ResourceStore(db).put(task)
    return True


def _header(headers: t.Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")

