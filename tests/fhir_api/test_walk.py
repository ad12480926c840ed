"""The typed walk every write rule rests on (fhir_api.walk): which nodes, with which type and path, in which order."""

from __future__ import annotations

from fhir_api.walk import iter_typed
from fhir_api.walk import resolve


def _patient() -> dict:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "unknownName": {"reference": "Patient/x"},  # not an element of Patient: not visited
        "contained": [{"resourceType": "Organization", "id": "o1", "name": "Zkh"}],
        "extension": [{"url": "http://e", "valueReference": {"reference": "#o1"}}],
        "name": [{"family": "Jansen", "given": ["Jan", "Piet"],
                  "_given": [None, {"extension": [{"url": "http://n", "valueCode": "NA"}]}]}],
        "active": True,
    }


def test_every_complex_element_is_visited_depth_first_with_its_type_and_path() -> None:
    patient = _patient()
    nodes = [(fhir_type, path) for fhir_type, _, path in iter_typed(patient)]
    assert nodes == [
        ("Patient", "Patient"),
        ("Organization", "Patient.contained[0]"),
        ("Extension", "Patient.extension[0]"),
        ("Reference", "Patient.extension[0].valueReference"),
        ("HumanName", "Patient.name[0]"),
        ("Extension", "Patient.name[0].given[1].extension[0]"),  # on a primitive, through _given
    ]
    by_path = {path: node for _, node, path in iter_typed(patient)}
    assert by_path["Patient.extension[0].valueReference"] is patient["extension"][0]["valueReference"]


def test_what_is_not_an_object_where_an_object_belongs_is_passed_over() -> None:
    odd = {"resourceType": "Patient", "name": ["Jansen", {"family": "x"}], "managingOrganization": "Organization/1",
           "contained": [{"id": "no type"}, 7]}
    assert [path for _, _, path in iter_typed(odd)] == ["Patient", "Patient.name[1]"]


def test_a_caller_may_change_the_values_it_is_given() -> None:
    patient = _patient()
    for fhir_type, node, _ in iter_typed(patient):
        if fhir_type == "Reference":
            node["reference"] = "Organization/o1"
            node["display"] = "Zkh"  # added while walking: not visited, and no error
    assert patient["extension"][0]["valueReference"] == {"reference": "Organization/o1", "display": "Zkh"}


def test_nothing_is_visited_in_what_is_not_a_known_resource() -> None:
    assert list(iter_typed({"resourceType": "NoSuchType", "id": "x"})) == []
    assert list(iter_typed({"id": "x"})) == []


def test_resolve_flattens_lists_and_choice_types() -> None:
    patient = _patient()
    assert resolve(patient, "name.given") == [("String", "Jan"), ("String", "Piet")]
    assert resolve(patient, "extension.value[x].reference") == [("String", "#o1")]
    assert resolve(patient, "contained.name") == [("String", "Zkh")]
