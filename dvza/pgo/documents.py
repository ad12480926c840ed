"""Documents (PDF/A 3.x): fetching (gegevensdienst 51) and sending (57), as a PGO does it.

Fetching (fhir-content.md §3.1): the current documents ``DocumentReference?status=current`` (optionally
in a period: ``&indexed=ge…&indexed=le…``), the current document sets ``DocumentManifest?status=current``
and, for each set, the DocumentReferences it names (read one by one, ``DocumentReference/<id>``).
A document is opened with ``GET [base]/Binary/<id>`` and ``Accept: application/pdf``. Only attachments
on this aanbieder's own FHIR base are opened: the PGO never sends the person's token to another host.

Sending (§3.2, IHE MHD "Provide Document Bundle" as Nictiz profiles it): a transaction with the Patient
(matched by the DVZA), per PDF a DocumentReference (IHE.MHD.Minimal.DocumentReference) and a Binary,
and — for more than one document — a DocumentManifest (IHE.MHD.DocumentManifest) naming them.
"""

from __future__ import annotations

import base64
import typing as t
import uuid
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from urllib.parse import urljoin
from urllib.parse import urlsplit

from .client import Aanbieder
from .client import PgoClient
from .client import PgoError
from .measurements import patient_entry

DOCUMENTS_QUERY = "DocumentReference?status=current"
MANIFESTS_QUERY = "DocumentManifest?status=current"
DR_PROFILE = "http://nictiz.nl/fhir/StructureDefinition/IHE.MHD.Minimal.DocumentReference"
DM_PROFILE = "http://nictiz.nl/fhir/StructureDefinition/IHE.MHD.DocumentManifest"
#: what a person sends: a document from themselves (SNOMED CT "patient-authored note"-like type)
SENT_TYPE = {"system": "http://loinc.org", "code": "51855-5", "display": "Patient note"}
SET_TYPE = {"system": "http://snomed.info/sct", "code": "371535009", "display": "verslag van overdracht"}
MAX_PDF_BYTES = 15 * 1024 * 1024


@dataclass(slots=True)
class Document:
    title: str
    date: str
    url: str
    content_type: str
    reference: str = ""


@dataclass(slots=True)
class DocumentSet:
    title: str
    date: str
    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DocumentsView:
    documents: list[Document] = field(default_factory=list)
    sets: list[DocumentSet] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    since: str = ""
    until: str = ""

    def all(self) -> list[Document]:
        """Every document shown, numbered in this order for opening."""
        return self.documents + [d for s in self.sets for d in s.documents]


def documents_query(since: date | None = None, until: date | None = None) -> str:
    query = DOCUMENTS_QUERY
    if since:
        query += f"&indexed=ge{since.isoformat()}"
    if until:
        query += f"&indexed=le{until.isoformat()}"
    return query


def _documents_of(resource: dict[str, t.Any]) -> list[Document]:
    found = []
    for content in resource.get("content", []):
        attachment = content.get("attachment") or {}
        found.append(Document(
            title=str(attachment.get("title") or resource.get("description") or "Document"),
            date=str(resource.get("indexed", ""))[:10], url=str(attachment.get("url", "")),
            content_type=str(attachment.get("contentType", "")),
            reference=f"DocumentReference/{resource.get('id', '')}"))
    return found


def fetch_documents(client: PgoClient, aanbieder: Aanbieder, token: str, *, since: date | None = None,
                    until: date | None = None, with_sets: bool = True) -> DocumentsView:
    """The person's current documents and document sets (see the module docstring)."""
    view = DocumentsView(since=since.isoformat() if since else "", until=until.isoformat() if until else "")
    bundle = client.get(aanbieder, token, documents_query(since, until))
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "DocumentReference":
            view.documents += _documents_of(resource)
    if not with_sets:
        return view
    try:
        manifests = client.get(aanbieder, token, MANIFESTS_QUERY)
    except PgoError as exc:
        view.problems.append(str(exc))
        return view
    for entry in manifests.get("entry", []):
        manifest = entry.get("resource") or {}
        if manifest.get("resourceType") != "DocumentManifest":
            continue
        doc_set = DocumentSet(title=str(manifest.get("description") or _display(manifest.get("type")) or "Documenten"),
                              date=str(manifest.get("created", ""))[:10])
        for content in manifest.get("content", []):
            reference = str((content.get("pReference") or {}).get("reference", ""))
            if not reference.startswith("DocumentReference/"):
                continue
            try:
                doc_set.documents += _documents_of(client.get(aanbieder, token, reference))
            except PgoError as exc:
                doc_set.problems.append(str(exc))
        view.sets.append(doc_set)
    return view


