"""The FHIR STU3 (3.0.2) element schema the JSON and XML codecs need.

For every resource, data type and backbone element this holds the elements in the order the
specification defines (FHIR XML requires that order, https://hl7.org/fhir/STU3/xml.html "Element
order"), whether an element repeats, and whether it is a primitive (and which JSON representation
it has, https://hl7.org/fhir/STU3/json.html#primitive), a complex type or a nested resource.

The table is derived once from the ``fhir.resources.STU3`` models and shipped as
``data/stu3-schema.json``: importing all 158 model modules takes ~1.7 s, loading the table a few
milliseconds. ``python -m fhir_api.schema`` regenerates it; a test checks the shipped file matches.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SCHEMA_FILE = Path(__file__).with_name("data") / "stu3-schema.json"

#: JSON representation classes of primitives (json.html#primitive): booleans and numbers are
#: JSON literals, everything else is a string.
PRIMITIVE_JSON_KIND = {
    "Boolean": "boolean",
    "Integer": "integer",
    "PositiveInt": "integer",
    "UnsignedInt": "integer",
    "Decimal": "decimal",
    "Xhtml": "xhtml",
}


@dataclass(frozen=True, slots=True)
class ElementDef:
    """One element of a type: ``kind`` is ``p`` (primitive), ``c`` (complex) or ``r`` (resource)."""

    name: str
    kind: str
    type: str
    is_list: bool

    @property
    def json_kind(self) -> str:
        """``boolean``, ``integer``, ``decimal``, ``xhtml`` or ``string`` for primitives."""
        return PRIMITIVE_JSON_KIND.get(self.type, "string")


class Schema:
    """Lookup of element definitions by type name, in specification order."""

    def __init__(self, raw: dict[str, t.Any]):
        self._types: dict[str, dict[str, ElementDef]] = {}
        self.resources: frozenset[str] = frozenset(raw["resources"])
        for type_name, elements in raw["types"].items():
            self._types[type_name] = {
                name: ElementDef(name, kind, type_, bool(is_list)) for name, kind, type_, is_list in elements
            }

    def elements(self, type_name: str) -> dict[str, ElementDef]:
        """Elements of ``type_name`` keyed by name, in specification order; KeyError if unknown."""
        return self._types[type_name]

    def has_type(self, type_name: str) -> bool:
        return type_name in self._types

    def is_resource(self, type_name: str) -> bool:
        return type_name in self.resources


@lru_cache(maxsize=1)
def stu3() -> Schema:
    """The shipped STU3 schema (loaded once per process)."""
    return Schema(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def generate() -> dict[str, t.Any]:
    """Build the schema table from the installed ``fhir.resources.STU3`` models."""
    import importlib
    import pkgutil

    import fhir.resources.STU3 as stu3_pkg
    from fhir.resources.STU3.resource import Resource as resource_base
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

    classes: dict[str, type] = {}
    for module_info in pkgutil.iter_modules(stu3_pkg.__path__):
        module = importlib.import_module(f"{stu3_pkg.__name__}.{module_info.name}")
        for attr in vars(module).values():
            if (
                isinstance(attr, type)
                and issubclass(attr, FHIRAbstractModel)
                and attr.__module__ == module.__name__
                and hasattr(attr, "elements_sequence")
            ):
                classes[attr.__name__] = attr

    def element_type(annotation: t.Any) -> tuple[str, str, bool]:
        is_list = False
        inner = annotation
        if t.get_origin(inner) is t.Union or type(inner).__name__ == "UnionType":
            inner = next(a for a in t.get_args(inner) if a is not type(None))
        if t.get_origin(inner) in (list, t.List):  # noqa: UP006 - typing.List appears in the models
            is_list = True
            inner = t.get_args(inner)[0]
            # lists of primitives are List[Optional[Annotated[...]]] (null keeps JSON arrays aligned)
            inner = next((a for a in t.get_args(inner) if a is not type(None)), inner)
        if t.get_origin(inner) is t.Annotated:
            base, marker = t.get_args(inner)[:2]
            name = type(marker).__name__
            if base is bool:
                name = "Boolean"
            return "p", name, is_list
        if inner is bool:
            return "p", "Boolean", is_list
        name = getattr(inner, "__name__", str(inner))
        if name == "ResourceType":
            return "r", "Resource", is_list
        if name.endswith("Type"):
            name = name[: -len("Type")]
        return "c", name, is_list

    types: dict[str, list[list[t.Any]]] = {}
    resources: list[str] = []
    for name, cls in sorted(classes.items()):
        fields = cls.model_fields
        by_alias = {(f.alias or n): f for n, f in fields.items()}
        elements = []
        for element in cls.elements_sequence():
            field = by_alias.get(element) or fields.get(element)
            if field is None:
                continue
            kind, type_name, is_list = element_type(field.annotation)
            elements.append([element, kind, type_name, int(is_list)])
        types[name] = elements
        if issubclass(cls, resource_base) and name not in ("Resource", "DomainResource"):
            resources.append(name)
    return {"fhirVersion": "3.0.2", "resources": sorted(resources), "types": types}


def main() -> None:  # pragma: no cover - developer tool
    SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_FILE.write_text(json.dumps(generate(), separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":  # pragma: no cover
    main()
