"""FHIR documents the runner handles: fixtures, request bodies and responses, in JSON or XML.

FHIRPath needs the JSON form (fhir-content.md §8.1: "XML fixtures must be converted to JSON for
FHIRPath"), so XML is converted with the ``fhir.resources.STU3`` models (``model_validate_xml``);
when a body is not valid enough for that, a structural fallback converter is used (repeated elements
become arrays, ``value`` attributes become strings) so asserts still see the content.

JSON numbers with a fraction are read as :class:`~decimal.Decimal`, never as binary floats: FHIR
``decimal`` is an exact decimal (https://hl7.org/fhir/STU3/datatypes.html#decimal) and FHIRPath compares
decimals exactly (FHIRPath §4.1 "Decimal"), so ``value = 37.2`` must hold for a served ``37.2``.
"""

from __future__ import annotations

import copy
import json
import typing as t
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal

import simplejson
from lxml import etree

from .testscript import FHIR_NS

MIME = {"json": "application/fhir+json", "xml": "application/fhir+xml"}
XHTML_NS = "http://www.w3.org/1999/xhtml"


def loads_exact(text: str | bytes) -> t.Any:
    """JSON with every number that has a fraction or exponent as an exact :class:`Decimal`."""
    return json.loads(text, parse_float=Decimal)


def dumps_exact(value: t.Any) -> str:
    """JSON text of a value that may hold :class:`Decimal` numbers (written as they are, not as floats)."""
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False)


def exact(value: t.Any) -> t.Any:
    """A copy of a JSON value with binary floats replaced by the decimals they were written as
    (``repr`` is the shortest text that reads back as the same float)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    return value


def mime_type(short: str | None) -> str | None:
    """Touchstone short forms ``json``/``xml`` → FHIR STU3 mime types; ``none`` → no header
    (https://hl7.org/fhir/STU3/valueset-content-type.html)."""
    if short is None or short == "none":
        return None
    return MIME.get(short, short)


def format_of(content_type: str | None, text: str) -> str | None:
    """``json``/``xml`` from a Content-Type header, else sniffed from the body; None for other content."""
    ct = (content_type or "").lower()
    if "json" in ct:
        return "json"
    if "xml" in ct:
        return "xml"
    stripped = text.lstrip("\ufeff \r\n\t")
    if not ct or ct.startswith("text/plain"):
        if stripped.startswith("{"):
            return "json"
        if stripped.startswith("<"):
            return "xml"
    return None


@dataclass
class Document:
    """A body with its format; ``resource`` is the JSON form (None if the body is not FHIR)."""

    text: str
    format: str | None
    notes: list[str] = field(default_factory=list)
    _resource: dict[str, t.Any] | None = None
    _parsed: bool = False

    @property
    def resource(self) -> dict[str, t.Any] | None:
        if not self._parsed:
            self._parsed = True
            self._resource = self._parse()
        return self._resource

    def _parse(self) -> dict[str, t.Any] | None:
        if self.format == "json":
            try:
                value = loads_exact(self.text)
            except ValueError as exc:
                self.notes.append(f"body is not JSON: {exc}")
                return None
            return value if isinstance(value, dict) else None
        if self.format == "xml":
            try:
                return xml_to_json(self.text)
            except etree.XMLSyntaxError as exc:
                self.notes.append(f"body is not XML: {exc}")
        return None

    @property
    def resource_type(self) -> str | None:
        res = self.resource
        return res.get("resourceType") if res else None


def xml_to_json(text: str | bytes) -> dict[str, t.Any]:
    """FHIR XML → FHIR JSON (dict), via fhir.resources STU3; structural fallback on model errors."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    root = etree.fromstring(data, parser=etree.XMLParser(remove_comments=True, resolve_entities=False))
    name = etree.QName(root).localname
    try:
        from fhir.resources.STU3 import get_fhir_model_class

        model = get_fhir_model_class(name).model_validate_xml(data)
        return t.cast("dict[str, t.Any]", loads_exact(model.model_dump_json(exclude_none=True)))
    except Exception:  # noqa: BLE001 - any model/validation problem: fall back to the structural form
        return _structural(root)


def _structural(el: etree._Element) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {"resourceType": etree.QName(el).localname}
    out.update(_children(el))
    return out


def _children(el: etree._Element) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for attr in ("id", "url"):
        if el.get(attr) is not None and etree.QName(el).localname not in ("Bundle",):
            out[attr] = el.get(attr)
    for child in el:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        name = qname.localname
        if qname.namespace == XHTML_NS:
            out["div"] = etree.tostring(child, encoding="unicode")
            continue
        if name == "resource" and len(child):
            value: t.Any = _structural(child[0])
        elif child.get("value") is not None and not len(child):
            value = child.get("value")
        elif child.get("value") is not None:
            value = child.get("value")
            out.setdefault("_" + name, _children(child))
        else:
            value = _children(child)
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def from_file(path: t.Any) -> Document:
    """A fixture file (``.json`` or ``.xml``)."""
    text = open(path, encoding="utf-8-sig").read()  # noqa: SIM115, PTH123 - short read
    return Document(text, "json" if str(path).endswith(".json") else "xml")


def from_resource(resource: dict[str, t.Any]) -> Document:
    resource = exact(resource)
    return Document(dumps_exact(resource), "json", _resource=resource, _parsed=True)


def with_status(doc: Document, new_status: str) -> Document:
    """``rewrite-response-taskStatus`` (fhir-content.md §7.3 (2)): the Task in ``doc`` (a Task, or a
    Bundle with exactly one Task) with ``status`` := ``new_status`` and ``text`` removed, in ``doc``'s
    format. Raises ValueError if there is no single Task."""
    if doc.format == "xml":
        root = etree.fromstring(doc.text.encode("utf-8"))
        ns = {"f": FHIR_NS}
        tasks = [root] if etree.QName(root).localname == "Task" else \
            root.xpath("f:entry/f:resource/f:Task", namespaces=ns)
        if len(tasks) != 1:
            raise ValueError(f"expected exactly one Task, found {len(tasks)}")
        task = tasks[0]
        for text_el in task.findall(f"{{{FHIR_NS}}}text"):
            task.remove(text_el)
        status = task.find(f"{{{FHIR_NS}}}status")
        if status is None:
            raise ValueError("Task has no status element")
        status.set("value", new_status)
        return Document(etree.tostring(task, encoding="unicode"), "xml")
    res = doc.resource
    if not res:
        raise ValueError("response has no FHIR body")
    if res.get("resourceType") == "Task":
        found = [res]
    else:
        found = [e.get("resource") for e in res.get("entry", [])
                 if (e.get("resource") or {}).get("resourceType") == "Task"]
    if len(found) != 1:
        raise ValueError(f"expected exactly one Task, found {len(found)}")
    task = copy.deepcopy(found[0])
    task.pop("text", None)
    task["status"] = new_status
    return from_resource(task)
