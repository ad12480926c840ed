"""The beschikbaarheidstoets (dvza.availability): which asked gegevensdiensten have data for a patient."""

from __future__ import annotations

import typing as t

import pytest

from dvza.availability import available_diensten

ALL = frozenset({"48", "51", "52", "53", "57", "59", "60"})


@pytest.mark.parametrize(("patient", "expected"), [
    # BgZ scenario 1.2: XXX_Mesker has nothing but the Patient, and Nictiz serves that as his BgZ
    ("medmij-bgz-patient-ts-02", {"48", "53", "57", "60"}),
    ("medmij-bgz-patient-ts-01", {"48", "53", "57", "60", "52"}),
    ("example-pdfa-kwalificatie1", {"48", "51", "53", "57", "60"}),
    ("unknown-patient", set()),
])
def test_available_gegevensdiensten(cert_app: t.Any, patient: str, expected: set[str]) -> None:
    with cert_app.app_context():
        session = cert_app.extensions["dvza.db"].session()
        found = available_diensten(session, patient, ALL, cert_app.config["GEGEVENSDIENSTEN"])
    assert found == expected
