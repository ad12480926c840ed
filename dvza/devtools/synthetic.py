"""Synthetic patient records as NDJSON, for ``make bench`` (the bulk import rate) and the import tests.

Each patient is one Patient (with a made-up BSN that passes the elfproef, from the ``9000…`` range no person
has) followed by body-weight Observations and Conditions that meet the MedMij content rules, so every line
loads. Development only.

    python -m dvza.devtools.synthetic --patients 1000 --per-patient 9 > records.ndjson
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as t
from pathlib import Path

from oauth.login import is_valid_bsn

PROFILE_PATIENT = "http://fhir.nl/fhir/StructureDefinition/nl-core-patient"
PROFILE_WEIGHT = "http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight"
PROFILE_PROBLEM = "http://nictiz.nl/fhir/StructureDefinition/zib-Problem"


def synthetic_bsn(index: int) -> str:
    """A made-up BSN for the ``index``-th synthetic person (0 ≤ index < 10⁷): eight digits ``9…`` (or ``8…`` when
    no ninth digit fits) from the index, the ninth chosen to pass the elfproef; one per index, none the same."""
    for lead in ("9", "8"):
        body = f"{lead}{index:07d}"
        found = next((body + digit for digit in "0123456789" if is_valid_bsn(body + digit)), None)
        if found is not None:
            return found
    raise ValueError(f"no synthetic BSN for {index}")  # pragma: no cover - one of the two leads always fits


def patient(index: int, *, prefix: str = "syn", bsn_offset: int = 0) -> dict[str, t.Any]:
    return {
        "resourceType": "Patient", "id": f"{prefix}-{index}", "meta": {"profile": [PROFILE_PATIENT]},
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": synthetic_bsn(bsn_offset + index)}],
        "name": [{"family": f"Proefpersoon{index}", "given": ["Sam"]}],
        "gender": "female" if index % 2 else "male", "birthDate": f"{1940 + index % 60}-0{1 + index % 9}-1{index % 9}",
    }


def weight(index: int, number: int, *, prefix: str = "syn") -> dict[str, t.Any]:
    return {
        "resourceType": "Observation", "id": f"{prefix}-{index}-w{number}", "meta": {"profile": [PROFILE_WEIGHT]},
        "status": "final",
        "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs",
                                  "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{prefix}-{index}", "display": f"Sam Proefpersoon{index}"},
        "effectiveDateTime": f"20{10 + number % 15:02d}-0{1 + number % 9}-15T10:00:00+01:00",
        "valueQuantity": {"value": 60 + (index + number) % 40, "unit": "kg", "system": "http://unitsofmeasure.org",
                          "code": "kg"},
    }


def condition(index: int, number: int, *, prefix: str = "syn") -> dict[str, t.Any]:
    return {
        "resourceType": "Condition", "id": f"{prefix}-{index}-c{number}", "meta": {"profile": [PROFILE_PROBLEM]},
        "clinicalStatus": "active", "verificationStatus": "confirmed",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertensie"}]},
        "subject": {"reference": f"Patient/{prefix}-{index}", "display": f"Sam Proefpersoon{index}"},
        "onsetDateTime": f"20{10 + number % 15:02d}-03-01",
    }


def records(patients: int, per_patient: int = 9, *, prefix: str = "syn",
            bsn_offset: int = 0) -> t.Iterator[dict[str, t.Any]]:
    """Each patient, then ``per_patient`` resources of it (two thirds weights, one third conditions). Sets that
    are loaded into one database need different ``prefix`` and ``bsn_offset`` (a BSN is one person)."""
    for index in range(patients):
        yield patient(index, prefix=prefix, bsn_offset=bsn_offset)
        for number in range(per_patient):
            yield condition(index, number, prefix=prefix) if number % 3 == 2 else weight(index, number, prefix=prefix)


def write_ndjson(target: Path | t.TextIO, patients: int, per_patient: int = 9, *, prefix: str = "syn",
                 bsn_offset: int = 0) -> int:
    """Write the records as NDJSON; returns the number of lines."""
    handle = open(target, "w", encoding="utf-8") if isinstance(target, Path) else target  # noqa: SIM115
    lines = 0
    try:
        for record in records(patients, per_patient, prefix=prefix, bsn_offset=bsn_offset):
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
            lines += 1
    finally:
        if isinstance(target, Path):
            handle.close()
    return lines


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthetic patient records as NDJSON (development only).")
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--per-patient", type=int, default=9)
    parser.add_argument("--prefix", default="syn")
    parser.add_argument("--bsn-offset", type=int, default=0)
    args = parser.parse_args(argv)
    write_ndjson(sys.stdout, args.patients, args.per_patient, prefix=args.prefix, bsn_offset=args.bsn_offset)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
