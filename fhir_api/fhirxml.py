"""FHIR XML (https://hl7.org/fhir/STU3/xml.html) <-> FHIR JSON, driven by the STU3 element schema.

Rules implemented (xml.html, json.html):

* The root element is the resource type in namespace ``http://hl7.org/fhir``; nested resources
  (``contained``, ``Bundle.entry.resource``, ``Parameters.parameter.resource``) are wrapped in
  their element.
* Primitives are ``<x value="..."/>``; their ``id`` attribute and ``extension`` children become the
  JSON ``_x`` sibling; repeating primitives keep ``x``/``_x`` arrays aligned with ``null``.
* Element ``id`` (for data types) and ``Extension.url`` are XML attributes; ``Resource.id`` is an
  element.
* ``Narrative.div`` is XHTML kept as a string in JSON; it goes into the XML only as one well-formed XHTML
  ``div`` element (otherwise a JSON string could close the ``text`` element and add elements of its own).
* Elements are written in specification order ("Element order", xml.html#1.17.1).
* JSON booleans/integers/decimals get their JSON types (json.html#primitive); decimals keep their
  precision (:mod:`fhir_api.fhirjson`).
* A FHIR string holds no control characters but tab, carriage return and line feed (datatypes.html#string), and
  XML 1.0 cannot carry them at all (§2.2 ``Char``, nor U+FFFE/U+FFFF), not even as character references. JSON
  can: a resource to be stored is rendered ``strict`` and refused when it holds one; anything else rendered for an
  answer (an OperationOutcome quoting bad input) gets U+FFFD in its place, so XML output is always well-formed.

Parsing is defused: no DTDs, no entity expansion, no network access, bounded size.
"""

from __future__ import annotations

import re
import typing as t
from decimal import Decimal
from decimal import InvalidOperation

from lxml import etree

from .errors import FhirFormatError
from .errors import InvalidResource
from .errors import Issue
from .schema import ElementDef
from .schema import stu3

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_FHIR = "{" + FHIR_NS + "}"
_XHTML_DIV = "{" + XHTML_NS + "}div"

# ``huge_tree``: a base64 PDF of a few MB is one text node over libxml2's default 10 MB limit; the
# body is bounded before it is parsed (MAX_BODY_BYTES) and the depth is checked after, so the
# limits that huge_tree lifts are enforced here instead.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=True,
    remove_comments=True,
    remove_pis=True,
)
#: element nesting accepted in FHIR XML (JSON has the same bound, :data:`fhir_api.fhirjson.MAX_DEPTH`)
MAX_DEPTH = 100


