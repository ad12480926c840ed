"""The ``--reset-command`` hook: a shell command run for operations that are not HTTP requests
(Interoplab ``purge``, unknown codes) and, with ``--before-script``, before every script.

The command gets its context in the environment: ``CONFORMANCE_EVENT`` (``operation`` or
``before-script``), ``CONFORMANCE_SCRIPT`` (path), ``CONFORMANCE_SCRIPT_ID``, ``CONFORMANCE_OPERATION``
(type code), ``CONFORMANCE_RESOURCE``, ``CONFORMANCE_PARAMS`` (variables substituted), and
``CONFORMANCE_BASE_URL``. Exit status 0 = done.
"""

from __future__ import annotations

import os
import subprocess
import typing as t

from .runner import ResetHook
from .testscript import Operation
from .testscript import TestScript


def _env(base_url: str, script: TestScript, event: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CONFORMANCE_EVENT": event, "CONFORMANCE_SCRIPT": str(script.path),
                "CONFORMANCE_SCRIPT_ID": script.id or "", "CONFORMANCE_BASE_URL": base_url})
    env.update(extra)
    return env


def command_reset_hook(command: str, base_url: str, timeout: float = 300) -> ResetHook:
    def hook(script: TestScript, op: Operation, substitute: t.Callable[[str], str]) -> tuple[bool, str]:
        env = _env(base_url, script, "operation", CONFORMANCE_OPERATION=op.type_code or "",
                   CONFORMANCE_RESOURCE=op.resource or "", CONFORMANCE_PARAMS=substitute(op.params or ""))
        proc = subprocess.run(command, shell=True, env=env, capture_output=True, text=True,  # noqa: S602
                              timeout=timeout, check=False)
        out = (proc.stdout + proc.stderr).strip().splitlines()
        return proc.returncode == 0, f"reset command exit {proc.returncode}" + (f": {out[-1]}" if out else "")

    return hook


def command_before_script(command: str, base_url: str, timeout: float = 300) -> t.Callable[[TestScript], None]:
    def hook(script: TestScript) -> None:
        proc = subprocess.run(command, shell=True, env=_env(base_url, script, "before-script"),  # noqa: S602
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-300:]}")

    return hook
