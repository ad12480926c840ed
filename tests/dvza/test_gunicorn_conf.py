"""``dvza serve``'s gunicorn settings (dvza.gunicorn_conf), loaded in a process of their own: importing them
prepares the metrics folder of that process."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc, os
import dvza.gunicorn_conf as conf
assert gc.get_freeze_count() == 0
objects = [[n] for n in range(1000)]  # made by the preloaded app before the fork, say
import sys
assert "fhir.resources.STU3.observation" not in sys.modules
conf.pre_fork(None, None)
assert gc.get_freeze_count() >= 1000, gc.get_freeze_count()
assert "fhir.resources.STU3.observation" in sys.modules and "fhir.resources.STU3.humanname" in sys.modules
conf.pre_fork(None, None)  # the next worker: nothing imported again
conf.on_exit(None)
print("ok")
"""


def test_the_master_imports_the_models_and_keeps_what_it_made_out_of_the_workers_collections() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