# --------------------------------------------------------------------------------------- reading
def parse_xml(data: bytes | str) -> dict[str, t.Any]:
    """Parse a FHIR XML resource into a FHIR JSON dict; :class:`FhirFormatError` if it is not one."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise FhirFormatError(f"Invalid XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise FhirFormatError("A DOCTYPE is not allowed in FHIR XML")
    _check_depth(root)
    try:
        return _read_resource(root)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise FhirFormatError(f"The XML is nested more than {MAX_DEPTH} levels deep") from None


def well_formed(text: str) -> bool:
    """Is ``text`` one well-formed XML document (parsed as FHIR XML is: no DTD, no entities, no network)?"""
    try:
        etree.fromstring(text.encode("utf-8"), _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return False
    return True


def _check_depth(root: etree._Element) -> None:
    depth = 0
    for action, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if action == "start" else -1
        if depth > MAX_DEPTH:
            raise FhirFormatError(f"The XML is nested more than {MAX_DEPTH} levels deep")


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str) or not tag.startswith(_FHIR):
        raise FhirFormatError(f"Element {tag!r} is not in the FHIR namespace {FHIR_NS}")
    return tag[len(_FHIR):]


def _read_resource(el: etree._Element) -> dict[str, t.Any]:
    type_name = _local(el)
    schema = stu3()
    if not schema.is_resource(type_name):
        raise FhirFormatError(f"Unknown resource type {type_name!r}")
    out: dict[str, t.Any] = {"resourceType": type_name}
    _read_children(el, type_name, out, is_resource=True)
    return out


def _read_children(el: etree._Element, type_name: str, out: dict[str, t.Any], *, is_resource: bool) -> None:
    elements = stu3().elements(type_name)
    for key, value in el.attrib.items():
        if key == "id" and not is_resource:
            out["id"] = value
        elif key == "url" and type_name == "Extension":
            out["url"] = value
        elif key.startswith("{http://www.w3.org/2001/XMLSchema-instance}"):
            continue
        else:
            raise FhirFormatError(f"Unexpected attribute {key!r} on {type_name}")
    for child in el:
        if not isinstance(child.tag, str):
            continue
        name = "div" if child.tag == _XHTML_DIV and type_name == "Narrative" else _local(child)
        element = elements.get(name)
        if element is None or (is_resource is False and name == "id") or (
            type_name == "Extension" and name == "url"
        ):
            raise FhirFormatError(f"Unknown element {name!r} in {type_name}")
        if element.kind == "p":
            _read_primitive(child, element, out, type_name)
        elif element.kind == "r":
            inner = [c for c in child if isinstance(c.tag, str)]
            if len(inner) != 1:
                raise FhirFormatError(f"{type_name}.{name} must contain exactly one resource")
            _put(out, name, _read_resource(inner[0]), element)
        else:
            node: dict[str, t.Any] = {}
            _read_children(child, element.type, node, is_resource=False)
            _put(out, name, node, element)


def _put(out: dict[str, t.Any], name: str, value: t.Any, element: ElementDef) -> None:
    if element.is_list:
        out.setdefault(name, []).append(value)
    elif name in out:
        raise FhirFormatError(f"Element {name!r} may occur only once")
    else:
        out[name] = value


def _read_primitive(el: etree._Element, element: ElementDef, out: dict[str, t.Any], type_name: str) -> None:
    name = element.name
    if element.json_kind == "xhtml":
        if el.tag != _XHTML_DIV:
            raise FhirFormatError("Narrative.div must be an XHTML div (namespace http://www.w3.org/1999/xhtml)")
        out[name] = etree.tostring(el, encoding="unicode", with_tail=False)
        return
    raw = el.get("value")
    value = _convert(raw, element, type_name) if raw is not None else None
    ext: dict[str, t.Any] = {}
    if el.get("id") is not None:
        ext["id"] = el.get("id")
    for key in el.attrib:
        if key not in ("value", "id"):
            raise FhirFormatError(f"Unexpected attribute {key!r} on {type_name}.{name}")
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if _local(child) != "extension":
            raise FhirFormatError(f"Primitive {type_name}.{name} may only contain extensions")
        node: dict[str, t.Any] = {}
        _read_children(child, "Extension", node, is_resource=False)
        ext.setdefault("extension", []).append(node)
    if value is None and not ext:
        raise FhirFormatError(f"{type_name}.{name} has neither a value nor extensions")
    if element.is_list:
        values = out.setdefault(name, [])
        exts = out.get("_" + name)
        if ext and exts is None:
            exts = out["_" + name] = [None] * len(values)
        values.append(value)
        if exts is not None:
            exts.append(ext or None)
    else:
        if name in out or "_" + name in out:
            raise FhirFormatError(f"Element {name!r} may occur only once")
        if value is not None:
            out[name] = value
        if ext:
            out["_" + name] = ext


def _convert(raw: str, element: ElementDef, type_name: str) -> t.Any:
    kind = element.json_kind
    if kind == "boolean":
        if raw == "true":
            return True
        if raw == "false":
            return False
        raise FhirFormatError(f"{type_name}.{element.name}: {raw!r} is not a boolean")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise FhirFormatError(f"{type_name}.{element.name}: {raw!r} is not an integer") from None
    if kind == "decimal":
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise FhirFormatError(f"{type_name}.{element.name}: {raw!r} is not a decimal") from None
        if not number.is_finite():
            raise FhirFormatError(f"{type_name}.{element.name}: {raw!r} is not a decimal")
        # JSON has no integer/decimal distinction for whole numbers without a point.
        return int(raw) if raw.lstrip("-").isdigit() else number
    return raw


# --------------------------------------------------------------------------------------- writing
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)


def escape_attr(value: t.Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value).translate(_ATTR_ESCAPES)


#: what XML 1.0 cannot carry (module docstring); surrogates cannot reach here (fhirjson refuses lone ones)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_xml(resource: dict[str, t.Any], *, strict: bool = False) -> str:
    """Write a FHIR JSON resource as FHIR XML (no XML declaration), elements in spec order. A character XML
    cannot carry, or a narrative that is not one well-formed XHTML div, is refused
    (:class:`~fhir_api.errors.InvalidResource`, with the element) when ``strict``, else written as U+FFFD or as
    text."""
    parts: list[str] = []
    try:
        _write_resource(resource, parts, strict, root=True)
    except _BadNarrative as bad:
        refused = bad.value
        where = _path_where(resource, lambda value: value is refused, resource.get("resourceType", "Resource"))
        where = where or "Narrative.div"
        text = (f"{where} is not one well-formed XHTML div element (with the XHTML namespace), so it cannot be "
                "written into FHIR XML (narrative.html, xml.html)")
        raise InvalidResource(text, issues=[Issue("invalid", text, expression=where)]) from None
    text = "".join(parts)
    found = _NOT_XML.search(text)
    if found is None:
        return text
    if strict:
        character = found.group()
        where = _path_where(resource, lambda value: character in value, resource.get("resourceType", "Resource"))
        where = where or "a string"
        text = (f"{where} holds the character U+{ord(found.group()):04X}, which XML cannot carry and a FHIR string "
                "may not hold (no control characters but tab, carriage return and line feed; datatypes.html#string)")
        raise InvalidResource(text, issues=[Issue("invalid", text, expression=where)])
    return _NOT_XML.sub("\ufffd", text)


def _path_where(node: t.Any, test: t.Callable[[str], bool], path: str) -> str | None:
    """Where in ``node`` the first string (or property name) that passes ``test`` is."""
    if isinstance(node, str):
        return path if test(node) else None
    items: t.Iterable[tuple[str, t.Any]] = ()
    if isinstance(node, dict):
        for key in node:
            if test(key):
                return f"{path}.{key}"
        items = ((f"{path}.{key}", value) for key, value in node.items())
    elif isinstance(node, list):
        items = ((f"{path}[{index}]", value) for index, value in enumerate(node))
    for where, value in items:
        found = _path_where(value, test, where)
        if found is not None:
            return found
    return None


class _BadNarrative(Exception):
    def __init__(self, value: t.Any):
        super().__init__("narrative")
        self.value = value


def _narrative(value: t.Any, strict: bool) -> str:
    """``Narrative.div`` as it goes into FHIR XML: one well-formed XHTML ``div`` element, written as it came
    (narrative.html; xml.html). Anything else — text around or after the element, another root, no XHTML
    namespace — would not be XML, or would put elements of its own into the resource's XML: refused when
    ``strict`` (:class:`_BadNarrative`), else written as text inside an XHTML div."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("<div") and text.endswith(">"):
            try:
                root = etree.fromstring(text.encode("utf-8"), _PARSER)
            except (etree.XMLSyntaxError, ValueError):
                root = None
            if root is not None and root.tag == _XHTML_DIV:
                return text
    if strict:
        raise _BadNarrative(value)
    return f'<div xmlns="{XHTML_NS}">{escape_attr(value)}</div>'


