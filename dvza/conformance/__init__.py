"""Conformance runner: executes the Nictiz qualification TestScripts (FHIR STU3 TestScript resources,
fhir-content.md §7–§8) against any DVZA over HTTP. A client tool: it does not import the Flask app."""

from __future__ import annotations

from .runner import RunOptions
from .runner import ScriptResult
from .runner import run_script
from .testscript import TestScript
from .testscript import find_testscripts
from .testscript import parse_testscript

__all__ = ["RunOptions", "ScriptResult", "TestScript", "find_testscripts", "parse_testscript", "run_script"]
