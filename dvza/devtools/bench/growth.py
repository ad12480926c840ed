"""Growth with one patient's own record: add N body-weight Observations to XXX_Helleman, written through
the store (validated once, then stored and indexed like any resource), so the searches that should not
care (one match by code, ``$lastn``, ``_include``) can be measured at N = 0, 1 000, 10 000. After each load
the database's planner statistics are refreshed (``ANALYZE``), as PostgreSQL's autovacuum does by itself after
that many new rows."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import copy, sys
from datetime import datetime, timedelta, timezone
from sqlalchemy import select
from dvza import create_app
from fhir_api import fhirjson
from fhir_api.models import ResourceRow
from fhir_api.store import ResourceStore
app = create_app()
start, count = int(sys.argv[1]), int(sys.argv[2])
with app.app_context(), app.extensions["dvza.db"].sessionmaker() as session:
    store = ResourceStore(session)
    text = session.scalar(select(ResourceRow.json_text).where(
        ResourceRow.resource_type == "Observation", ResourceRow.patient_id == "medmij-bgz-patient-ts-01",
        ResourceRow.logical_id == "medmij-bgz-bodyweight-ts-01"))
    template = fhirjson.loads(text)
    template.pop("text", None)
    template["meta"] = {"profile": template["meta"]["profile"]}
    template, _ = store.prepare(template)
    old = datetime(2001, 1, 1, tzinfo=timezone.utc)
    for number in range(start, start + count):
        resource = copy.deepcopy(template)
        resource["id"] = f"bench-weight-{number}"
        resource["effectiveDateTime"] = (old + timedelta(hours=number)).isoformat()
        store.put(resource, prepared=True)
        if number % 1000 == 999:
            session.commit()
    session.commit()
# fresh planner statistics, as autovacuum (PostgreSQL) or a maintenance job would keep them
with app.extensions["dvza.db"].engine.begin() as connection:
    connection.exec_driver_sql("ANALYZE")
"""


def add_weights(env: dict[str, str], start: int, count: int) -> None:
    """Store ``count`` more weights (ids ``bench-weight-<start…>``), all older than the Cert data's."""
    if count <= 0:
        return
    subprocess.run([sys.executable, "-c", _SCRIPT, str(start), str(count)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
