"""The whole development network as real processes (``dvza.devtools.devnet``): DVZA frontchannel and
backchannel under gunicorn with TLS from ``certs/``, and the PGO simulator, on free local ports.

One network per test session; it is started once and shared by the TLS tests and the browser
tests. Tests here must leave it usable for the others (they only add data through the API).
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest

from dvza.devtools.processes import free_port
from tests.support import needs_shared

#: A hostname with a certificate from the development CA that is on no MedMij list.
STRANGER = "onbekende-pgo.example"


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[t.Any]:
    needs_shared()
    from dvza.devtools.devnet import DevNetwork

    root = tmp_path_factory.mktemp("devnet")
    net = DevNetwork(root, front_port=free_port(), back_port=free_port(), pgo_port=free_port(), workers=1,
                     digid_port=free_port(), digid_back_port=free_port(),
                     extra_clients=(STRANGER,),
                     extra_env={"DVZA_LOG_LEVEL": "WARNING", "DVZA_DATABASE_URL": f"sqlite:///{root / 'e2e.db'}"})
    net.prepare(shared=Path(os.environ["DVZA_SHARED_DIR"]) if os.environ.get("DVZA_SHARED_DIR") else None)
    net.start()
    try:
        yield net
    finally:
        net.stop()


def person(network: t.Any, script: str = "BGZ") -> str:
    """The BSN of the first development-login test person of a Nictiz set (``BGZ``, ``PDF/A``, …)."""
    return next(p["bsn"] for p in network.dev_persons() if f"(MedMij {script})" in p["name"])
