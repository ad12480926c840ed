"""FHIRPath evaluation with fhirpathpy (STU3 model) and corrections for its known gaps
(fhir-content.md §8.2):

1. a primitive with a ``_field`` extension sibling (``{"gender": "male", "_gender": {...}}``)
   navigates to two items (the value and an extension-only node), so ``gender = 'male'`` is false
   and ``gender.toString()`` empty. :func:`_install` makes member navigation return one node
   holding both (value in ``data``, extension in ``_data``), reachable by ``gender.extension``;
2. ``hasValue()`` is not implemented: supplied through ``userInvocationTable``;
3. results are reduced to plain Python values (:func:`evaluate`); decimals stay exact
   (:class:`~decimal.Decimal`, never a binary float: FHIR decimals compare exactly, FHIRPath §4.1).
   Callers give resources read with :func:`dvza.conformance.documents.loads_exact`.
"""

from __future__ import annotations

import importlib
import typing as t
from decimal import Decimal

import fhirpathpy
from fhirpathpy.engine import nodes as fp_nodes
from fhirpathpy.models import models

_PRIMITIVES = (str, int, float, bool, Decimal)
_installed = False


def _unwrap(value: t.Any) -> t.Any:
    if isinstance(value, fp_nodes.ResourceNode) and isinstance(value.data, _PRIMITIVES):
        return value.data
    return value


def _install() -> None:
    """Patch fhirpathpy's member navigation so that a primitive and its ``_field`` sibling form one
    node (value + extension), as FHIRPath §2.1/FHIR JSON §"primitive extensions" require."""
    global _installed
    if _installed:
        return
    evaluators = importlib.import_module("fhirpathpy.engine.evaluators")  # the module, not engine.evaluators

    original = evaluators.create_reduce_member_invocation

    def create_reduce_member_invocation(model: t.Any, key: str) -> t.Callable[[t.Any, t.Any], t.Any]:
        reduce_full = original(model, key)

        def func(acc: list[t.Any], res: t.Any) -> list[t.Any]:
            node = fp_nodes.ResourceNode.create_node(res)
            data = node.data
            if isinstance(data, _PRIMITIVES) and isinstance(node._data, dict):
                # navigating into a primitive (``gender.extension``): its id/extension live in _data
                inner = fp_nodes.ResourceNode.create_node(node._data, node.path, propName=node.propName)
                return reduce_full(acc, inner)
            if not (isinstance(data, dict) and any(k.startswith("_") for k in data)):
                return reduce_full(acc, res)
            stripped = {k: v for k, v in data.items() if not k.startswith("_")}
            values = reduce_full([], fp_nodes.ResourceNode.create_node(stripped, node.path, propName=node.propName))
            everything = reduce_full([], res)
            extras = everything[len(values):]
            if not values or not extras:
                return acc + everything
            if len(extras) != len(values):
                return acc + everything
            merged = []
            for value, extra in zip(values, extras, strict=True):
                if value.data is None:
                    merged.append(extra if extra.data is not None else value)
                    continue
                merged.append(fp_nodes.ResourceNode.create_node(
                    value.data, value.path, _data=extra.data if isinstance(extra.data, dict) else None,
                    propName=value.propName, index=value.index))
            return acc + [m for m in merged if m.data is not None]

        return func

    evaluators.create_reduce_member_invocation = create_reduce_member_invocation
    _installed = True


def _has_value(coll: list[t.Any]) -> list[bool]:
    """FHIRPath ``hasValue()``: a single primitive with a value (fhirpathpy gives the data, not nodes)."""
    return [len(coll) == 1 and isinstance(coll[0], _PRIMITIVES)]


_USER_FUNCTIONS = {"hasValue": {"fn": _has_value, "arity": {0: []}}}


def plain(value: t.Any) -> t.Any:
    """A fhirpathpy result item as a plain Python value (nodes → their data, FP types → str)."""
    value = _unwrap(value)
    if isinstance(value, fp_nodes.ResourceNode):
        return value.data
    if isinstance(value, fp_nodes.FP_Type):
        return str(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    return value


def evaluate(resource: t.Any, expression: str, variables: t.Mapping[str, t.Any] | None = None) -> list[t.Any]:
    """Evaluate ``expression`` on a FHIR JSON resource; a list of plain values. Raises on syntax errors."""
    _install()
    result = fhirpathpy.evaluate(resource, expression, dict(variables or {}), models["stu3"],
                                 options={"userInvocationTable": _USER_FUNCTIONS})
    return [plain(v) for v in result]


def truthy(result: list[t.Any]) -> bool:
    """Boolean reading of a result (FHIRPath §4.5 singleton evaluation): empty → false; booleans →
    all true; any other non-empty collection → true (it "exists")."""
    if not result:
        return False
    if all(isinstance(v, bool) for v in result):
        return all(result)
    return True


def as_text(value: t.Any) -> str:
    """The string a TestScript compares with ``assert.value`` (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
