"""Self-measurements (Zelfmetingen 2.x): what the simulator asks for (gegevensdienst 52) and sends (53).

The four focus measurements of the MedMij Zelfmetingen qualification (fhir-content.md §5.1; Nictiz
kwalificatie "4 focus measurements BP, weight, glucose, heart rate"): blood pressure (LOINC 85354-9,
zib-BloodPressure, components 8480-6/8462-4 in ``mm[Hg]``), body weight (29463-7, zib-BodyWeight, kg),
blood glucose (14743-9, and 14770-2 fasting / 14760-3 after a meal when searching; vitalsign-bloodglucose,
``mmol/L``, laboratory category) and heart rate (8867-4, zib-HeartRate, ``/min``).

Searches (§5.2): all of one kind ``Observation?code=…``, the latest ``Observation/$lastn?code=…``, a
period ``&date=ge…&date=le…``, every vital sign ``Observation?category=vital-signs``. A send is the
MedMij batch of §5.3: a Patient entry (matched by the DVZA to the token's patient, never created) and
the Observations referring to it by ``urn:uuid``.
"""

from __future__ import annotations

import re
import typing as t
import uuid
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from decimal import Decimal
from decimal import InvalidOperation

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS = {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}
LABORATORY = {"system": "http://snomed.info/sct", "code": "49581000146104",
              "display": "bevinding betreffende laboratoriumonderzoek"}
VITAL_SIGNS_QUERY = "Observation?category=vital-signs"


@dataclass(frozen=True, slots=True)
class Kind:
    key: str
    #: Dutch name for people
    name: str
    #: the LOINC codes it is searched by (the first is the one sent)
    codes: tuple[str, ...]
    display: str
    profile: str
    unit: str
    ucum: str
    #: (low, high) plausible values: outside them the person probably typed wrong
    limits: tuple[Decimal, Decimal]


KINDS: dict[str, Kind] = {k.key: k for k in (
    Kind("bloeddruk", "Bloeddruk", ("85354-9",), "Blood pressure panel with all children optional",
         "http://nictiz.nl/fhir/StructureDefinition/zib-BloodPressure", "mmHg", "mm[Hg]", (Decimal(20), Decimal(300))),
    Kind("gewicht", "Lichaamsgewicht", ("29463-7",), "Lichaamsgewicht [massa] in ^patiënt",
         "http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight", "kg", "kg", (Decimal(1), Decimal(500))),
    Kind("glucose", "Bloedglucose", ("14743-9", "14760-3", "14770-2"),
         "Glucose [mol/volume] in capillair bloed d.m.v. glucometer",
         "http://nictiz.nl/fhir/StructureDefinition/vitalsign-bloodglucose", "mmol/l", "mmol/L",
         (Decimal("0.5"), Decimal(60))),
    Kind("hartslag", "Hartslag", ("8867-4",), "Heart rate", "http://nictiz.nl/fhir/StructureDefinition/zib-HeartRate",
         "/min", "/min", (Decimal(20), Decimal(300))),
)}
#: the choice "de vier hoofdmetingen": every code of every kind
MAIN = "hoofdmetingen"
#: the choice "alle vitale functies": the vital-signs category
ALL = "alles"


def search_query(kind: str = ALL, *, latest: bool = False, since: date | None = None,
                 until: date | None = None) -> str:
    """The FHIR search for a choice of the person (fhir-content.md §5.2)."""
    if kind == ALL:
        codes: tuple[str, ...] = ()
    elif kind == MAIN:
        codes = tuple(code for k in KINDS.values() for code in k.codes)
    elif kind in KINDS:
        codes = KINDS[kind].codes
    else:
        raise ValueError(f"unknown kind of measurement {kind!r}")
    parts = [f"code={','.join(f'{LOINC}|{c}' for c in codes)}"] if codes else ["category=vital-signs"]
    if since:
        parts.append(f"date=ge{since.isoformat()}")
    if until:
        parts.append(f"date=le{until.isoformat()}")
    return ("Observation/$lastn?" if latest else "Observation?") + "&".join(parts)


@dataclass(frozen=True, slots=True)
class Measurement:
    kind: str
    #: one value, two for blood pressure (systolic, diastolic)
    values: tuple[Decimal, ...]
    when: datetime

    def text(self) -> str:
        kind = KINDS[self.kind]
        value = "/".join(_plain(v) for v in self.values)
        return f"{kind.name} {value} {kind.unit} op {self.when:%d-%m-%Y %H:%M}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


class MeasurementError(ValueError):
    """A measurement cannot be made from what was given; the message is Dutch, for the person."""


