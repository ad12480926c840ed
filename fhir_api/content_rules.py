"""MedMij content rules every served resource must meet (fhir-content.md §1.2), checked on write.

The Nictiz qualification scripts assert these on every response; this server enforces them when
data comes in, so nothing that breaks them is ever stored or served:

* #5  every resource except OperationOutcome/Binary carries ``meta.profile`` (contained resources
  are not Bundle entries and need none);
* #9  every Coding has ``system`` and ``code`` (except Questionnaire-local answer codes, see
  :func:`_questionnaire_local_code`);
* #10 no zib value-set OID (``urn:oid:2.16.840.1.113883.2.4.3.11.60.40.2…``) as ``Coding.system``;
* #11 every CodeableConcept has ``coding.display``, ``text`` or an extension;
* #12 every Reference has ``display`` (or a data-absent-reason / iso21090-nullFlavor extension);
* #13 every Identifier has (``system`` or ``type``) and a value;
* #14 no BSN in clear: an identifier of system ``http://fhir.nl/fhir/NamingSystem/bsn`` carries only
  the data-absent-reason ``masked`` extension (MedMij core.rscint.203: no BSN in the exchange).

:func:`mask_bsn` and :func:`fill_reference_displays` fix what can be fixed on load; :func:`check`
reports what cannot, and the write is refused with those issues.
"""

from __future__ import annotations

import typing as t

from .errors import Issue
from .search.values import BSN_SYSTEM
from .search.values import parse_reference
from .walk import iter_typed

DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
NULL_FLAVOR = "http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor"
ZIB_VALUESET_OID_PREFIX = "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.2"
NO_PROFILE_NEEDED = frozenset({"OperationOutcome", "Binary", "Bundle", "Parameters"})

MASKED = {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}


def mask_bsn(resource: dict[str, t.Any]) -> list[str]:
    """Replace every clear BSN by the ``masked`` data-absent-reason; return the BSNs removed.

    The caller keeps the BSN only as a keyed hash (``IdentityLink``) to find the patient at login.
    """
    found: list[str] = []
    for node, _ in list(_bsn_identifiers(resource)):
        value = node.pop("value", None)
        if value:
            found.append(str(value))
        if value or not _has_extension(node.get("_value")):
            node["_value"] = {"extension": [dict(MASKED["extension"][0])]}
    return found


def clear_bsn_paths(resource: dict[str, t.Any]) -> list[str]:
    """Where ``resource`` carries a BSN in clear (an identifier of the BSN system with a value).

    The PGO-facing API refuses such requests outright (MedMij core.rscint.203: the patient follows from the
    token, never from data in the request); a BSN reaches the DVZA only from the hospital's own systems.
    """
    return [path for node, path in _bsn_identifiers(resource) if node.get("value")]


def _bsn_identifiers(resource: dict[str, t.Any]) -> t.Iterator[tuple[dict[str, t.Any], str]]:
    """Every Identifier of the BSN system in ``resource``, with its path."""
    for fhir_type, node, path in iter_typed(resource):
        if fhir_type == "Identifier" and isinstance(node, dict) and node.get("system") == BSN_SYSTEM:
            yield node, path


def fill_reference_displays(
    resource: dict[str, t.Any], display_for: t.Callable[[str, str], str | None],
    local_bases: t.Sequence[str] = (),
) -> None:
    """Give a Reference without ``display`` the display of its target, when the target is known."""
    for fhir_type, node, _ in iter_typed(resource):
        if fhir_type != "Reference" or not isinstance(node, dict) or node.get("display"):
            continue
        if _has_absent_marker(node):
            continue
        target = parse_reference(node.get("reference", ""), local_bases)
        if target is not None:
            display = display_for(target.type, target.id)
            if display:
                node["display"] = display


def check(resource: dict[str, t.Any]) -> list[Issue]:
    """Every content-rule violation in ``resource`` (empty when it may be stored and served)."""
    issues: list[Issue] = []
    for fhir_type, node, path in iter_typed(resource):
        if not isinstance(node, dict):
            continue
        if node is resource:
            if fhir_type not in NO_PROFILE_NEEDED and not (node.get("meta") or {}).get("profile"):
                issues.append(_issue(path, f"{fhir_type} has no meta.profile"))
        elif fhir_type == "Coding" and not _questionnaire_local_code(resource, path):
            if not node.get("system") or not node.get("code"):
                issues.append(_issue(path, "Coding needs both system and code"))
            if str(node.get("system", "")).startswith(ZIB_VALUESET_OID_PREFIX):
                issues.append(_issue(path, f"{node['system']} is a zib value set OID, not a code system"))
        elif fhir_type == "CodeableConcept":
            has_display = any(c.get("display") for c in node.get("coding", []) if isinstance(c, dict))
            if not (has_display or node.get("text") or node.get("extension")):
                issues.append(_issue(path, "CodeableConcept needs a coding.display, text or extension"))
        elif fhir_type == "Reference":
            if not node.get("display") and not _has_absent_marker(node):
                issues.append(_issue(path, f"Reference {node.get('reference', '')!r} has no display"))
        elif fhir_type == "Identifier":
            if not (node.get("system") or node.get("type")) or not ("value" in node or "_value" in node):
                issues.append(_issue(path, "Identifier needs (system or type) and a value"))
            if node.get("system") == BSN_SYSTEM and node.get("value"):
                issues.append(_issue(path, "A BSN may only be served masked"))
    return issues


def _questionnaire_local_code(resource: dict[str, t.Any], path: str) -> bool:
    """Answer options of a Questionnaire (its enableWhen conditions, and the answers that pick
    them) may use codes local to that Questionnaire, without a code system (STU3
    Questionnaire.item.option.valueCoding, QuestionnaireResponse.item.answer.valueCoding): rule #9
    does not apply to them."""
    kind = resource.get("resourceType")
    local_parts = (".option", ".initialCoding", ".enableWhen")
    return (kind == "Questionnaire" and any(part in path for part in local_parts)) or (
        kind == "QuestionnaireResponse" and ".answer" in path
    )


def _issue(path: str, text: str) -> Issue:
    return Issue("invalid", f"{path}: {text}", expression=path)


def _has_extension(node: t.Any) -> bool:
    return isinstance(node, dict) and bool(node.get("extension"))


def _has_absent_marker(node: dict[str, t.Any]) -> bool:
    return any(
        isinstance(ext, dict) and ext.get("url") in (DATA_ABSENT_REASON, NULL_FLAVOR)
        for ext in node.get("extension", [])
    )