def _write_resource(resource: dict[str, t.Any], parts: list[str], strict: bool, *, root: bool = False) -> None:
    type_name = resource.get("resourceType")
    if not isinstance(type_name, str) or not stu3().is_resource(type_name):
        raise FhirFormatError(f"Unknown resource type {type_name!r}")
    parts.append(f'<{type_name} xmlns="{FHIR_NS}">' if root else f"<{type_name}>")
    _write_children(resource, type_name, parts, strict, is_resource=True)
    parts.append(f"</{type_name}>")


def _write_children(node: dict[str, t.Any], type_name: str, parts: list[str], strict: bool, *,
                    is_resource: bool) -> None:
    elements = stu3().elements(type_name)
    for key in node:
        if key == "resourceType" and is_resource:
            continue
        base = key[1:] if key.startswith("_") else key
        if base not in elements:
            raise FhirFormatError(f"Unknown element {base!r} in {type_name}")
    for name, element in elements.items():
        if not is_resource and (name == "id" or (name == "url" and type_name == "Extension")):
            continue  # written as attributes by the caller
        value = node.get(name)
        ext = node.get("_" + name)
        if value is None and ext is None:
            continue
        if element.kind == "p":
            _write_primitive(name, element, value, ext, parts, strict)
        elif element.kind == "r":
            for item in value if element.is_list else [value]:
                parts.append(f"<{name}>")
                _write_resource(item, parts, strict)
                parts.append(f"</{name}>")
        else:
            for item in value if element.is_list else [value]:
                _write_complex(name, element.type, item, parts, strict)


def _write_complex(name: str, type_name: str, node: dict[str, t.Any], parts: list[str], strict: bool) -> None:
    attrs = ""
    if "id" in node:
        attrs += f' id="{escape_attr(node["id"])}"'
    if type_name == "Extension" and "url" in node:
        attrs += f' url="{escape_attr(node["url"])}"'
    start = len(parts)
    parts.append("")
    _write_children(node, type_name, parts, strict, is_resource=False)
    if len(parts) == start + 1:
        parts[start] = f"<{name}{attrs}/>"
    else:
        parts[start] = f"<{name}{attrs}>"
        parts.append(f"</{name}>")


def _write_primitive(name: str, element: ElementDef, value: t.Any, ext: t.Any, parts: list[str],
                     strict: bool) -> None:
    if element.json_kind == "xhtml":
        parts.append(_narrative(value, strict))
        return
    if element.is_list:
        values = value if value is not None else [None] * len(ext)
        exts = ext if ext is not None else [None] * len(values)
        if len(values) != len(exts):
            raise FhirFormatError(f"{name} and _{name} must have the same number of items")
        for item, item_ext in zip(values, exts, strict=True):
            _write_one_primitive(name, item, item_ext, parts, strict)
    else:
        _write_one_primitive(name, value, ext, parts, strict)


def _write_one_primitive(name: str, value: t.Any, ext: dict[str, t.Any] | None, parts: list[str],
                         strict: bool) -> None:
    attrs = ""
    if ext and "id" in ext:
        attrs += f' id="{escape_attr(ext["id"])}"'
    if value is not None:
        attrs += f' value="{escape_attr(value)}"'
    extensions = (ext or {}).get("extension")
    if not extensions:
        parts.append(f"<{name}{attrs}/>")
        return
    parts.append(f"<{name}{attrs}>")
    for item in extensions:
        _write_complex("extension", "Extension", item, parts, strict)
    parts.append(f"</{name}>")
