"""The zib vital-sign rules for self-measurements a PGO sends (Zelfmetingen 2.x, gegevensdienst 53).

Per profile (fhir-content.md §5.1, zib2017 / Nictiz vital-sign profiles): the LOINC/SNOMED codes
that identify the measurement, the UCUM units its value may have, the components it must carry
(blood pressure: systolic 8480-6 and diastolic 8462-4 in mm[Hg]; respiration: rate 9279-1 per
minute), ``category = vital-signs``, a final-ish status and an effective time. Plausibility bounds
catch unit mistakes (72 g instead of 72 kg) without judging medicine.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

from .errors import Issue

NICTIZ = "http://nictiz.nl/fhir/StructureDefinition/"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS_CATEGORY = ("http://hl7.org/fhir/observation-category", "vital-signs")
#: blood glucose is recorded as a laboratory finding (SNOMED 49581000146104) in the Nictiz data
LAB_FINDING_CATEGORY = (SNOMED, "49581000146104")
GLUCOSE_CODES = frozenset({(LOINC, "14760-3"), (LOINC, "14743-9"), (LOINC, "14770-2"), (LOINC, "15074-8"),
                           (LOINC, "2339-0")})
ACCEPTED_STATUS = frozenset({"final", "amended", "corrected", "preliminary"})


@dataclass(frozen=True, slots=True)
class Quantity:
    units: frozenset[str]
    minimum: Decimal
    maximum: Decimal
    unit_pattern: str | None = None  # alternative: a regular expression over the UCUM code


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    codes: frozenset[tuple[str, str]]
    value: Quantity | None = None
    components: dict[str, Quantity] = field(default_factory=dict)  # required LOINC component -> quantity
    categories: frozenset[tuple[str, str]] = frozenset({VITAL_SIGNS_CATEGORY})


def _q(units: t.Iterable[str], low: str, high: str, pattern: str | None = None) -> Quantity:
    return Quantity(frozenset(units), Decimal(low), Decimal(high), pattern)


PER_MINUTE = _q(["/min"], "0", "400")
MM_HG = _q(["mm[Hg]"], "0", "400")

RULES: dict[str, Rule] = {
    NICTIZ + "zib-BloodPressure": Rule(
        "bloeddruk", frozenset({(LOINC, "85354-9")}), None, {"8480-6": MM_HG, "8462-4": MM_HG}),
    NICTIZ + "zib-BodyWeight": Rule(
        "lichaamsgewicht", frozenset({(LOINC, "29463-7"), (LOINC, "3141-9")}), _q(["kg", "g"], "0", "700000")),
    NICTIZ + "zib-BodyHeight": Rule(
        "lichaamslengte", frozenset({(LOINC, "8302-2"), (LOINC, "8306-3"), (LOINC, "8308-9")}),
        _q(["cm", "m"], "0", "300")),
    NICTIZ + "zib-BodyTemperature": Rule(
        "lichaamstemperatuur", frozenset({(LOINC, "8310-5")}), _q(["Cel"], "20", "50")),
    NICTIZ + "zib-HeartRate": Rule("hartfrequentie", frozenset({(LOINC, "8867-4")}), PER_MINUTE),
    NICTIZ + "zib-PulseRate": Rule("polsfrequentie", frozenset({(LOINC, "8893-0")}), PER_MINUTE),
    NICTIZ + "zib-OxygenSaturation": Rule(
        "zuurstofsaturatie", frozenset({(LOINC, "59408-5"), (LOINC, "2708-6")}), _q(["%"], "0", "100")),
    NICTIZ + "zib-Respiration": Rule(
        "ademhaling", frozenset({(SNOMED, "422834003")}), None,
        {"9279-1": _q(["/min"], "0", "200", r"^\{.+\}/min$")}),
    NICTIZ + "vitalsign-bloodglucose": Rule(
        "bloedglucose", GLUCOSE_CODES, _q(["mmol/L"], "0", "100"),
        categories=frozenset({VITAL_SIGNS_CATEGORY, LAB_FINDING_CATEGORY})),
}


def rule_for(observation: dict[str, t.Any]) -> Rule | None:
    for profile in (observation.get("meta") or {}).get("profile", []):
        if profile in RULES:
            return RULES[profile]
    return None


def check(observation: dict[str, t.Any], where: str) -> list[Issue]:
    """Every way ``observation`` breaks the vital-sign rules (``where`` prefixes the locations)."""
    issues: list[Issue] = []

    def fail(text: str, path: str = "") -> None:
        issues.append(Issue("business-rule", f"{where}{path}: {text}", expression=f"{where}{path}"))

    if observation.get("resourceType") != "Observation":
        fail("only Observations can be sent as self-measurements")
        return issues
    rule = rule_for(observation)
    if rule is None:
        fail(f"meta.profile names no known vital-sign profile (one of: {', '.join(sorted(RULES))})", ".meta")
        return issues
    if observation.get("status") not in ACCEPTED_STATUS:
        fail(f"status {observation.get('status')!r} is not accepted for a measurement", ".status")
    categories = {(c.get("system"), c.get("code")) for cat in observation.get("category", [])
                  for c in cat.get("coding", [])}
    if not categories & rule.categories:
        names = " or ".join(f"{system}|{code}" for system, code in sorted(rule.categories))
        fail(f"category must include {names}", ".category")
    codes = {(c.get("system"), c.get("code")) for c in (observation.get("code") or {}).get("coding", [])}
    if not codes & rule.codes:
        expected = ", ".join(f"{s}|{c}" for s, c in sorted(rule.codes))
        fail(f"code does not identify a {rule.name} measurement (expected one of {expected})", ".code")
    if not (observation.get("effectiveDateTime") or observation.get("effectivePeriod")):
        fail("a measurement needs its time (effectiveDateTime or effectivePeriod)", ".effective[x]")
    if rule.value is not None:
        _check_quantity(observation.get("valueQuantity"), rule.value, ".valueQuantity", fail,
                        absent=not any(k.startswith("value") for k in observation))
    components = {}
    for index, component in enumerate(observation.get("component", [])):
        for coding in (component.get("code") or {}).get("coding", []):
            if coding.get("system") == LOINC and coding.get("code") in rule.components:
                components[coding["code"]] = (index, component)
    for code, quantity in rule.components.items():
        if code not in components:
            fail(f"the {rule.name} needs component {LOINC}|{code}", ".component")
            continue
        index, component = components[code]
        _check_quantity(component.get("valueQuantity"), quantity, f".component[{index}].valueQuantity", fail,
                        absent=False)
    return issues


def _check_quantity(value: t.Any, rule: Quantity, path: str, fail: t.Callable[[str, str], None], *,
                    absent: bool) -> None:
    if value is None:
        if absent:
            fail("the measured value is missing (valueQuantity or dataAbsentReason)", path)
        else:
            fail("must be a Quantity", path)
        return
    unit = value.get("code")
    unit_ok = unit in rule.units or (rule.unit_pattern is not None and re.match(rule.unit_pattern, unit or ""))
    if value.get("system") != UCUM or not unit_ok:
        fail(f"unit must be UCUM {' or '.join(sorted(rule.units))}, got {value.get('system')}|{unit}", path)
    number = value.get("value")
    if not isinstance(number, (int, Decimal)) or isinstance(number, bool):
        fail("value must be a number", path + ".value")
    elif not rule.minimum <= Decimal(number) <= rule.maximum:
        fail(f"value {number} {unit} is outside {rule.minimum}..{rule.maximum}", path + ".value")
