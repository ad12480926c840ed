"""``dvza conformance``: run Nictiz qualification TestScripts against a DVZA (fhir-content.md §8)."""

from __future__ import annotations

import json
import sys
import typing as t
from pathlib import Path

import click

from .hooks import command_before_script
from .hooks import command_reset_hook
from .report import junit_xml
from .report import text_report
from .report import totals
from .runner import FAIL
from .runner import OperationResult
from .runner import RunOptions
from .runner import ScriptResult
from .runner import TestResult
from .runner import run_script
from .testscript import TestScriptError
from .testscript import find_testscripts
from .testscript import parse_testscript
from .variables import token_overrides


@click.group("conformance", help="Run FHIR STU3 TestScripts (Nictiz qualification scripts) against a DVZA.")
def conformance_group() -> None:
    pass


RUN_HELP = """Run the TestScripts in PATH… (files, or directories searched recursively for TestScript
``*.xml``; ``_reference`` fixture folders are ignored) against the FHIR base URL of a running DVZA,
for example::

\b
  dvza conformance run --base-url https://dvza.example.nl/fhir \\
      --tokens my-tokens.json --junit conformance.xml \\
      $SHARED/conformance/nictiz-testscripts/output/STU3/BgZ-3-0/MedMij/Cert/XIS-Server

Each script's ``patient-token-<name>`` variables carry the Nictiz token as default. --tokens FILE
replaces them: either a QualificationTokens.json-style list (entries matched on resourceId or
familyName, e.g. XXX_Helleman) with your own accessToken values, or a JSON object
{"patient-token-XXX_Helleman": "Bearer …"}.

Operations that are not HTTP (the Interoplab ``purge`` of the load scripts) run --reset-command
(context in CONFORMANCE_* environment variables); without it they and their asserts are SKIPPED.
--before-script runs a command before every script (e.g. to create fresh ``requested`` Tasks for the
questionnaire scripts). Load scripts (``_LoadResources``) run like any other script.

validateProfileId is a structural STU3 check plus meta.profile, not full profile validation.
Output: per script/test the failing asserts (all with -v); last line ``N passed, N failed`` counts
asserts. Exit status 1 when any assert failed (warningOnly failures are warnings).
"""


def load_tokens(path: Path | None) -> t.Any:
    if path is None:
        return None
    return json.loads(path.read_text(encoding="utf-8-sig"))


@conformance_group.command("run", help=RUN_HELP)
@click.option("--base-url", required=True, help="FHIR base URL of the DVZA, e.g. http://127.0.0.1:8080/fhir.")
@click.option("--tokens", "tokens_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Access tokens to use instead of the Nictiz ones (see above).")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here.")
@click.option("--reset-command", help="Shell command for purge/non-HTTP operations.")
@click.option("--before-script", help="Shell command run before each script.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="HTTP timeout per request (s).")
@click.option("-v", "--verbose", is_flag=True, help="Show passing asserts and every operation too.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def run_command(base_url: str, tokens_file: Path | None, junit_file: Path | None, reset_command: str | None,
                before_script: str | None, timeout: float, verbose: bool, paths: tuple[Path, ...]) -> None:
    results = run_paths(paths, base_url=base_url, tokens=load_tokens(tokens_file), timeout=timeout,
                        reset_command=reset_command, before_script=before_script)
    click.echo(text_report(results, verbose=verbose))
    if junit_file:
        junit_file.write_bytes(junit_xml(results))
    sys.exit(1 if totals(results)[FAIL] else 0)


def run_paths(paths: t.Iterable[Path], *, base_url: str, tokens: t.Any = None, timeout: float = 60.0,
              reset_command: str | None = None, before_script: str | None = None,
              options: RunOptions | None = None) -> list[ScriptResult]:
    """Parse and run every TestScript under ``paths``; a script that does not parse is a failed result."""
    results = []
    for path in find_testscripts(paths):
        try:
            script = parse_testscript(path)
        except TestScriptError as exc:
            results.append(ScriptResult(str(path), path.name, error=str(exc)))
            continue
        if script.client_role:
            # the system under test is the client: such a script is judged on recorded traffic, not run
            results.append(ScriptResult(str(path), script.label, [TestResult("client-role script", [OperationResult(
                "not run", "skipped", "a client-role script checks a PGO's requests: run it in a qualification "
                "session (dvza conformance client start)")])]))
            continue
        opts = options or RunOptions(base_url=base_url, timeout=timeout)
        if reset_command:
            opts.reset = command_reset_hook(reset_command, base_url)
        if before_script:
            opts.before_script = command_before_script(before_script, base_url)
        opts.tokens = script_tokens(tokens, {v.name: v.default_value for v in script.variables})
        results.append(run_script(script, opts))
    return results


def script_tokens(tokens: t.Any, variables: dict[str, str | None]) -> dict[str, str]:
    """Token variable overrides for one script from a --tokens file (object or list form)."""
    if isinstance(tokens, dict):
        return {k: str(v) for k, v in tokens.items() if k in variables}
    if isinstance(tokens, list):
        return token_overrides(tokens, variables)
    return {}
