"""Vragenlijsten 2.x (gegevensdiensten 59/60): Task workflow rules and answers checked against their
Questionnaire.

Task (vl-QuestionnaireProvisioningTask, fhir-content.md §4.1): the hospital creates it
``requested``; the PGO may accept, reject or fail it (a PUT that changes only the status), and
completes it only in a transaction that also creates the QuestionnaireResponse, referenced from
``Task.output`` — "a completed Task without answers" is refused (Cert scenario 3.4).

QuestionnaireResponse (STU3 questionnaireresponse.html): every ``linkId`` exists in the
Questionnaire at that place, answers have the item's type, single answers for non-repeating
items, choice answers among the options, required questions answered, groups/display items carry
no answers.
"""

from __future__ import annotations

import typing as t

from .errors import Issue

#: PGO-initiated transitions (STU3 task-status), except completion which needs answers
PGO_TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"received", "accepted", "rejected", "failed"}),
    "received": frozenset({"accepted", "rejected", "failed"}),
    "accepted": frozenset({"in-progress", "failed"}),
    "in-progress": frozenset({"failed", "on-hold"}),
    "on-hold": frozenset({"in-progress", "failed"}),
}
COMPLETABLE_FROM = frozenset({"requested", "received", "accepted", "in-progress"})
#: what the PGO may set on a Task; the server keeps its own version of everything else
PGO_MUTABLE = ("status", "statusReason", "businessStatus", "executionPeriod", "output", "note")
#: what identifies the task: a PUT that differs here is about another task and is refused
PROTECTED_REFERENCES = ("for", "owner", "context", "focus")
PROTECTED_VALUES = ("identifier", "groupIdentifier", "intent", "priority", "basedOn", "partOf")

ANSWER_TYPES: dict[str, tuple[str, ...]] = {
    "boolean": ("valueBoolean",),
    "decimal": ("valueDecimal",),
    "integer": ("valueInteger",),
    "date": ("valueDate",),
    "dateTime": ("valueDateTime",),
    "time": ("valueTime",),
    "string": ("valueString",),
    "text": ("valueString",),
    "url": ("valueUri",),
    "choice": ("valueCoding",),
    "open-choice": ("valueCoding", "valueString"),
    "attachment": ("valueAttachment",),
    "reference": ("valueReference",),
    "quantity": ("valueQuantity",),
}


def task_change_issues(current: dict[str, t.Any], proposed: dict[str, t.Any], *, completing: bool) -> list[Issue]:
    """Why the PGO may not make this change to ``current`` (empty when it may).

    Only the status (and the elements of :data:`PGO_MUTABLE`) may change; the task must still be the
    same task: same code, patient, owner, requester and input references. Free text such as
    ``description`` may differ (the server keeps its own, see :func:`apply_pgo_change`).
    """
    issues = []
    old, new = current.get("status"), proposed.get("status")
    if completing:
        if old not in COMPLETABLE_FROM:
            issues.append(Issue("business-rule", f"A Task with status {old!r} cannot be completed"))
    elif new == "completed":
        issues.append(Issue("business-rule", "A Task can only be completed together with its "
                                             "QuestionnaireResponse (a transaction with both)"))
    elif new != old and new not in PGO_TRANSITIONS.get(old or "", frozenset()):
        issues.append(Issue("business-rule", f"Task status cannot change from {old!r} to {new!r}"))
    checks: dict[str, tuple[t.Any, t.Any]] = {
        "code": (_codes(current.get("code")), _codes(proposed.get("code"))),
        "requester": (_ref((current.get("requester") or {}).get("agent")),
                      _ref((proposed.get("requester") or {}).get("agent"))),
        "input": (_input_refs(current), _input_refs(proposed)),
    }
    for key in PROTECTED_REFERENCES:
        checks[key] = (_ref(current.get(key)), _ref(proposed.get(key)))
    for key in PROTECTED_VALUES:
        checks[key] = (current.get(key), proposed.get(key))
    for key, (was, now) in checks.items():
        if was != now:
            issues.append(Issue("business-rule", f"Task.{key} cannot be changed by the PGO", expression=f"Task.{key}"))
    return issues


def apply_pgo_change(current: dict[str, t.Any], proposed: dict[str, t.Any], now: str) -> dict[str, t.Any]:
    """The stored Task with only the PGO's permitted changes; the narrative (now stale) is dropped."""
    task = {k: v for k, v in current.items() if k != "text" and k.lstrip("_") not in PGO_MUTABLE}
    for key in PGO_MUTABLE:
        for name in (key, "_" + key):
            if name in proposed:
                task[name] = proposed[name]
    task["lastModified"] = now
    task.pop("_lastModified", None)
    return task


