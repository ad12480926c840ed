"""Running a parsed TestScript against a FHIR server (execution semantics of
https://hl7.org/fhir/STU3/testscript.html#6.1.1: setup, each test, teardown; fixtures; variables;
fhir-content.md §8.1).

* Operations keep the last exchange; ``responseId`` also stores the response as a fixture.
* Asserts read the last response (``direction=response``, default) or request, or ``sourceId``.
* A failed assert with ``stopTestOnFail`` skips the rest of its test; a failed setup skips the tests.
* ``warningOnly`` turns a failure into WARN. Nothing is silently passed: what cannot run is SKIP.
* ``purge`` (and other non-HTTP operations) call the ``reset`` hook; without one they are SKIP, and so
  are the asserts on their (absent) response.
"""

from __future__ import annotations

import dataclasses
import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import date

import requests

from . import asserts as chk
from . import fhirpath
from .documents import Document
from .documents import from_file
from .documents import mime_type
from .documents import with_status
from .operations import HOOK_OPERATIONS
from .operations import HTTP_METHODS
from .operations import WITH_BODY
from .operations import Exchange
from .operations import build_url
from .operations import request_headers
from .operations import send
from .testscript import Action
from .testscript import Assert
from .testscript import Operation
from .testscript import TestScript
from .variables import Substitution
from .variables import VariableError

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"


@dataclass
class AssertResult:
    status: str
    title: str
    kind: str
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    #: the request the assert looked at (client-role evaluation: which recorded request)
    request: str = ""


@dataclass
class OperationResult:
    title: str
    status: str  # "sent", "error", "skipped", "hook"
    detail: str = ""


@dataclass
class TestResult:
    name: str
    items: list[AssertResult | OperationResult] = field(default_factory=list)

    @property
    def asserts(self) -> list[AssertResult]:
        return [i for i in self.items if isinstance(i, AssertResult)]


TestResult.__test__ = False  # type: ignore[attr-defined]


@dataclass
class ScriptResult:
    path: str
    label: str
    tests: list[TestResult] = field(default_factory=list)
    error: str | None = None

    @property
    def asserts(self) -> list[AssertResult]:
        return [a for test in self.tests for a in test.asserts]

    def count(self, status: str) -> int:
        return sum(1 for a in self.asserts if a.status == status) + (1 if status == FAIL and self.error else 0)


#: reset hook: (script, operation, substitute) → (ok, detail)
ResetHook = t.Callable[[TestScript, Operation, t.Callable[[str], str]], tuple[bool, str]]


@dataclass
class RunOptions:
    base_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    reset: ResetHook | None = None
    before_script: t.Callable[[TestScript], None] | None = None
    timeout: float = 60.0
    today: date | None = None
    session: requests.Session | None = None
    #: fixed variable values (win over ``defaultValue``): e.g. the values :func:`pin_defaults` chose
    variables: dict[str, str] = field(default_factory=dict)


class ScriptState:
    """The state of one script execution: fixtures, responses by id, the last exchange, variables."""

    def __init__(self, script: TestScript, options: RunOptions) -> None:
        self.script = script
        self.options = options
        self.session = options.session or requests.Session()
        self.fixtures: dict[str, Document] = {}
        self.responses: dict[str, Exchange] = {}
        self.last: Exchange | None = None
        self.last_skipped = False
        self.defaults = {v.name: v.default_value for v in script.variables}
        self.defaults.update({k: v for k, v in options.tokens.items() if k in self.defaults})
        self.defaults.update({k: v for k, v in options.variables.items() if k in self.defaults})
        self.vars = {v.name: v for v in script.variables}
        self.subst = Substitution(self.lookup, options.today)

    def fixture(self, fid: str | None) -> Document | None:
        if not fid:
            return None
        if fid in self.fixtures:
            return self.fixtures[fid]
        if fid in self.responses and self.responses[fid].response is not None:
            return self.responses[fid].response
        fx = self.script.fixtures.get(fid)
        if fx is None or fx.path is None:
            return None
        doc = from_file(fx.path)
        self.fixtures[fid] = doc
        return doc

    def header_source(self, sid: str | None) -> Exchange | None:
        return self.responses.get(sid or "") if sid else self.last

    def lookup(self, name: str) -> str | None:
        var = self.vars.get(name)
        if var is None:
            return None
        value: str | None = None
        if var.header_field:
            ex = self.header_source(var.source_id)
            value = ex.header(var.header_field) if ex else None
        elif var.expression or var.path:
            doc = self.fixture(var.source_id) if var.source_id else (self.last.response if self.last else None)
            if doc is not None and doc.resource is not None:
                if var.expression:
                    result = fhirpath.evaluate(self.materialised(doc).resource, var.expression)
                else:
                    result = chk.evaluate_path(doc, var.path or "")
                value = fhirpath.as_text(result[0]) if result else None
        if value is None:
            value = self.defaults.get(name)
        return value

    def materialised(self, doc: Document) -> Document:
        """A fixture body with its ``${…}`` placeholders substituted (Touchstone does this for fixtures;
        placeholders no variable defines stay, e.g. ``${task-fullurl}`` in the 3.4 noQR transaction)."""
        if "${" not in doc.text:
            return doc
        return Document(self.subst.substitute(doc.text, lenient=True), doc.format)

    def substitute(self, text: str) -> str:
        return self.subst.substitute(text)


