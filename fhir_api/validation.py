"""Structural validation of incoming resources against the FHIR STU3 base specification.

Validation happens on write only ("validate on write, serve stored JSON"): the ``fhir.resources``
STU3 models check element names, cardinality, types and primitive formats (e.g. a dateTime with a
time needs a timezone, datatypes.html#dateTime). Profile (zib) validation is not done here.

Known gap worked around: ``fhir.resources`` rejects the JSON ``_valueX`` sibling of an extension's
primitive value (fhir.resources issue #204), which zib data uses for nullFlavor extensions; those
siblings are checked by :mod:`fhir_api.fhirxml`/:mod:`fhir_api.walk` instead and left out of the
copy that is validated.
"""

from __future__ import annotations

import copy
import typing as t
from functools import cache

from pydantic import ValidationError

from .errors import FhirFormatError
from .errors import InvalidResource
from .errors import Issue
from .schema import stu3
from .walk import iter_typed

MAX_ISSUES = 20


@cache
def _model(resource_type: str) -> t.Any:
    from fhir.resources.STU3 import get_fhir_model_class

    return get_fhir_model_class(resource_type)


@cache
def load_models() -> int:
    """Import every STU3 model module of ``fhir.resources`` now (once per process); how many there are.

    They are otherwise imported as a validation first meets each type — in a forked server worker the first
    write paid about a quarter of a second (measured: 250 ms for the package, 68 ms more for a Patient's
    element types), and again in each new worker after a recycle. Done once in a server's master process
    before it forks (``dvza.gunicorn_conf``), the workers share them."""
    import importlib
    import pkgutil

    import fhir.resources.STU3 as package

    names = [module.name for module in pkgutil.iter_modules(package.__path__)]
    for name in names:
        importlib.import_module(f"{package.__name__}.{name}")
    return len(names)


def validate_structure(resource: t.Any) -> None:
    """Raise :class:`InvalidResource` listing what makes ``resource`` invalid STU3."""
    if not isinstance(resource, dict):
        raise FhirFormatError("A FHIR resource must be a JSON object")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not stu3().is_resource(resource_type):
        raise InvalidResource(f"Unknown or missing resourceType {resource_type!r}")
    candidate = resource  # the models read their input without changing it (tests/fhir_api/test_validation.py)
    if any(fhir_type == "Extension" and isinstance(node, dict) and any(k.startswith("_value") for k in node)
           for fhir_type, node, _ in iter_typed(resource)):
        candidate = copy.deepcopy(resource)  # the copy loses what the models would wrongly refuse
        for fhir_type, node, _ in iter_typed(candidate):
            if fhir_type == "Extension" and isinstance(node, dict):
                for key in [k for k in node if k.startswith("_value")]:
                    del node[key]
    try:
        _model(resource_type).model_validate(candidate)
    except ValidationError as exc:
        issues = []
        for error in exc.errors()[:MAX_ISSUES]:
            location = _fhirpath(resource_type, error.get("loc", ()))
            issues.append(Issue("structure", f"{location}: {error.get('msg')}", expression=location))
        raise InvalidResource(
            f"{resource_type} is not valid FHIR STU3 ({exc.error_count()} problem(s))", issues=issues
        ) from None


def _fhirpath(resource_type: str, loc: t.Sequence[t.Any]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = str(part)
            if name.endswith("__ext"):
                name = "_" + name[: -len("__ext")]
            path += "." + name
    return path
