"""Structural validation on write (fhir_api.validation): what it refuses, and that it never changes what it checks."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from dvza.devtools.testdata import materialise
from fhir_api import fhirjson
from fhir_api import fhirxml
from fhir_api.errors import InvalidResource
from fhir_api.validation import validate_structure
from tests.support import STU3
from tests.support import needs_shared


def _resources() -> list[dict]:
    found = []
    for path in sorted(STU3.glob("*/MedMij/Cert/_reference/**/*.*")):
        if path.suffix not in (".json", ".xml"):
            continue
        text = materialise(path.read_text(encoding="utf-8-sig"), date.today())
        document = fhirjson.loads(text) if path.suffix == ".json" else fhirxml.parse_xml(text.encode())
        found += [document] + [entry["resource"] for entry in document.get("entry", []) if "resource" in entry]
    return found


def test_validation_leaves_every_fixture_as_it_was() -> None:
    """The resource is validated in place (no copy) unless an extension carries a ``_value`` sibling: the
    STU3 models must not change their input, or what is stored would differ from what was checked."""
    needs_shared()
    resources = _resources()
    assert len(resources) > 50
    valid = 0
    for resource in resources:
        before = copy.deepcopy(resource)
        try:
            validate_structure(resource)
            valid += 1
        except InvalidResource:
            pass
        assert resource == before
    assert valid > 50


def test_an_extension_value_sibling_is_left_out_of_the_check_but_kept() -> None:
    observation = {
        "resourceType": "Observation", "status": "final", "code": {"text": "Gewicht"},
        "extension": [{"url": "http://example.org/reden", "valueCode": "x",
                       "_valueCode": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor",
                                                     "valueCode": "UNK"}]}}],
    }
    before = copy.deepcopy(observation)
    validate_structure(observation)
    assert observation == before


def test_what_is_not_stu3_is_refused_with_its_location() -> None:
    with pytest.raises(InvalidResource) as refused:
        validate_structure({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                            "effectiveDateTime": "2024-01-01T10:00:00"})  # a time needs a timezone
    assert any(issue.expression == "Observation.effectiveDateTime" for issue in refused.value.issues)
    with pytest.raises(InvalidResource):
        validate_structure({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "noSuch": 1})
