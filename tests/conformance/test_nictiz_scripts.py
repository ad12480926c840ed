"""Every server TestScript in the shared Nictiz set parses, and every operation, assert kind,
operator and Touchstone rule it uses is supported by the runner (fhir-content.md §7.4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dvza.conformance.asserts import OPERATORS
from dvza.conformance.asserts import rule_kind
from dvza.conformance.operations import SUPPORTED_OPERATIONS
from dvza.conformance.testscript import find_testscripts
from dvza.conformance.testscript import parse_testscript

SHARED = Path(os.environ.get("DVZA_SHARED_DIR") or Path(__file__).resolve().parents[2].parent / "shared")
OUTPUT = SHARED / "conformance" / "nictiz-testscripts" / "output" / "STU3"
SUPPORTED_KINDS = {"responseCode", "response", "resource", "contentType", "headerField", "expression", "minimumId",
                   "validateProfileId", "requestURL", "requestMethod", "navigationLinks", "path", "compareToSourceId",
                   "rule"}


@pytest.mark.skipif(not OUTPUT.is_dir(), reason="shared Nictiz TestScripts not present (DVZA_SHARED_DIR)")
def test_all_server_testscripts_parse_and_are_supported() -> None:
    files = find_testscripts([OUTPUT])
    assert len(files) >= 80  # 4 sets, JSON+XML, + load scripts
    unsupported: set[str] = set()
    fixtures_missing: set[str] = set()
    for path in files:
        script = parse_testscript(path)
        assert script.tests, path
        for fx in script.fixtures.values():
            if fx.path is None or not fx.path.is_file():
                fixtures_missing.add(f"{path.name}: {fx.reference}")
        for action in script.all_actions():
            if action.operation is not None and action.operation.type_code not in SUPPORTED_OPERATIONS:
                unsupported.add(f"operation {action.operation.type_code}")
            a = action.assertion
            if a is None:
                continue
            if a.kind not in SUPPORTED_KINDS:
                unsupported.add(f"assert kind {a.kind}")
            if a.operator and a.operator not in OPERATORS:
                unsupported.add(f"operator {a.operator}")
            if a.rule is not None and rule_kind(a.rule.rule_id, script.rules) is None:
                unsupported.add(f"rule {a.rule.rule_id}")
            if a.validate_profile_id and a.validate_profile_id not in script.profiles:
                unsupported.add(f"profile id {a.validate_profile_id} undefined in {path.name}")
    assert sorted(unsupported) == []
    assert sorted(fixtures_missing) == []
