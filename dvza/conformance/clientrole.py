"""Evaluating client-role TestScripts against recorded traffic (the DVZA plays the test server).

In a client-role script (Nictiz ``PHR-Client``, ``Retrieving-PHR``, ``Sending-PHR``; fhir-content.md §7.2)
the system under test is the *origin*: the operations of its tests are requests the PGO is expected
to send, and the asserts check those requests (``direction=request``: headers, URL, body) and what the
test server answered (``direction=response``). Touchstone evaluates them against the live exchange
with the client; here they are evaluated afterwards against the exchanges a qualification session
recorded (:mod:`dvza.qualification`). Setup and teardown (operations without the SUT as origin) are
the test system's own work and are run by the session, not matched here.

Matching, as Touchstone does it: a recorded exchange can answer an expected operation when it has the
same interaction (read, search, update, create, delete, transaction, batch), resource type, path
(``/<id>``, ``/$lastn``) and parameters (decoded, in any order, a comma list in any order; ``_format``
is ignored because it only chooses the representation). Variables in the parameters (``${task-id}``,
``${DATE, T, D, -30}``) are resolved with the session's pinned values and date. When several exchanges
fit several operations (the BgZ searches of XXX_Helleman and XXX_Mesker are the same requests; two
document transactions of XXX_Ellens), every candidate is scored by the asserts of the operation and
the pairs are assigned best first (fewest failures, then earliest), each exchange to one operation:
the order in which the PGO sent its requests does not matter. An expected operation without any fitting
exchange fails with "never requested", naming the closest request that was made.

``Authorization`` asserts name a Nictiz qualification token. A PGO that went through the real OAuth
flow presents its own access token: the assert passes when the recorded request's token (qualification
or access token) belongs to the same patient as the script's token (``token_patient``). Tokens are
never shown, only their reference.
"""

from __future__ import annotations

import typing as t
import urllib.parse
from dataclasses import dataclass
from dataclasses import field
from datetime import date

from .documents import Document
from .operations import Exchange
from .runner import FAIL
from .runner import PASS
from .runner import SKIP
from .runner import WARN
from .runner import AssertResult
from .runner import OperationResult
from .runner import RunOptions
from .runner import ScriptResult
from .runner import ScriptState
from .runner import TestResult
from .runner import evaluate_assert
from .testscript import Action
from .testscript import Assert
from .testscript import Operation
from .testscript import TestScript
from .variables import VariableError

#: query parameters that choose the representation only (FHIR STU3 http.html#mime-type)
IGNORED_PARAMS = frozenset({"_format"})


@dataclass
class Recorded(Exchange):
    """An exchange recorded by a qualification session, with whose token it carried."""

    seq: int = 0
    recorded_at: str = ""
    #: the patient of the token the request carried (None: no valid token)
    patient_id: str | None = None
    client_id: str | None = None
    #: how the token is shown: kind and reference, never the token (e.g. ``access token 3fa2…``)
    token_label: str = ""
    #: FHIR base URL as the request reached it (``https://dvza.example/fhir``)
    base_url: str = ""
    #: which step of the session was running when it was recorded
    step: int = 0

    def label(self) -> str:
        who = f", token of {self.patient_id}" if self.patient_id else ""
        return f"#{self.seq} {self.method} {self.relative_url()} → {self.status}{who}"

    def relative_url(self) -> str:
        if self.base_url and self.url.startswith(self.base_url):
            return self.url[len(self.base_url):] or "/"
        return self.url


@dataclass(frozen=True)
class Shape:
    """What identifies a request for matching: interaction, type, path after the type, parameters."""

    interaction: str
    resource: str | None
    path: str
    params: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params)
        target = f"{self.resource or '[base]'}{self.path}{'?' + query if query else ''}"
        return f"{self.interaction} {target}"


