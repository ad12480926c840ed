"""FHIR STU3 TestScript model and parser (https://hl7.org/fhir/STU3/testscript.html).

Only the elements the Nictiz qualification scripts use, plus the rest of the STU3 ``assert`` and
``operation`` elements so that handwritten scripts work too (fhir-content.md §7.3, §8.1). The
Touchstone extensions ``testscript-rule`` / ``testscript-assert-rule`` are read into :class:`RuleCall`.
Plain lxml is enough; the TestScript is not validated against the FHIR model (§8.1).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from lxml import etree

FHIR_NS = "http://hl7.org/fhir"
_F = f"{{{FHIR_NS}}}"
RULE_EXT = "http://touchstone.aegis.net/touchstone/fhir/testing/StructureDefinition/testscript-rule"
#: Interoplab/ConformanceLab: marks the ``origin``/``destination`` that is the system under test
SUT_EXT = "http://fhir.interoplab.eu/fhir/StructureDefinition/Interoplab-CL-ext-SUT"
ASSERT_RULE_EXT = "http://touchstone.aegis.net/touchstone/fhir/testing/StructureDefinition/testscript-assert-rule"

#: The STU3 ``TestScript.setup.action.assert`` elements a runner may meet (besides description/label/direction).
ASSERT_KINDS = ("responseCode", "response", "resource", "contentType", "headerField", "expression",
                "minimumId", "validateProfileId", "requestURL", "requestMethod", "navigationLinks", "path",
                "compareToSourceId", "rule")


class TestScriptError(ValueError):
    """The file is not a TestScript this runner can read."""


@dataclass
class Fixture:
    """``TestScript.fixture``: a resource file referenced relative to the script (``resource.reference``)."""

    id: str
    reference: str | None
    path: Path | None


@dataclass
class Variable:
    """``TestScript.variable``: ``defaultValue``, or ``expression``/``path``/``headerField`` over ``sourceId``."""

    name: str
    default_value: str | None = None
    expression: str | None = None
    header_field: str | None = None
    path: str | None = None
    source_id: str | None = None


@dataclass
class Operation:
    """``action.operation`` (STU3): ``type`` is (system, code); the rest are the element values."""

    type_system: str | None
    type_code: str | None
    resource: str | None = None
    description: str | None = None
    label: str | None = None
    accept: str | None = None
    content_type: str | None = None
    encode_request_url: bool = True
    params: str | None = None
    url: str | None = None
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    request_id: str | None = None
    response_id: str | None = None
    source_id: str | None = None
    target_id: str | None = None
    #: ``origin``/``destination`` index (STU3: which test system sends it, which receives it)
    origin: int | None = None
    destination: int | None = None

    @property
    def title(self) -> str:
        what = self.type_code or "?"
        target = self.url or f"{self.resource or ''}{self.params or ''}"
        return f"{what} {target}".strip()


@dataclass
class RuleCall:
    """A Touchstone rule invocation on an assert (``testscript-assert-rule``): rule id, params, outputs."""

    rule_id: str
    params: dict[str, str] = field(default_factory=dict)
    outputs: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Assert:
    """``action.assert`` (STU3 plus ``stopTestOnFail`` as used by Touchstone scripts)."""

    description: str | None = None
    label: str | None = None
    direction: str | None = None
    compare_to_source_id: str | None = None
    compare_to_source_expression: str | None = None
    compare_to_source_path: str | None = None
    content_type: str | None = None
    expression: str | None = None
    header_field: str | None = None
    minimum_id: str | None = None
    navigation_links: bool | None = None
    operator: str | None = None
    path: str | None = None
    request_method: str | None = None
    request_url: str | None = None
    resource: str | None = None
    response: str | None = None
    response_code: str | None = None
    source_id: str | None = None
    validate_profile_id: str | None = None
    value: str | None = None
    warning_only: bool = False
    stop_test_on_fail: bool = False
    rule: RuleCall | None = None

    @property
    def kind(self) -> str:
        """The assert kind: the first of :data:`ASSERT_KINDS` present (``compareToSourceId`` counts
        as ``expression`` when an expression is given)."""
        if self.rule is not None:
            return "rule"
        for name, attr in (("responseCode", "response_code"), ("response", "response"), ("resource", "resource"),
                           ("contentType", "content_type"), ("headerField", "header_field"),
                           ("minimumId", "minimum_id"), ("validateProfileId", "validate_profile_id"),
                           ("expression", "expression"), ("compareToSourceId", "compare_to_source_id"),
                           ("requestURL", "request_url"), ("requestMethod", "request_method"),
                           ("navigationLinks", "navigation_links"), ("path", "path")):
            if getattr(self, attr) is not None:
                return name
        return "unknown"

    @property
    def title(self) -> str:
        return self.description or self.label or self.kind


@dataclass
class Action:
    """One ``action``: exactly one of ``operation``/``assert``."""

    operation: Operation | None = None
    assertion: Assert | None = None


@dataclass
class Test:
    id: str | None
    name: str | None
    description: str | None
    actions: list[Action] = field(default_factory=list)


@dataclass
class TestScript:
    """A parsed TestScript; ``path`` is where it was read from (fixture references are relative to it)."""

    __test__ = False  # not a pytest class

    path: Path
    id: str | None
    name: str | None
    title: str | None
    description: str | None = None
    fixtures: dict[str, Fixture] = field(default_factory=dict)
    profiles: dict[str, str] = field(default_factory=dict)
    variables: list[Variable] = field(default_factory=list)
    rules: dict[str, str] = field(default_factory=dict)
    #: ``TestScript.origin`` index → is it the system under test (Interoplab SUT extension)
    origins: dict[int, bool] = field(default_factory=dict)
    setup: list[Action] = field(default_factory=list)
    tests: list[Test] = field(default_factory=list)
    teardown: list[Action] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.title or self.name or self.id or self.path.name

    @property
    def client_role(self) -> bool:
        """A client-role script (Nictiz ``PHR-Client``, ``Retrieving-PHR``, ``Sending-PHR``): its origin,
        the client that sends the requests, is the system under test; the test system plays the server."""
        return any(self.origins.values())

    def is_client_request(self, op: Operation) -> bool:
        """An operation the system under test is expected to send (not one the test system does itself)."""
        return op.origin is not None and self.origins.get(op.origin, False)

    def all_actions(self) -> t.Iterator[Action]:
        yield from self.setup
        for test in self.tests:
            yield from test.actions
        yield from self.teardown


Test.__test__ = False  # type: ignore[attr-defined]


def _value(el: etree._Element | None, name: str) -> str | None:
    if el is None:
        return None
    child = el.find(_F + name)
    return child.get("value") if child is not None else None


def _bool(el: etree._Element, name: str, default: bool) -> bool:
    raw = _value(el, name)
    return default if raw is None else raw.strip().lower() == "true"


def _extensions(el: etree._Element, url: str) -> list[etree._Element]:
    return [e for e in el.findall(_F + "extension") if e.get("url") == url]


def _ext_value(ext: etree._Element) -> str | None:
    for child in ext:
        if isinstance(child.tag, str) and etree.QName(child).localname.startswith("value"):
            return child.get("value")
    return None


def _rule_call(ext: etree._Element) -> RuleCall:
    rule_id = ""
    params: dict[str, str] = {}
    outputs: list[dict[str, str]] = []
    for sub in ext.findall(_F + "extension"):
        url = sub.get("url")
        if url == "ruleId":
            rule_id = _ext_value(sub) or ""
        elif url in ("param", "output"):
            parts = {p.get("url") or "": _ext_value(p) or "" for p in sub.findall(_F + "extension")}
            if url == "param":
                params[parts.get("name", "")] = parts.get("value", "")
            else:
                outputs.append(parts)
    return RuleCall(rule_id, params, outputs)


def _operation(el: etree._Element) -> Operation:
    type_el = el.find(_F + "type")
    headers = [(_value(h, "field") or "", _value(h, "value") or "") for h in el.findall(_F + "requestHeader")]
    return Operation(
        type_system=_value(type_el, "system"), type_code=_value(type_el, "code"),
        resource=_value(el, "resource"), description=_value(el, "description"), label=_value(el, "label"),
        accept=_value(el, "accept"), content_type=_value(el, "contentType"),
        encode_request_url=_bool(el, "encodeRequestUrl", True), params=_value(el, "params"), url=_value(el, "url"),
        request_headers=headers, request_id=_value(el, "requestId"), response_id=_value(el, "responseId"),
        source_id=_value(el, "sourceId"), target_id=_value(el, "targetId"),
        origin=_int(_value(el, "origin")), destination=_int(_value(el, "destination")),
    )


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _assert(el: etree._Element) -> Assert:
    rules = _extensions(el, ASSERT_RULE_EXT)
    nav = _value(el, "navigationLinks")
    return Assert(
        description=_value(el, "description"), label=_value(el, "label"), direction=_value(el, "direction"),
        compare_to_source_id=_value(el, "compareToSourceId"),
        compare_to_source_expression=_value(el, "compareToSourceExpression"),
        compare_to_source_path=_value(el, "compareToSourcePath"), content_type=_value(el, "contentType"),
        expression=_value(el, "expression"), header_field=_value(el, "headerField"),
        minimum_id=_value(el, "minimumId"), navigation_links=None if nav is None else nav == "true",
        operator=_value(el, "operator"), path=_value(el, "path"), request_method=_value(el, "requestMethod"),
        request_url=_value(el, "requestURL"), resource=_value(el, "resource"), response=_value(el, "response"),
        response_code=_value(el, "responseCode"), source_id=_value(el, "sourceId"),
        validate_profile_id=_value(el, "validateProfileId"), value=_value(el, "value"),
        warning_only=_bool(el, "warningOnly", False), stop_test_on_fail=_bool(el, "stopTestOnFail", False),
        rule=_rule_call(rules[0]) if rules else None,
    )


def _actions(parent: etree._Element | None) -> list[Action]:
    if parent is None:
        return []
    actions = []
    for action in parent.findall(_F + "action"):
        op = action.find(_F + "operation")
        asrt = action.find(_F + "assert")
        actions.append(Action(operation=_operation(op) if op is not None else None,
                              assertion=_assert(asrt) if asrt is not None else None))
    return actions


def is_testscript_file(path: Path) -> bool:
    """A ``*.xml`` file whose root element is ``TestScript`` in the FHIR namespace (cheap check)."""
    if path.suffix != ".xml" or "_reference" in path.parts:
        return False
    try:
        for _event, el in etree.iterparse(str(path), events=("start",)):
            return el.tag == _F + "TestScript"
    except etree.XMLSyntaxError:
        return False
    return False


def find_testscripts(paths: t.Iterable[Path]) -> list[Path]:
    """Expand directories to the TestScript files in them (recursively, sorted); files are kept as given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.xml")) if is_testscript_file(p))
        else:
            found.append(path)
    return found


