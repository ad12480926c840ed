"""The beschikbaarheidstoets (medmij-protocol.md §3.1 step 8): which of the asked gegevensdiensten
have data for this patient. Verzamelen: at least one resource the gegevensdienst would serve (the
same visibility rules as the FHIR API). Delen: the hospital knows the patient, so it can receive.

For the BgZ the Patient resource is itself data: it is the first BgZ section ("Patiënt", with the
huisarts; fhir-content.md §2.1 #01), so a patient with nothing but that still has a BgZ — Nictiz BgZ
scenario 1.2 (XXX_Mesker) serves exactly that. For the other gegevensdiensten the Patient is only
the context of their data and does not count."""

from __future__ import annotations

import typing as t

from sqlalchemy import select

from fhir_api.access import PROFILES
from fhir_api.access import scope_for
from fhir_api.models import ResourceRow
from fhir_api.view import PatientView

#: profiles whose content includes the Patient resource itself (see the module docstring)
PATIENT_IS_CONTENT = frozenset({"bgz"})

if t.TYPE_CHECKING:
    from sqlalchemy.orm import Session


def available_diensten(session: Session, patient_id: str, diensten: frozenset[str],
                       mapping: t.Mapping[str, str]) -> frozenset[str]:
    patient_known = session.scalar(select(ResourceRow.pk).where(
        ResourceRow.resource_type == "Patient", ResourceRow.logical_id == patient_id,
        ResourceRow.hidden_by.is_(None))) is not None
    if not patient_known:
        return frozenset()
    found = set()
    for dienst in diensten:
        profile = PROFILES.get(mapping.get(dienst, ""))
        if profile is None:
            continue
        if profile.usecase == "delen":
            found.add(dienst)
            continue
        if profile.name in PATIENT_IS_CONTENT:
            found.add(dienst)  # the patient is known (checked above) and is the BgZ's first section
            continue
        if PatientView(session, patient_id, scope_for([dienst], mapping)).any_data(exclude=("Patient",)):
            found.add(dienst)
    return frozenset(found)
