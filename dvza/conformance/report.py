"""Reports: readable text per script/test/assert, and JUnit XML (one testsuite per script, one
testcase per assert; WARN as a passed case with ``system-out``, SKIP as ``skipped``)."""

from __future__ import annotations

import dataclasses
import typing as t
from xml.etree import ElementTree as ET  # noqa: N817 - writing only, no untrusted input

from .asserts import VALIDATION_NOTE
from .runner import FAIL
from .runner import PASS
from .runner import SKIP
from .runner import WARN
from .runner import AssertResult
from .runner import OperationResult
from .runner import ScriptResult
from .runner import TestResult


def results_to_json(results: t.Sequence[ScriptResult]) -> list[dict[str, t.Any]]:
    """Results as JSON-able data (kept with a qualification session, read back by :func:`results_from_json`)."""
    out = []
    for res in results:
        tests = []
        for test in res.tests:
            items = [{"assert": dataclasses.asdict(i)} if isinstance(i, AssertResult) else
                     {"operation": dataclasses.asdict(i)} for i in test.items]
            tests.append({"name": test.name, "items": items})
        out.append({"path": res.path, "label": res.label, "error": res.error, "tests": tests})
    return out


def results_from_json(data: t.Sequence[t.Mapping[str, t.Any]]) -> list[ScriptResult]:
    results = []
    for res in data:
        tests = [test_from_json(test) for test in res.get("tests", [])]
        results.append(ScriptResult(res["path"], res["label"], tests, res.get("error")))
    return results


def test_to_json(test: TestResult) -> dict[str, t.Any]:
    return results_to_json([ScriptResult("", "", [test])])[0]["tests"][0]


def test_from_json(data: t.Mapping[str, t.Any]) -> TestResult:
    items: list[AssertResult | OperationResult] = []
    for item in data.get("items", []):
        if "assert" in item:
            items.append(AssertResult(**item["assert"]))
        else:
            items.append(OperationResult(**item["operation"]))
    return TestResult(data["name"], items)


test_to_json.__test__ = False  # type: ignore[attr-defined]
test_from_json.__test__ = False  # type: ignore[attr-defined]


def totals(results: t.Sequence[ScriptResult]) -> dict[str, int]:
    return {s: sum(r.count(s) for r in results) for s in (PASS, FAIL, WARN, SKIP)}


def _notable(item: AssertResult | OperationResult) -> bool:
    if isinstance(item, OperationResult):
        return item.status in ("error", "skipped")
    return item.status != PASS


def text_report(results: t.Sequence[ScriptResult], *, verbose: bool = False) -> str:
    """Per script a line with its assert counts, per test the non-passing asserts (all with ``verbose``);
    the last line is exactly ``N passed, N failed`` (asserts; warnings and skips are not failures)."""
    lines: list[str] = []
    notes: set[str] = set()
    for res in results:
        head = "FAIL" if res.count(FAIL) else "PASS"
        lines.append(f"{head} {res.label}  [{res.path}]  asserts: {res.count(PASS)} passed, {res.count(FAIL)} failed, "
                     f"{res.count(WARN)} warnings, {res.count(SKIP)} skipped")
        if res.error:
            lines.append(f"  ERROR {res.error}")
        for test in res.tests:
            shown = [i for i in test.items if verbose or _notable(i)]
            if not shown:
                continue
            lines.append(f"  test: {test.name}")
            for item in shown:
                if isinstance(item, OperationResult):
                    lines.append(f"    op   {item.status.upper():7} {item.title}  {item.detail}")
                else:
                    notes.update(item.notes)
                    lines.append(f"    {item.status} [{item.kind}] {item.title}")
                    if item.detail and (item.status != PASS or verbose):
                        lines.append(f"         {item.detail}")
                    if item.request and item.status != PASS:
                        lines.append(f"         request: {item.request}")
        notes.update(n for a in res.asserts for n in a.notes)
    tot = totals(results)
    lines.append("")
    for note in sorted(notes):
        lines.append(f"note: {note}")
    lines.append(f"Summary over {len(results)} scripts (counting asserts): {tot[PASS]} passed, {tot[FAIL]} failed, "
                 f"{tot[WARN]} warnings, {tot[SKIP]} skipped")
    lines.append(f"{tot[PASS]} passed, {tot[FAIL]} failed")
    return "\n".join(lines)


def junit_xml(results: t.Sequence[ScriptResult]) -> bytes:
    suites = ET.Element("testsuites", name="dvza conformance")
    tot = totals(results)
    suites.set("tests", str(sum(len(r.asserts) for r in results)))
    suites.set("failures", str(tot[FAIL]))
    suites.set("skipped", str(tot[SKIP]))
    for res in results:
        suite = ET.SubElement(suites, "testsuite", name=res.label, file=res.path, tests=str(len(res.asserts)),
                              failures=str(res.count(FAIL)), skipped=str(res.count(SKIP)), errors="0")
        if res.error:
            case = ET.SubElement(suite, "testcase", classname=res.label, name="script")
            ET.SubElement(case, "error", message=res.error)
        for test in res.tests:
            for n, item in enumerate(test.asserts, start=1):
                case = ET.SubElement(suite, "testcase", classname=f"{res.label}.{test.name}",
                                     name=f"{n:03d} [{item.kind}] {item.title}")
                if item.status == FAIL:
                    text = item.detail + (f"\nrequest: {item.request}" if item.request else "")
                    ET.SubElement(case, "failure", message=item.detail[:500]).text = text
                elif item.status == SKIP:
                    ET.SubElement(case, "skipped", message=item.detail[:500])
                elif item.status == WARN:
                    ET.SubElement(case, "system-out").text = f"WARNING (warningOnly): {item.detail}"
                if VALIDATION_NOTE in item.notes:
                    ET.SubElement(case, "system-err").text = f"note: {VALIDATION_NOTE}"
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)
