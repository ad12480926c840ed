"""Local server processes for development tooling and tests: this checkout's ``dvza`` command, a free port to start
one on, and waiting until it answers (the conformance self-host, ``make bench``, the local DigiD, the test identity
providers, the e2e tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import requests

#: the checkout this package was loaded from
CHECKOUT = Path(__file__).resolve().parents[2]


def dvza_command(*args: str) -> list[str]:
    """The ``dvza`` CLI of this checkout with ``args`` (not whatever ``dvza`` is on PATH); run it with
    :func:`checkout_environment`."""
    return [sys.executable, "-c", "import sys; from dvza.cli import main; sys.exit(main())", *args]


def checkout_environment(base: t.Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) with this checkout first on ``PYTHONPATH``, and ``extra``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answers(url: str, process: subprocess.Popen[t.Any] | t.Sequence[subprocess.Popen[t.Any]] | None, *,
                       timeout: float = 60.0, get: t.Callable[..., requests.Response] = requests.get,
                       log: Path | None = None, **request_options: t.Any) -> None:
    """Poll ``url`` until it answers 200; raise ``RuntimeError`` (with the end of ``log``) when ``process`` (or any
    of several, e.g. a whole development network) stops first or ``timeout`` seconds pass. ``get`` is e.g. a
    ``requests.Session``'s (client certificates); ``request_options`` go to each request (``verify``, ``cert``)."""
    deadline = time.monotonic() + timeout
    processes = [] if process is None else [process] if isinstance(process, subprocess.Popen) else list(process)
    while True:
        for stopped in (p for p in processes if p.poll() is not None):
            raise RuntimeError(f"the process serving {url} stopped (exit {stopped.returncode}: "
                               f"{stopped.args[-1] if isinstance(stopped.args, list) else stopped.args}){_tail(log)}")
        try:
            if get(url, timeout=2, **request_options).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s{_tail(log)}")
        time.sleep(0.2)


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return "\n" + log.read_text(errors="replace")[-4000:]