def pin_defaults(script: TestScript, today: date | None = None) -> dict[str, str]:
    """Each ``defaultValue`` resolved once (``${RANDOM-10}``, ``${UUID}``, ``${CURRENTDATE}`` …), so that
    every use within one execution sees the same value — as Touchstone evaluates a variable's default
    once per test execution (e.g. the ``task-id`` a client-role setup creates and its tests then expect)."""
    defaults = {v.name: v.default_value for v in script.variables if v.default_value is not None}
    subst = Substitution(lambda name: defaults.get(name), today)
    pinned: dict[str, str] = {}
    for name in defaults:
        try:
            pinned[name] = subst.resolve(name)
        except VariableError:
            continue
    return pinned


def run_script(script: TestScript, options: RunOptions) -> ScriptResult:
    """Run one TestScript; never raises for server behaviour (that is reported)."""
    result = ScriptResult(str(script.path), script.label)
    state = ScriptState(script, options)
    if options.before_script is not None:
        try:
            options.before_script(script)
        except Exception as exc:  # noqa: BLE001 - report the hook failure on the script
            result.error = f"before-script hook failed: {exc}"
            return result
    groups: list[tuple[str, list[Action]]] = []
    if script.setup:
        groups.append(("setup", script.setup))
    groups += [(test.name or test.id or f"test {i + 1}", test.actions) for i, test in enumerate(script.tests)]
    if script.teardown:
        groups.append(("teardown", script.teardown))
    setup_failed = False
    for name, actions in groups:
        test = TestResult(name)
        result.tests.append(test)
        if setup_failed and name != "teardown":
            _skip_rest(test, actions, "setup failed")
            continue
        stopped = run_actions(state, actions, test)
        if name == "setup" and (stopped or any(a.status == FAIL for a in test.asserts)):
            setup_failed = True
    return result


def _skip_rest(test: TestResult, actions: list[Action], why: str) -> None:
    for action in actions:
        if action.assertion is not None:
            test.items.append(AssertResult(SKIP, action.assertion.title, action.assertion.kind, why))
        elif action.operation is not None:
            test.items.append(OperationResult(action.operation.title, "skipped", why))


def run_actions(state: ScriptState, actions: list[Action], test: TestResult) -> bool:
    """Run operations and asserts in order into ``test``; True when a ``stopTestOnFail`` assert failed."""
    for i, action in enumerate(actions):
        if action.operation is not None:
            test.items.append(_run_operation(state, action.operation))
        elif action.assertion is not None:
            res = _run_assert(state, action.assertion)
            test.items.append(res)
            if res.status == FAIL and action.assertion.stop_test_on_fail:
                _skip_rest(test, actions[i + 1:], "skipped: an earlier assert with stopTestOnFail failed")
                return True
    return False


def _run_operation(state: ScriptState, op: Operation) -> OperationResult:
    code = op.type_code or ""
    if code in HOOK_OPERATIONS or code not in HTTP_METHODS:
        state.last = None
        state.last_skipped = True
        if state.options.reset is None:
            return OperationResult(op.title, "skipped", f"operation {code!r} is not HTTP; no --reset-command given")
        ok, detail = state.options.reset(state.script, op, state.substitute)
        return OperationResult(op.title, "hook" if ok else "error", detail)
    state.last_skipped = False
    try:
        body = None
        if code in WITH_BODY:
            source = state.fixture(op.source_id)
            if source is None:
                raise VariableError(f"sourceId {op.source_id!r}: no such fixture or response")
            body = state.materialised(source)
        target = state.fixture(op.target_id)
        url = build_url(state.options.base_url, op, state.substitute,
                        state.materialised(target) if target is not None else None)
        headers = request_headers(op, state.substitute, body is not None)
        if body is not None and "Content-Type" not in headers and op.content_type != "none" and body.format:
            headers["Content-Type"] = mime_type(body.format) or ""
    except (VariableError, OSError, ValueError) as exc:
        state.last = Exchange(HTTP_METHODS[code], "", {}, None, error=f"request not built: {exc}")
        return OperationResult(op.title, "error", str(exc))
    exchange = send(state.session, HTTP_METHODS[code], url, headers, body, state.options.timeout)
    state.last = exchange
    if op.response_id:
        state.responses[op.response_id] = exchange
        state.fixtures.pop(op.response_id, None)
    if op.request_id and body is not None:
        state.fixtures[op.request_id] = body
    if exchange.error:
        return OperationResult(op.title, "error", exchange.error)
    return OperationResult(f"{exchange.method} {exchange.url}", "sent", f"HTTP {exchange.status}")