def number(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise MeasurementError(f"'{text}' is geen getal.") from None
    if not value.is_finite():
        raise MeasurementError(f"'{text}' is geen getal.")
    return value


def make(kind: str, values: t.Sequence[str], when: datetime) -> Measurement:
    """A measurement from what a person typed (comma or point as decimal sign)."""
    found = KINDS.get(kind)
    if found is None:
        raise MeasurementError("Kies wat je hebt gemeten.")
    needed = 2 if kind == "bloeddruk" else 1
    given = [v for v in values if v.strip()]
    if len(given) != needed:
        raise MeasurementError("Vul de bovendruk en de onderdruk in." if needed == 2 else "Vul de meetwaarde in.")
    numbers = tuple(number(v) for v in given)
    low, high = found.limits
    if any(not low <= n <= high for n in numbers):
        raise MeasurementError(f"Een {found.name.lower()} van {'/'.join(given)} {found.unit} kan niet kloppen.")
    if kind == "bloeddruk" and numbers[1] >= numbers[0]:
        raise MeasurementError("De onderdruk moet lager zijn dan de bovendruk.")
    if when.tzinfo is None:
        when = when.astimezone()
    return Measurement(kind, numbers, when)


_SPEC = re.compile(r"^\s*(?P<kind>[a-z]+)\s*=\s*(?P<values>[0-9.,/ ]+?)\s*(?:@\s*(?P<when>\S+))?\s*$")


def parse(spec: str) -> Measurement:
    """``kind=value[@when]`` as the CLI takes it: ``bloeddruk=120/80@2026-10-01T08:00``,
    ``gewicht=72.5``, ``glucose=5.4``, ``hartslag=64`` (``when`` ISO 8601, default now)."""
    match = _SPEC.match(spec)
    if not match:
        raise MeasurementError(f"'{spec}': schrijf soort=waarde[@moment], bijvoorbeeld bloeddruk=120/80")
    when = datetime.now().astimezone()
    if match["when"]:
        try:
            when = datetime.fromisoformat(match["when"])
        except ValueError:
            raise MeasurementError(f"'{match['when']}' is geen moment (bijvoorbeeld 2026-10-01T08:00).") from None
    return make(match["kind"], match["values"].split("/"), when)


def observation(measurement: Measurement, patient_url: str, display: str) -> dict[str, t.Any]:
    """One zib Observation for the measurement, about and by the patient of the batch."""
    kind = KINDS[measurement.kind]

    def quantity(value: Decimal) -> dict[str, t.Any]:
        return {"value": json_number(value), "unit": kind.unit, "system": UCUM, "code": kind.ucum}

    resource: dict[str, t.Any] = {
        "resourceType": "Observation", "meta": {"profile": [kind.profile]}, "status": "final",
        "category": [{"coding": [LABORATORY if measurement.kind == "glucose" else VITAL_SIGNS]}],
        "code": {"coding": [{"system": LOINC, "code": kind.codes[0], "display": kind.display}]},
        "subject": {"reference": patient_url, "display": display},
        "effectiveDateTime": measurement.when.isoformat(timespec="seconds"),
        "performer": [{"reference": patient_url, "display": display}],
    }
    if measurement.kind == "bloeddruk":
        resource["component"] = [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]},
             "valueQuantity": quantity(measurement.values[0])},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}]},
             "valueQuantity": quantity(measurement.values[1])},
        ]
    else:
        resource["valueQuantity"] = quantity(measurement.values[0])
    return resource


def json_number(value: Decimal) -> int | float:
    """A decimal as a JSON number: an int when whole, else the float whose shortest text is the decimal."""
    return int(value) if value == value.to_integral_value() else float(value)


def patient_entry(patient: dict[str, t.Any] | None) -> tuple[dict[str, t.Any], str]:
    """The Patient entry of a MedMij send (nl-core-patient, no BSN) and the name to show in references."""
    resource: dict[str, t.Any] = {"resourceType": "Patient",
                                  "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/nl-core-patient"]}}
    for key in ("name", "birthDate", "gender"):
        if patient and key in patient:
            resource[key] = patient[key]
    display = "Patiënt"
    if resource.get("name"):
        from ..readable import human_name

        display = human_name(resource["name"]) or display
    url = f"urn:uuid:{uuid.uuid4()}"
    return {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": "Patient"}}, display


def batch(measurements: t.Sequence[Measurement], *, patient: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """The MedMij Zelfmetingen batch (fhir-content.md §5.3)."""
    if not measurements:
        raise MeasurementError("Er is geen meting om te sturen.")
    entry, display = patient_entry(patient)
    entries = [entry]
    for measurement in measurements:
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}",
                        "resource": observation(measurement, entry["fullUrl"], display),
                        "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}