def normalise_query(query: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = urllib.parse.unquote(name)
        if name in IGNORED_PARAMS:
            continue
        values = sorted(urllib.parse.unquote(v) for v in value.split(","))
        pairs.append((name, ",".join(values)))
    return tuple(sorted(pairs))


def expected_shape(op: Operation, substitute: t.Callable[[str], str]) -> Shape:
    """The request an operation describes (https://hl7.org/fhir/STU3/testscript-definitions.html#TestScript.setup.action.operation)."""
    code = op.type_code or ""
    params = substitute(op.params) if op.params else ""
    if op.url:
        url = substitute(op.url)
        path_part, _, query = url.partition("?")
        segments = [s for s in urllib.parse.urlsplit(path_part).path.split("/") if s]
        resource = segments[0] if segments else None
        return Shape(code, resource, "".join(f"/{s}" for s in segments[1:]), normalise_query(query))
    if code in ("transaction", "batch"):
        return Shape(code, None, "", ())
    path, _, query = params.partition("?")
    if path and not path.startswith("/"):
        path = "/" + path
    interaction = {"search-type": "search", "get": "read"}.get(code, code)
    return Shape(interaction, op.resource, urllib.parse.unquote(path.rstrip("/")), normalise_query(query))


def recorded_shape(ex: Exchange, base_url: str) -> Shape:
    """The interaction a recorded request was (https://hl7.org/fhir/STU3/http.html)."""
    split = urllib.parse.urlsplit(ex.url)
    base_path = urllib.parse.urlsplit(base_url).path.rstrip("/")
    path = split.path[len(base_path):] if split.path.startswith(base_path) else split.path
    segments = [urllib.parse.unquote(s) for s in path.split("/") if s]
    params = normalise_query(split.query)
    method = ex.method.upper()
    if not segments:
        if method == "POST":
            kind = (ex.request.resource or {}).get("type") if ex.request is not None and ex.request.resource else None
            return Shape(kind if kind in ("transaction", "batch") else "post", None, "", params)
        return Shape(method.lower(), None, "", params)
    resource, rest = segments[0], segments[1:]
    if method == "GET":
        if not rest:
            return Shape("search", resource, "", params)
        if rest[0].startswith("$"):
            return Shape("search", resource, "/" + "/".join(rest), params)
        if len(rest) >= 3 and rest[1] == "_history":
            return Shape("vread", resource, "/" + "/".join(rest), params)
        return Shape("read", resource, "/" + "/".join(rest), params)
    if method == "POST" and rest == ["_search"]:
        form = ex.request.text if ex.request is not None else ""
        return Shape("search", resource, "", tuple(sorted(params + normalise_query(form))))
    if method == "POST" and not rest:
        return Shape("create", resource, "", params)
    if method == "PUT":
        return Shape("update", resource, "/" + "/".join(rest), params)
    if method == "DELETE":
        return Shape("delete", resource, "/" + "/".join(rest), params)
    return Shape(method.lower(), resource, "/" + "/".join(rest), params)


# ------------------------------------------------------------------------------------ evaluation
@dataclass
class Expected:
    """One operation the PGO should have sent, with the asserts that follow it in its test."""

    script_index: int
    test_index: int
    op: Operation
    asserts: list[Assert]
    shape: Shape
    #: the steps whose recordings may answer it (None: any)
    steps: frozenset[int] | None
    matched: Recorded | None = None


@dataclass
class ClientScript:
    """A client-role script as a session runs it: pinned variables, the steps it may be answered in,
    and what its setup and teardown did (run by the session as the test system)."""

    script: TestScript
    variables: dict[str, str] = field(default_factory=dict)
    steps: frozenset[int] | None = None
    setup: TestResult | None = None
    teardown: TestResult | None = None


TokenPatient = t.Callable[[str], "str | None"]


@dataclass
class SessionEvaluation:
    results: list[ScriptResult]
    #: recorded requests no expected operation used (extra requests are allowed; shown for information)
    unmatched: list[Recorded]


def evaluate_session(scripts: t.Sequence[ClientScript], traffic: t.Sequence[Recorded], *,
                     token_patient: TokenPatient, today: date | None = None) -> SessionEvaluation:
    """Evaluate each client-role script against the recorded traffic (see the module docstring)."""
    states = [_state(cs, today) for cs in scripts]
    expected: list[Expected] = []
    for index, (cs, state) in enumerate(zip(scripts, states, strict=True)):
        for test_index, test in enumerate(cs.script.tests):
            for op, asserts in _operations(cs.script, test.actions):
                try:
                    shape = expected_shape(op, state.substitute)
                except VariableError:
                    shape = Shape(op.type_code or "", op.resource, op.params or "", ())
                expected.append(Expected(index, test_index, op, asserts, shape, cs.steps))
    _assign(expected, traffic, states, token_patient)
    by_script: dict[int, list[Expected]] = {}
    for item in expected:
        by_script.setdefault(item.script_index, []).append(item)
    results = []
    for index, (cs, state) in enumerate(zip(scripts, states, strict=True)):
        results.append(_script_result(cs, state, by_script.get(index, []), traffic, token_patient))
    used = {id(item.matched) for item in expected if item.matched is not None}
    return SessionEvaluation(results, [ex for ex in traffic if id(ex) not in used])


def _state(cs: ClientScript, today: date | None) -> ScriptState:
    return ScriptState(cs.script, RunOptions(base_url="", today=today, variables=dict(cs.variables)))


def _operations(script: TestScript, actions: list[Action]) -> t.Iterator[tuple[Operation, list[Assert]]]:
    current: Operation | None = None
    asserts: list[Assert] = []
    for action in actions:
        if action.operation is not None:
            if current is not None:
                yield current, asserts
            current, asserts = (action.operation, []) if script.is_client_request(action.operation) else (None, [])
        elif action.assertion is not None and current is not None:
            asserts.append(action.assertion)
    if current is not None:
        yield current, asserts


def _fits(item: Expected, ex: Recorded) -> bool:
    if item.steps is not None and ex.step not in item.steps:
        return False
    return recorded_shape(ex, ex.base_url) == item.shape


def _assign(expected: list[Expected], traffic: t.Sequence[Recorded], states: list[ScriptState],
            token_patient: TokenPatient) -> None:
    pairs: list[tuple[int, int, int, int]] = []  # (failures, seq, expected index, traffic index)
    for e_index, item in enumerate(expected):
        for x_index, ex in enumerate(traffic):
            if _fits(item, ex):
                results = _asserts_on(states[item.script_index], item, ex, token_patient, scratch=True)
                failures = sum(1 for r in results if r.status == FAIL)
                pairs.append((failures, ex.seq, e_index, x_index))
    used_expected: set[int] = set()
    used_traffic: set[int] = set()
    for _failures, _seq, e_index, x_index in sorted(pairs):
        if e_index in used_expected or x_index in used_traffic:
            continue
        expected[e_index].matched = traffic[x_index]
        used_expected.add(e_index)
        used_traffic.add(x_index)


def _asserts_on(state: ScriptState, item: Expected, ex: Recorded, token_patient: TokenPatient, *,
                scratch: bool = False) -> list[AssertResult]:
    saved = (state.last, dict(state.responses), dict(state.fixtures))
    state.last, state.last_skipped = ex, False
    if item.op.response_id:
        state.responses[item.op.response_id] = ex
        state.fixtures.pop(item.op.response_id, None)
    results: list[AssertResult] = []
    stopped = False
    for a in item.asserts:
        if stopped:
            results.append(AssertResult(SKIP, a.title, a.kind, "skipped: an earlier assert with stopTestOnFail failed",
                                        request=ex.label()))
            continue
        result = _assert(state, a, ex, token_patient)
        results.append(result)
        if result.status == FAIL and a.stop_test_on_fail:
            stopped = True
    if scratch:
        state.last, state.responses, state.fixtures = saved[0], saved[1], saved[2]
    return results


def _assert(state: ScriptState, a: Assert, ex: Recorded, token_patient: TokenPatient) -> AssertResult:
    kind = a.kind
    notes: list[str] = []
    if kind == "headerField" and (a.header_field or "").lower() == "authorization" and a.direction == "request":
        ok, detail = _authorization(state, a, ex, token_patient)
    else:
        outcome = evaluate_assert(state, a, kind)
        ok, detail, notes = outcome.ok, outcome.detail, outcome.notes
    if ok is None:
        status = SKIP
    elif ok:
        status = PASS
    else:
        status = WARN if a.warning_only else FAIL
    return AssertResult(status, a.title, kind, detail, notes, request=ex.label())


def _authorization(state: ScriptState, a: Assert, ex: Recorded, token_patient: TokenPatient) -> tuple[bool, str]:
    try:
        expected = state.substitute(a.value or "")
    except VariableError as exc:
        return False, str(exc)
    patient = token_patient(expected)
    shown = _mask(expected)
    if patient is None:
        return False, (f"the script's token {shown} is not a qualification token of this DVZA "
                       "(import Configuration/QualificationTokens.json with `dvza testdata tokens`)")
    if ex.patient_id is None:
        return False, f"expected a token of patient {patient} (script: {shown}), the request carried no valid token"
    detail = (f"expected a token of patient {patient} (script: {shown}); the request carried "
              f"{ex.token_label or 'a token'} of patient {ex.patient_id}")
    return ex.patient_id == patient, detail


def _mask(header: str) -> str:
    scheme, _, token = header.partition(" ")
    token = token or scheme
    return f"{scheme + ' ' if _ else ''}{token[:4]}…{token[-4:]}" if len(token) > 12 else "…"


def _script_result(cs: ClientScript, state: ScriptState, items: list[Expected], traffic: t.Sequence[Recorded],
                   token_patient: TokenPatient) -> ScriptResult:
    result = ScriptResult(str(cs.script.path), cs.script.label)
    if cs.setup is not None:
        result.tests.append(cs.setup)
    by_test: dict[int, list[Expected]] = {}
    for item in items:
        by_test.setdefault(item.test_index, []).append(item)
    for test_index, test in enumerate(cs.script.tests):
        outcome = TestResult(test.name or test.id or f"test {test_index + 1}")
        result.tests.append(outcome)
        stopped = False
        for item in by_test.get(test_index, []):
            if stopped:
                outcome.items.append(OperationResult(item.op.title, "skipped", "an earlier assert with "
                                                                            "stopTestOnFail failed"))
                outcome.items += [AssertResult(SKIP, a.title, a.kind, "skipped") for a in item.asserts]
                continue
            if item.matched is None:
                why = _never_requested(item, traffic, token_patient, state)
                outcome.items.append(OperationResult(item.shape.describe(), "error", why))
                outcome.items += [AssertResult(FAIL, a.title, a.kind, why) for a in item.asserts]
                stopped = True
                continue
            ex = item.matched
            outcome.items.append(OperationResult(ex.label(), "sent", f"recorded {ex.recorded_at}"))
            asserts = _asserts_on(state, item, ex, token_patient)
            outcome.items += asserts
            if any(r.status == FAIL and a.stop_test_on_fail for r, a in zip(asserts, item.asserts, strict=True)):
                stopped = True
    if cs.teardown is not None:
        result.tests.append(cs.teardown)
    return result


def _never_requested(item: Expected, traffic: t.Sequence[Recorded], token_patient: TokenPatient,
                     state: ScriptState) -> str:
    patient = None
    for name, value in item.op.request_headers:
        if name.lower() == "authorization":
            try:
                patient = token_patient(state.substitute(value))
            except VariableError:
                patient = None
    who = f" with a token of patient {patient}" if patient else ""
    text = f"never requested: {item.shape.describe()}{who}"
    close = [ex for ex in traffic if _closeness(item.shape, recorded_shape(ex, ex.base_url)) > 0]
    if close:
        best = max(close, key=lambda ex: (_closeness(item.shape, recorded_shape(ex, ex.base_url)), -ex.seq))
        shape = recorded_shape(best, best.base_url)
        text += f"; closest request made: {best.label()} ({shape.describe()})"
        if item.steps is not None and best.step not in item.steps:
            text += " — made during another step of the session"
    return text


def _closeness(want: Shape, got: Shape) -> int:
    if want.interaction != got.interaction or want.resource != got.resource:
        return 0
    score = 1 + (want.path == got.path)
    return score + len(set(want.params) & set(got.params))


def document_of(text: str | None, content_type: str | None) -> Document | None:
    """A recorded body as a runner :class:`Document` (None when there was none)."""
    from .documents import format_of

    if text is None:
        return None
    return Document(text, format_of(content_type, text[:64]))