def _run_assert(state: ScriptState, a: Assert) -> AssertResult:
    kind = a.kind
    outcome = evaluate_assert(state, a, kind)
    if outcome.ok is None:
        status = SKIP
    elif outcome.ok:
        status = PASS
    else:
        status = WARN if a.warning_only else FAIL
    return AssertResult(status, a.title, kind, outcome.detail, outcome.notes)


def evaluate_assert(state: ScriptState, a: Assert, kind: str) -> chk.Outcome:  # noqa: C901, PLR0911, PLR0912 - one branch per kind
    """One assert against ``state.last`` (or its ``sourceId``); ``ok`` None when it cannot be evaluated."""
    direction = a.direction or "response"
    try:
        expected = state.substitute(a.value) if a.value is not None else None
        # variables inside FHIRPath (``resource.id = '${task-id}'``) are substituted as Touchstone does
        for name in ("expression", "compare_to_source_expression"):
            text = getattr(a, name)
            if text and "${" in text:
                a = dataclasses.replace(a, **{name: state.substitute(text)})
    except VariableError as exc:
        return chk.Outcome(False, str(exc))
    if kind == "rule":
        return _evaluate_rule(state, a)
    ex = state.last
    needs_exchange = kind not in ("expression", "path", "minimumId", "validateProfileId", "compareToSourceId") \
        or (a.source_id is None)
    if needs_exchange and ex is None:
        if state.last_skipped:
            return chk.Outcome(None, "skipped: the operation before it did not run over HTTP")
        return chk.Outcome(False, "no operation has been executed")
    if needs_exchange and ex is not None and ex.error and direction == "response":
        return chk.Outcome(False, f"no response: {ex.error}")
    if a.source_id:
        doc = state.fixture(a.source_id)
    elif direction == "request":
        doc = ex.request if ex else None
    else:
        doc = ex.response if ex else None
    if doc is not None and a.source_id:
        doc = state.materialised(doc)
    assert_ex = ex if ex is not None else Exchange("", "", {}, None)
    if kind == "responseCode":
        return chk.check_response_code(a, assert_ex)
    if kind == "response":
        return chk.check_response(a, assert_ex)
    if kind == "resource":
        return chk.check_resource(a, doc)
    if kind == "contentType":
        return chk.check_content_type(a, assert_ex, direction)
    if kind == "headerField":
        return chk.check_header(a, assert_ex, direction, expected)
    if kind in ("expression", "compareToSourceId"):
        source = state.fixture(a.compare_to_source_id) if a.compare_to_source_id else None
        return chk.check_expression(a, doc, expected, state.materialised(source) if source else None, {})
    if kind == "validateProfileId":
        return chk.check_validate_profile(state.script.profiles.get(a.validate_profile_id or ""), doc)
    if kind == "minimumId":
        fixture = state.fixture(a.minimum_id)
        return chk.check_minimum(state.materialised(fixture) if fixture else None, doc)
    if kind == "requestURL":
        return chk.check_request_url(a, assert_ex, state.substitute(a.request_url or ""))
    if kind == "requestMethod":
        return chk.check_request_method(a, assert_ex)
    if kind == "navigationLinks":
        return chk.check_navigation_links(a, doc)
    if kind == "path":
        return chk.check_path(a, doc, expected)
    return chk.Outcome(None, f"unsupported assert kind {kind!r}")


def _evaluate_rule(state: ScriptState, a: Assert) -> chk.Outcome:
    call = a.rule
    assert call is not None
    kind = chk.rule_kind(call.rule_id, state.script.rules)
    ex = state.last
    if kind == "queryParamsInSelfLink":
        if ex is None or ex.error:
            return chk.Outcome(False, "no response")
        return chk.check_query_params_in_self_link(ex, ex.response)
    if kind == "rewrite-response-taskStatus":
        source = state.fixture(call.params.get("sourceId")) if call.params.get("sourceId") else \
            (ex.response if ex else None)
        new_status = call.params.get("newStatus")
        target = call.params.get("fixtureId") or (call.outputs[0].get("name") if call.outputs else None)
        if source is None or not new_status or not target:
            return chk.Outcome(False, "rewrite-response-taskStatus needs a response, newStatus and fixtureId")
        try:
            state.fixtures[target] = with_status(source, new_status)
        except ValueError as exc:
            return chk.Outcome(False, f"rewrite-response-taskStatus: {exc}")
        return chk.Outcome(True, f"fixture {target!r} = the Task with status {new_status!r}")
    return chk.Outcome(None, f"Touchstone rule {call.rule_id!r} is not implemented")