def _codes(concept: t.Any) -> frozenset[tuple[str, str]]:
    return frozenset((c.get("system"), c.get("code")) for c in (concept or {}).get("coding", []))


def _ref(reference: t.Any) -> str | None:
    return (reference or {}).get("reference") if isinstance(reference, dict) else None


def _input_refs(task: dict[str, t.Any]) -> list[str | None]:
    return sorted(filter(None, (_ref(i.get("valueReference")) for i in task.get("input", []))))


def questionnaire_of_task(task: dict[str, t.Any]) -> str | None:
    """The ``Questionnaire/<id>`` reference in ``Task.input`` (typed 'Questionnaire')."""
    for item in task.get("input", []):
        reference = (item.get("valueReference") or {}).get("reference", "")
        if reference.startswith("Questionnaire/"):
            return reference
    return None


def response_issues(response: dict[str, t.Any], questionnaire: dict[str, t.Any], where: str) -> list[Issue]:
    """Every way a QuestionnaireResponse does not fit its Questionnaire."""
    issues: list[Issue] = []
    _check_items(questionnaire.get("item", []), response.get("item", []), f"{where}.item", issues,
                 response.get("status") == "completed")
    return issues


def _check_items(definitions: list[dict[str, t.Any]], answers: list[dict[str, t.Any]], path: str,
                 issues: list[Issue], completed: bool) -> None:
    by_link = {d.get("linkId"): d for d in definitions}
    given: dict[str, dict[str, t.Any]] = {}
    for index, item in enumerate(answers):
        here = f"{path}[{index}]"
        link = item.get("linkId")
        definition = by_link.get(link)
        if definition is None:
            issues.append(_issue(here, f"linkId {link!r} is not a question of the Questionnaire here"))
            continue
        if link in given and not definition.get("repeats"):
            issues.append(_issue(here, f"item {link!r} occurs more than once"))
        given[link] = item
        _check_item(definition, item, here, issues, completed)
    if completed:
        for definition in definitions:
            if definition.get("required") and definition.get("linkId") not in given and _enabled(definition, given):
                issues.append(_issue(path, f"required question {definition.get('linkId')!r} is not answered"))


def _check_item(definition: dict[str, t.Any], item: dict[str, t.Any], here: str, issues: list[Issue],
                completed: bool) -> None:
    kind = definition.get("type")
    answers = item.get("answer", [])
    if kind in ("group", "display"):
        if answers:
            issues.append(_issue(here, f"a {kind} item has no answers"))
        _check_items(definition.get("item", []), item.get("item", []), f"{here}.item", issues, completed)
        return
    if len(answers) > 1 and not definition.get("repeats"):
        issues.append(_issue(here, f"question {definition.get('linkId')!r} takes one answer"))
    allowed = ANSWER_TYPES.get(kind or "", ())
    for index, answer in enumerate(answers):
        values = [k for k in answer if k.startswith("value")]
        if len(values) != 1 or values[0] not in allowed:
            issues.append(_issue(f"{here}.answer[{index}]",
                                 f"a {kind} question needs {' or '.join(allowed) or 'no'} answer, got {values}"))
            continue
        if values[0] == "valueCoding" and definition.get("option"):
            options = {(o["valueCoding"].get("system"), o["valueCoding"].get("code"))
                       for o in definition["option"] if "valueCoding" in o}
            coding = answer["valueCoding"]
            if options and (coding.get("system"), coding.get("code")) not in options:
                issues.append(_issue(f"{here}.answer[{index}]", f"{coding.get('code')!r} is not one of the options"))
        _check_items(definition.get("item", []), answer.get("item", []), f"{here}.answer[{index}].item", issues,
                     completed)
    if definition.get("item") and item.get("item"):
        _check_items(definition["item"], item["item"], f"{here}.item", issues, completed)


def _enabled(definition: dict[str, t.Any], given: dict[str, dict[str, t.Any]]) -> bool:
    """STU3 enableWhen (any condition true enables): ``hasAnswer`` or an equal ``answer[x]``."""
    conditions = definition.get("enableWhen", [])
    if not conditions:
        return True
    for condition in conditions:
        answered = given.get(condition.get("question"), {}).get("answer", [])
        if "hasAnswer" in condition:
            if bool(answered) == bool(condition["hasAnswer"]):
                return True
            continue
        expected = {k: v for k, v in condition.items() if k.startswith("answer")}
        for answer in answered:
            for key, value in expected.items():
                actual = answer.get("value" + key[len("answer"):])
                if key == "answerCoding" and isinstance(actual, dict):
                    if actual.get("code") == value.get("code") and actual.get("system") == value.get("system"):
                        return True
                elif actual == value:
                    return True
    return False


def _issue(path: str, text: str) -> Issue:
    return Issue("business-rule", f"{path}: {text}", expression=path)