def _display(concept: t.Any) -> str:
    if not isinstance(concept, dict):
        return ""
    return str(concept.get("text") or next((c.get("display") for c in concept.get("coding", []) if c.get("display")),
                                           ""))


def binary_path(aanbieder: Aanbieder, url: str) -> str | None:
    """The path of a document's Binary relative to the aanbieder's FHIR base, or None when the
    attachment is elsewhere (its token must not go there)."""
    if not url:
        return None
    base = aanbieder.fhir_base.rstrip("/") + "/"
    absolute = urljoin(base, url)
    if not absolute.startswith(base) or urlsplit(absolute).query:
        return None
    path = absolute[len(base):]
    parts = path.split("/")
    if len(parts) != 2 or parts[0] != "Binary" or not parts[1]:
        return None
    return path


def open_document(client: PgoClient, aanbieder: Aanbieder, token: str, document: Document) -> tuple[bytes, str]:
    path = binary_path(aanbieder, document.url)
    if path is None:
        raise PgoError(f"document {document.url!r} is not on {aanbieder.fhir_base}: not opened with this token")
    return client.get_bytes(aanbieder, token, path, "application/pdf")


class DocumentError(ValueError):
    """A document cannot be sent; the message is Dutch, for the person."""


def document_bundle(files: t.Sequence[tuple[str, bytes]], *, patient: dict[str, t.Any] | None = None,
                    description: str | None = None, now: datetime | None = None) -> dict[str, t.Any]:
    """The PDF/A provide-document transaction for ``(title, pdf bytes)`` pairs (module docstring)."""
    if not files:
        raise DocumentError("Kies een PDF-bestand.")
    for title, data in files:
        if not data.startswith(b"%PDF"):
            raise DocumentError(f"'{title}' is geen PDF-bestand.")
        if len(data) > MAX_PDF_BYTES:
            raise DocumentError(f"'{title}' is te groot (meer dan 15 MB).")
    moment = (now or datetime.now()).astimezone().isoformat(timespec="seconds")
    entry, display = patient_entry(patient)
    entries = [entry]
    subject = {"reference": entry["fullUrl"], "display": display}
    references = []
    for title, data in files:
        binary_url, document_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        references.append({"reference": document_url, "display": title})
        entries.append({"fullUrl": document_url, "request": {"method": "POST", "url": "DocumentReference"},
                        "resource": {
                            "resourceType": "DocumentReference", "meta": {"profile": [DR_PROFILE]},
                            "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
                            "status": "current", "type": {"coding": [SENT_TYPE]}, "subject": subject,
                            "indexed": moment, "description": title,
                            "content": [{"attachment": {"contentType": "application/pdf", "url": binary_url,
                                                        "title": title, "size": len(data)}}]}})
        entries.append({"fullUrl": binary_url, "request": {"method": "POST", "url": "Binary"},
                        "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                                     "content": base64.b64encode(data).decode("ascii")}})
    if len(files) > 1:
        entries.insert(1, {"fullUrl": f"urn:uuid:{uuid.uuid4()}",
                           "request": {"method": "POST", "url": "DocumentManifest"},
                           "resource": {
                               "resourceType": "DocumentManifest", "meta": {"profile": [DM_PROFILE]},
                               "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
                               "status": "current", "type": {"coding": [SET_TYPE]}, "subject": subject,
                               "created": moment, "description": description or "Documenten uit mijn PGO",
                               "content": [{"pReference": r} for r in references]}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
