"""Questionnaires (Vragenlijsten 2.x) as a PGO handles them (fhir-content.md §4; Nictiz PHR-Client
scenarios 1.x–3.x).

1. Gegevensdienst 59 (Verzamelen): the open tasks ``Task?code=http://loinc.org|74468-0&status=requested``;
   the questionnaire of a task (``Task.input`` typed ``Questionnaire``) is read from the aanbieder,
   ``GET [base]/Questionnaire/<id>`` — only from its own FHIR base: a reference elsewhere cannot be
   retrieved with the person's token, and then the task is set to ``failed`` (scenario 2.5). The person
   accepts (``PUT Task/<id>`` with status ``accepted``: the Task as received, only the status changed,
   scenario 3.x part 1) or declines (``rejected``, scenario 2.6).
2. Gegevensdienst 60 (Delen): the answers as one transaction (scenario 3.x part 2): the Task ``PUT``
   with status ``completed`` and ``output`` pointing at the QuestionnaireResponse, and the
   QuestionnaireResponse (vl-QuestionnaireResponse) ``POST`` under a ``urn:uuid`` fullUrl.

Answers come as form fields ``q:<linkId>`` (strings, several for a repeating question), so the web
page and ``dvza pgo answer --answers FILE.json`` build the same QuestionnaireResponse; what a person
typed wrong comes back as Dutch messages per question.
"""

from __future__ import annotations

import copy
import typing as t
import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import time
from urllib.parse import urljoin

from .client import Aanbieder
from .client import PgoClient
from .client import PgoError
from .measurements import MeasurementError
from .measurements import json_number
from .measurements import number

TASKS_QUERY = "Task?code=http://loinc.org|74468-0&status=requested"
QR_PROFILE = "http://nictiz.nl/fhir/StructureDefinition/vl-QuestionnaireResponse"
YES, NO = "ja", "nee"


def task_title(task: dict[str, t.Any]) -> str:
    for item in task.get("input", []):
        if (item.get("type") or {}).get("text") == "Questionnaire":
            display = (item.get("valueReference") or {}).get("display")
            if display:
                return str(display)
    return str(task.get("description") or "Vragenlijst")


def questionnaire_reference(task: dict[str, t.Any]) -> str | None:
    for item in task.get("input", []):
        if (item.get("type") or {}).get("text") == "Questionnaire":
            return (item.get("valueReference") or {}).get("reference")
    return None


def local_path(aanbieder: Aanbieder, reference: str | None) -> str | None:
    """``Questionnaire/<id>`` when the reference is on the aanbieder's FHIR base, else None."""
    if not reference:
        return None
    base = aanbieder.fhir_base.rstrip("/") + "/"
    absolute = urljoin(base, reference)
    if not absolute.startswith(base):
        return None
    parts = absolute[len(base):].split("/")
    return "/".join(parts) if len(parts) == 2 and parts[0] == "Questionnaire" and parts[1] else None


def open_tasks(client: PgoClient, aanbieder: Aanbieder, token: str) -> list[dict[str, t.Any]]:
    bundle = client.get(aanbieder, token, TASKS_QUERY)
    return [e["resource"] for e in bundle.get("entry", []) if (e.get("resource") or {}).get("resourceType") == "Task"]


def load_questionnaire(client: PgoClient, aanbieder: Aanbieder, token: str,
                       task: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """The task's Questionnaire, or None when it cannot be retrieved (not on this aanbieder, not found)."""
    path = local_path(aanbieder, questionnaire_reference(task))
    if path is None:
        return None
    try:
        questionnaire = client.get(aanbieder, token, path)
    except PgoError:
        return None
    return questionnaire if questionnaire.get("resourceType") == "Questionnaire" else None


def with_status(task: dict[str, t.Any], status: str) -> dict[str, t.Any]:
    """The Task as received with only its status changed (the narrative, now wrong, left out)."""
    changed = copy.deepcopy(task)
    changed.pop("text", None)
    changed["status"] = status
    return changed


def set_status(client: PgoClient, aanbieder: Aanbieder, token: str, task: dict[str, t.Any],
               status: str) -> dict[str, t.Any]:
    """``PUT Task/<id>`` with the new status; the Task as the aanbieder now holds it."""
    answer = client.put(aanbieder, token, f"Task/{task['id']}", with_status(task, status))
    return answer if answer.get("resourceType") == "Task" else with_status(task, status)


# ------------------------------------------------------------------------------------- the form
@dataclass(slots=True)
class Question:
    """One item of the Questionnaire as the form shows it."""

    link_id: str
    text: str
    type: str
    depth: int
    required: bool = False
    repeats: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)  # (code, display)
    unit: str = ""

    @property
    def name(self) -> str:
        """The form field of its answer."""
        return f"q:{self.link_id}"


def questions(questionnaire: dict[str, t.Any]) -> list[Question]:
    """The items in order, groups and display texts included (``depth`` = nesting)."""
    found: list[Question] = []

    def walk(items: list[dict[str, t.Any]], depth: int) -> None:
        for item in items:
            options = [(str((o.get("valueCoding") or {}).get("code", "")),
                        str((o.get("valueCoding") or {}).get("display") or (o.get("valueCoding") or {}).get("code")))
                       for o in item.get("option", []) if "valueCoding" in o]
            unit = next((str((e.get("valueCoding") or {}).get("code", "")) for e in item.get("extension", [])
                         if str(e.get("url", "")).endswith("questionnaire-unit")), "")
            found.append(Question(str(item.get("linkId")), str(item.get("text") or ""), str(item.get("type")), depth,
                                  bool(item.get("required")), bool(item.get("repeats")), options, unit))
            walk(item.get("item", []), depth + 1)

    walk(questionnaire.get("item", []), 0)
    return found


