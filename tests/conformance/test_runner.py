"""The runner against a fake server: right answers pass every assert; each wrong answer fails
exactly the assert about it (so the asserts can fail)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvza.conformance.cli import run_paths
from dvza.conformance.report import junit_xml
from dvza.conformance.report import text_report
from dvza.conformance.runner import FAIL
from dvza.conformance.runner import PASS
from dvza.conformance.runner import SKIP
from dvza.conformance.runner import WARN
from dvza.conformance.runner import RunOptions
from dvza.conformance.runner import run_script
from dvza.conformance.testscript import parse_testscript

from .fake_server import FakeServer

SCRIPT = Path(__file__).parent / "scripts" / "all-kinds-json.xml"


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    with FakeServer() as srv:
        yield srv


def _run(server: FakeServer, broken: str | None = None, **options: object) -> dict[str, str]:
    server.app.config["BREAK"] = broken
    result = run_script(parse_testscript(SCRIPT), RunOptions(base_url=server.base_url, **options))  # type: ignore[arg-type]
    return {a.title: a.status for a in result.asserts}, result  # type: ignore[return-value]


def test_right_answers_pass_every_assert(server: FakeServer) -> None:
    statuses, result = _run(server)
    assert len(statuses) == 28
    bad = {k: (v, [a.detail for a in result.asserts if a.title == k]) for k, v in statuses.items() if v != PASS}
    assert bad == {}


BREAKS = ["rc-in", "selflink", "expr-bool", "expr-value", "validate", "header", "response", "resource", "contentType",
          "minimum", "underscore", "compare", "profile", "rewrite", "rc-equals", "echo", "created", "location",
          "rc-notin", "tx-type", "rc-notequals", "delete-rc", "pdf"]


@pytest.mark.parametrize("broken", BREAKS)
def test_each_wrong_answer_fails_exactly_its_assert(server: FakeServer, broken: str) -> None:
    statuses, _ = _run(server, broken)
    assert {k for k, v in statuses.items() if v == FAIL} == {broken}
    if broken == "rewrite":  # stopTestOnFail: the rest of that test is skipped, not passed
        assert statuses["rc-equals"] == statuses["echo"] == SKIP


def test_warning_only_failure_is_a_warning(server: FakeServer) -> None:
    statuses, _ = _run(server, "warn")
    assert statuses["warn-rc"] == WARN
    assert FAIL not in statuses.values()


def test_tokens_file_replaces_the_nictiz_token(server: FakeServer, tmp_path: Path) -> None:
    server.app.config.update(TOKEN="Bearer vendor-token", BREAK=None)
    try:
        tokens = [{"accessToken": "Bearer vendor-token", "resourceId": "p1", "familyName": "XXX_Test"}]
        results = run_paths([SCRIPT], base_url=server.base_url, tokens=tokens)
        assert results[0].count(FAIL) == 0 and results[0].count(PASS) == 28
        without = run_paths([SCRIPT], base_url=server.base_url)
        assert without[0].count(FAIL) > 0
    finally:
        server.app.config["TOKEN"] = "Bearer nictiz-token"


def test_no_accept_header_when_the_script_has_no_accept(server: FakeServer) -> None:
    server.app.config["seen"].clear()
    _run(server)
    doc_requests = [h for m, p, h in server.app.config["seen"] if "Binary/doc1" in p]
    assert doc_requests and all("Accept" not in h for h in doc_requests)
    searches = [p for m, p, h in server.app.config["seen"] if p.startswith("/fhir/Patient?")]
    assert "identifier=http://x%7C1" in searches[0]


def test_purge_without_hook_is_skipped_and_with_hook_runs(server: FakeServer, tmp_path: Path) -> None:
    script = tmp_path / "purge.xml"
    script.write_text("""<TestScript xmlns="http://hl7.org/fhir"><id value="p"/><setup><action><operation>
      <type><system value="http://fhir.interoplab.eu/fhir/CodeSystem/Interoplab-CL-operation-codes"/>
      <code value="purge"/></type><resource value="Patient"/><params value="p1/$purge"/></operation></action>
      <action><assert><description value="purged"/><operator value="in"/><responseCode value="200,204"/></assert>
      </action></setup></TestScript>""")
    skipped = run_paths([script], base_url=server.base_url)
    assert [a.status for a in skipped[0].asserts] == [SKIP]
    assert "skipped" in text_report(skipped)
    marker = tmp_path / "hook.txt"
    ran = run_paths([script], base_url=server.base_url,
                    reset_command=f'echo "$CONFORMANCE_OPERATION $CONFORMANCE_PARAMS" > {marker}')
    assert marker.read_text().strip() == "purge p1/$purge"
    assert ran[0].tests[0].items[0].status == "hook"


def test_report_last_line_and_junit(server: FakeServer, tmp_path: Path) -> None:
    server.app.config["BREAK"] = "tx-type"
    results = run_paths([SCRIPT], base_url=server.base_url)
    text = text_report(results)
    assert text.splitlines()[-1] == "27 passed, 1 failed"
    assert "asserts" in text and "tx-type" in text and "NOT validated" in text
    xml = junit_xml(results).decode()
    assert 'failures="1"' in xml and "<failure" in xml


def test_cli_exit_code(server: FakeServer, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dvza.conformance.cli import conformance_group

    server.app.config["BREAK"] = None
    junit = tmp_path / "j.xml"
    ok = CliRunner().invoke(conformance_group, ["run", "--base-url", server.base_url, "--junit", str(junit),
                                                str(SCRIPT.parent)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().splitlines()[-1] == "28 passed, 0 failed" and junit.exists()
    server.app.config["BREAK"] = "echo"
    bad = CliRunner().invoke(conformance_group, ["run", "--base-url", server.base_url, str(SCRIPT)])
    assert bad.exit_code == 1
    tokens = tmp_path / "t.json"
    tokens.write_text(json.dumps({"patient-token-XXX_Test": "Bearer nictiz-token"}))
    server.app.config["BREAK"] = None
    assert CliRunner().invoke(conformance_group, ["run", "--base-url", server.base_url, "--tokens", str(tokens),
                                                  str(SCRIPT)]).exit_code == 0


def test_client_role_scripts_are_not_run_against_a_server(server: FakeServer, tmp_path: Path) -> None:
    """A client-role script (the SUT is the origin) is judged on a PGO's recorded traffic, never sent."""
    origin = ('<origin><extension url="http://fhir.interoplab.eu/fhir/StructureDefinition/Interoplab-CL-ext-SUT">'
              '<valueBoolean value="true"/></extension><index value="1"/></origin>')
    text = SCRIPT.read_text().replace('<status value="active"/>', '<status value="active"/>' + origin, 1)
    assert origin in text
    client_script = tmp_path / "client-role-json.xml"
    client_script.write_text(text)
    server.app.config["seen"].clear()
    results = run_paths([client_script], base_url=server.base_url)
    assert results[0].count(FAIL) == 0 and results[0].asserts == [] and server.app.config["seen"] == []
    assert "qualification session" in text_report(results, verbose=True)
