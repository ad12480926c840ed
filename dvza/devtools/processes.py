"""Local server processes for development tooling and tests: a free port to start one on, and waiting until it
answers (the conformance self-host, ``make bench``, the local DigiD, the test identity providers, the e2e tests)."""

from __future__ import annotations

import socket
import subprocess
import time
import typing as t
from pathlib import Path

import requests


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