def _answer(item: dict[str, t.Any], raw: str) -> dict[str, t.Any]:
    """One answer of the item's type from what was typed; raises ValueError with a Dutch message."""
    kind = item.get("type")
    text = raw.strip()
    if kind == "boolean":
        if text.lower() not in (YES, NO, "true", "false"):
            raise ValueError("Kies ja of nee.")
        return {"valueBoolean": text.lower() in (YES, "true")}
    if kind in ("decimal", "integer", "quantity"):
        try:
            value = number(text)
        except MeasurementError as exc:
            raise ValueError("Vul een getal in.") from exc
        if kind == "integer":
            if value != value.to_integral_value():
                raise ValueError("Vul een heel getal in.")
            return {"valueInteger": int(value)}
        if kind == "decimal":
            return {"valueDecimal": json_number(value)}
        return {"valueQuantity": {"value": json_number(value)}}
    if kind == "date":
        try:
            return {"valueDate": date.fromisoformat(text).isoformat()}
        except ValueError:
            raise ValueError("Vul een datum in, bijvoorbeeld 2026-10-01.") from None
    if kind == "time":
        try:
            return {"valueTime": time.fromisoformat(text).isoformat(timespec="seconds")}
        except ValueError:
            raise ValueError("Vul een tijd in, bijvoorbeeld 07:30.") from None
    if kind == "dateTime":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("Vul een datum en tijd in, bijvoorbeeld 2026-10-01T14:00.") from None
        return {"valueDateTime": (moment if moment.tzinfo else moment.astimezone()).isoformat(timespec="seconds")}
    if kind in ("choice", "open-choice"):
        for option in item.get("option", []):
            coding = option.get("valueCoding") or {}
            if coding.get("code") == text:
                return {"valueCoding": {k: v for k, v in coding.items() if k in ("system", "code", "display")}}
        if kind == "open-choice":
            return {"valueString": text}
        raise ValueError("Kies een van de antwoorden.")
    if kind in ("string", "text", "url"):
        return {"valueUri" if kind == "url" else "valueString": text}
    raise ValueError("Deze soort vraag kan de PGO niet invullen.")


def build_response(questionnaire: dict[str, t.Any], task: dict[str, t.Any], form: t.Mapping[str, t.Sequence[str]],
                   *, now: datetime | None = None) -> tuple[dict[str, t.Any], dict[str, str]]:
    """The QuestionnaireResponse for the answers in ``form`` and the problems per linkId (Dutch)."""
    problems: dict[str, str] = {}

    def answered(items: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        out = []
        for item in items:
            link = str(item.get("linkId"))
            if item.get("type") == "group":
                inner = answered(item.get("item", []))
                if inner:
                    out.append({"linkId": link, **({"text": item["text"]} if item.get("text") else {}), "item": inner})
                continue
            if item.get("type") == "display":
                continue
            raw = [v for v in form.get(f"q:{link}", []) if str(v).strip()]
            if not raw:
                if item.get("required"):
                    problems[link] = "Deze vraag moet je beantwoorden."
                continue
            if len(raw) > 1 and not item.get("repeats"):
                problems[link] = "Geef één antwoord."
                continue
            answers = []
            for value in raw:
                try:
                    answers.append(_answer(item, str(value)))
                except ValueError as exc:
                    problems[link] = str(exc)
            if answers and link not in problems:
                out.append({"linkId": link, **({"text": item["text"]} if item.get("text") else {}), "answer": answers})
        return out

    items = answered(questionnaire.get("item", []))
    subject = _subject(task)
    reference = questionnaire.get("url") or f"Questionnaire/{questionnaire.get('id')}"
    response = {
        "resourceType": "QuestionnaireResponse", "meta": {"profile": [QR_PROFILE]},
        "questionnaire": {"reference": reference,
                          "display": str(questionnaire.get("title") or task_title(task))},
        "status": "completed", "subject": subject,
        "authored": (now or datetime.now()).astimezone().isoformat(timespec="seconds"),
        "author": dict(subject), "item": items,
    }
    return response, problems


def _subject(task: dict[str, t.Any]) -> dict[str, str]:
    for item in task.get("input", []):
        if (item.get("type") or {}).get("text") == "Subject" and item.get("valueReference"):
            reference = item["valueReference"]
            return {"reference": reference.get("reference", ""), "display": reference.get("display") or "Patiënt"}
    owner = task.get("for") or task.get("owner") or {}
    return {"reference": owner.get("reference", ""), "display": owner.get("display") or "Patiënt"}


def answers_transaction(aanbieder: Aanbieder, task: dict[str, t.Any], response: dict[str, t.Any]) -> dict[str, t.Any]:
    """The transaction that completes the task with its answers (module docstring, step 2)."""
    response_url = f"urn:uuid:{uuid.uuid4()}"
    completed = with_status(task, "completed")
    completed["output"] = [{"type": {"text": "QuestionnaireResponse"},
                            "valueReference": {"reference": response_url,
                                               "display": f"Antwoorden: {task_title(task)}"}}]
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{aanbieder.fhir_base.rstrip('/')}/Task/{task['id']}", "resource": completed,
         "request": {"method": "PUT", "url": f"Task/{task['id']}"}},
        {"fullUrl": response_url, "resource": response, "request": {"method": "POST", "url": "QuestionnaireResponse"}},
    ]}
