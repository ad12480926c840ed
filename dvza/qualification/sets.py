"""The Nictiz client-role sets a qualification session can run, and where their scripts live.

Nictiz qualifies a PGO with the ``Cert`` client-role TestScripts of each information standard
(fhir-content.md §7.2: roles ``PHR-Client``, ``Retrieving-PHR``, ``Sending-PHR``); the test system
plays the DVZA and serves the Cert test data. The scripts are read from the Nictiz repository
(``QUALIFICATION_SCRIPTS_DIR``, default ``$DVZA_SHARED_DIR/conformance/nictiz-testscripts``).
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass
from pathlib import Path

from ..conformance.testscript import find_testscripts


@dataclass(frozen=True, slots=True)
class ClientSet:
    key: str
    #: the name people see (Dutch, with the Nictiz standard)
    name: str
    #: folders of client-role scripts, relative to the Nictiz repository
    folders: tuple[str, ...]
    #: the gegevensdiensten a PGO needs for it (medmij-protocol.md §6)
    gegevensdiensten: tuple[str, ...]
    aliases: tuple[str, ...] = ()


SETS: dict[str, ClientSet] = {s.key: s for s in (
    ClientSet("bgz", "Basisgegevens zorg (BgZ 3.x)", ("output/STU3/BgZ-3-0/MedMij/Cert/PHR-Client",), ("48",),
              ("BgZ-3-0",)),
    ClientSet("pdfa", "Documenten (PDF/A 3.x)", ("output/STU3/PDFA-3-0/MedMij/Cert/PHR-Client",), ("51", "57"),
              ("PDFA-3-0",)),
    ClientSet("questionnaires", "Vragenlijsten (Vragenlijsten 2.x)",
              ("output/STU3/Questionnaires-2-0/MedMij/Cert/PHR-Client",), ("59", "60"), ("Questionnaires-2-0",)),
    ClientSet("selfmeasurements", "Zelfmetingen (Meetwaarden vitale functies 2.x)",
              ("output/STU3/SelfMeasurements-2-0/MedMij/Cert/Retrieving-PHR",
               "output/STU3/SelfMeasurements-2-0/MedMij/Cert/Sending-PHR"), ("52", "53"), ("SelfMeasurements-2-0",)),
)}


class UnknownSet(ValueError):
    pass


def find_set(name: str) -> ClientSet:
    """A set by key or Nictiz folder name (case-insensitive)."""
    wanted = name.strip().lower()
    for client_set in SETS.values():
        if wanted == client_set.key or wanted in (a.lower() for a in client_set.aliases):
            return client_set
    raise UnknownSet(f"unknown set {name!r}; choose from {', '.join(SETS)}")


def scripts_root(config: t.Mapping[str, t.Any]) -> Path:
    configured = config.get("QUALIFICATION_SCRIPTS_DIR")
    if configured:
        return Path(configured)
    from ..devtools.shared import shared_dir

    return shared_dir() / "conformance" / "nictiz-testscripts"


def script_paths(root: Path, client_set: ClientSet) -> list[str]:
    """The set's scripts as paths relative to ``root``, in the order Nictiz numbers them."""
    paths = []
    for folder in client_set.folders:
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"the Nictiz client-role scripts are not at {root / folder} "
                                    "(set DVZA_QUALIFICATION_SCRIPTS_DIR or DVZA_SHARED_DIR)")
        paths += [str(p.relative_to(root)) for p in find_testscripts([root / folder])]
    return paths


@dataclass(frozen=True, slots=True)
class TestPerson:
    patient_id: str
    name: str
    bsn: str | None


TestPerson.__test__ = False  # type: ignore[attr-defined]


def test_persons(root: Path) -> dict[str, TestPerson]:
    """The Nictiz test persons (``Configuration/QualificationTokens.json``: family name and BSN, which
    a vendor needs to log in as them) by patient id."""
    path = root / "Configuration" / "QualificationTokens.json"
    if not path.is_file():
        return {}
    persons: dict[str, TestPerson] = {}
    for entry in json.loads(path.read_text(encoding="utf-8-sig")):
        patient_id = str(entry.get("resourceId") or "")
        if patient_id and patient_id not in persons:
            persons[patient_id] = TestPerson(patient_id, str(entry.get("familyName") or patient_id),
                                             str(entry["bsn"]) if entry.get("bsn") else None)
    return persons


test_persons.__test__ = False  # type: ignore[attr-defined]
