"""``make conformance``: run the Cert TestScripts of BgZ-3-0, PDFA-3-0 (XIS-Server), Questionnaires-2-0
and SelfMeasurements-2-0 (JSON and XML variants) against this repository's own DVZA.

Steps: a temporary instance folder (``DVZA_INSTANCE_PATH``) in qualification mode (plain HTTP on
127.0.0.1), ``dvza demo prepare`` (Cert test data + QualificationTokens.json), ``dvza serve`` on a free
port, wait for ``/healthz``, then the runner with the Nictiz tokens. Before each questionnaire script a
fresh ``requested`` Task is created from the matching ``*-REQUESTED`` template with ``dvza testdata task``
(each scenario consumes one; fhir-content.md §4.1, §4.2).

Usage: ``python -m dvza.conformance.selfhost [--junit FILE] [-v] [--keep] [SET …]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..devtools.processes import CHECKOUT
from ..devtools.processes import checkout_environment
from ..devtools.processes import dvza_command
from ..devtools.processes import free_port
from ..devtools.processes import wait_until_answers
from ..devtools.shared import shared_dir
from .cli import load_tokens
from .cli import run_paths
from .report import junit_xml
from .report import text_report
from .report import totals
from .runner import FAIL
from .runner import RunOptions
from .testscript import TestScript

SETS = {
    "BgZ-3-0": ["XIS-Server"],
    "PDFA-3-0": ["XIS-Server"],
    "Questionnaires-2-0": ["XIS-Server"],
    "SelfMeasurements-2-0": ["Serving-XIS", "Receiving-XIS"],
}
#: Questionnaire script (scenario 1.x) → the Task template it consumes (fhir-content.md §4.2).
QUESTIONNAIRE_TASKS = {
    "xis-1-1_3-1": "XXX_Vink-Intake", "xis-1-2_3-2": "XXX_Vink-PHQ9", "xis-1-3_3-3": "XXX_Repscher-Intake",
    "xis-1-4_3-4": "XXX_Repscher-PHQ9", "xis-1-5_2-5": "XXX_Boumann-invalid", "xis-1-6_2-6": "XXX_Boumann-PHQ9E",
}


def questionnaire_hook(root: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    """before-script hook: a fresh ``requested`` Task for the questionnaire scenario about to run."""
    templates = root / "output/STU3/Questionnaires-2-0/MedMij/Cert/_reference/resources/resources-specific"

    def hook(script: TestScript) -> None:
        for key, name in QUESTIONNAIRE_TASKS.items():
            if key in script.path.name:
                template = templates / f"medmij-questionnaires-vl-QuestionnaireProvisioningTask-{name}-REQUESTED.xml"
                subprocess.run(dvza_command("testdata", "task", str(template)), env=env, cwd=CHECKOUT, check=True,
                               capture_output=True)

    return hook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", default=list(SETS), help="Nictiz sets (default: all four)")
    parser.add_argument("--junit", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the instance folder (database, server log)")
    args = parser.parse_args(argv)
    root = shared_dir() / "conformance" / "nictiz-testscripts"
    instance = Path(tempfile.mkdtemp(prefix="dvza-conformance-"))
    port = free_port()
    env = checkout_environment(DVZA_INSTANCE_PATH=str(instance), DVZA_QUALIFICATION_MODE="true",
                               DVZA_SHARED_DIR=str(shared_dir()), DVZA_LOG_LEVEL="WARNING")
    server = None
    try:
        print(f"instance {instance}; loading the Cert test data …", flush=True)
        subprocess.run(dvza_command("demo", "prepare"), env=env, cwd=CHECKOUT, check=True, stdout=subprocess.DEVNULL)
        log = (instance / "server.log").open("wb")
        server = subprocess.Popen(dvza_command("serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"), env=env,
                                  cwd=CHECKOUT, stdout=log, stderr=subprocess.STDOUT)
        wait_until_answers(f"http://127.0.0.1:{port}/healthz", server)
        base = f"http://127.0.0.1:{port}/fhir"
        paths = [root / "output/STU3" / s / "MedMij/Cert" / role for s in args.sets for role in SETS[s]]
        options = RunOptions(base_url=base, before_script=questionnaire_hook(root, env))
        results = run_paths(paths, base_url=base, options=options,
                            tokens=load_tokens(root / "Configuration/QualificationTokens.json"))
        print(text_report(results, verbose=args.verbose))
        if args.junit:
            args.junit.write_bytes(junit_xml(results))
        return 1 if totals(results)[FAIL] else 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.keep:
            print(f"kept {instance}", file=sys.stderr)
        else:
            shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