def parse_testscript(path: Path | str) -> TestScript:
    """Parse an STU3 TestScript XML file. Fixture references are resolved relative to the file."""
    path = Path(path)
    try:
        root = etree.parse(str(path)).getroot()
    except etree.XMLSyntaxError as exc:
        raise TestScriptError(f"{path}: not XML: {exc}") from exc
    if root.tag != _F + "TestScript":
        raise TestScriptError(f"{path}: root is {root.tag}, not a FHIR TestScript")
    script = TestScript(path=path, id=_value(root, "id"), name=_value(root, "name"), title=_value(root, "title"),
                        description=_value(root, "description"))
    for ext in _extensions(root, RULE_EXT):
        call = _rule_call(ext)
        path_ext = [e for e in ext.findall(_F + "extension") if e.get("url") == "path"]
        script.rules[call.rule_id] = (_ext_value(path_ext[0]) or "") if path_ext else ""
    for origin in root.findall(_F + "origin"):
        index = _int(_value(origin, "index"))
        sut = [e for e in _extensions(origin, SUT_EXT) if (_ext_value(e) or "").lower() == "true"]
        if index is not None:
            script.origins[index] = bool(sut)
    for fx in root.findall(_F + "fixture"):
        ref = _value(fx.find(_F + "resource"), "reference")
        target = (path.parent / ref).resolve() if ref and "://" not in ref and not ref.startswith("#") else None
        script.fixtures[fx.get("id") or ""] = Fixture(fx.get("id") or "", ref, target)
    for prof in root.findall(_F + "profile"):
        script.profiles[prof.get("id") or ""] = _value(prof, "reference") or prof.get("value") or ""
    for var in root.findall(_F + "variable"):
        script.variables.append(Variable(
            name=_value(var, "name") or "", default_value=_value(var, "defaultValue"),
            expression=_value(var, "expression"), header_field=_value(var, "headerField"),
            path=_value(var, "path"), source_id=_value(var, "sourceId"),
        ))
    script.setup = _actions(root.find(_F + "setup"))
    for test in root.findall(_F + "test"):
        script.tests.append(Test(test.get("id"), _value(test, "name"), _value(test, "description"), _actions(test)))
    script.teardown = _actions(root.find(_F + "teardown"))
    return script
