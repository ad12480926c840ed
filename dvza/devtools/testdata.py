"""Loading Nictiz test data sets ("testpatiënten inladen", fhir-content.md §7.5) into the store.

``dvza testdata load DIR…`` takes a Nictiz set (e.g. ``…/BgZ-3-0/MedMij/Cert``), a folder holding
several sets, or any folder of FHIR XML/JSON resources:

* When a set has a load script (``_LoadResources/*.xml``), exactly its fixtures are loaded, in its
  order — the data Nictiz puts on a server for qualification. Otherwise every resource under
  ``_reference/resources*`` (or under DIR itself).
* Date templates ``${DATE, T, D|M|Y, ±n}`` are materialised against ``today`` (T = today).
  Fixtures that still contain other ``${…}`` variables are runtime templates (e.g. Tasks a test
  creates in its own setup) and are skipped, as are request Bundles (transaction/batch).
* Each resource goes through the same write path as the API (validation, MedMij content rules,
  compartment) in its own savepoint: a resource the server would refuse is reported and skipped,
  never stored half.
* A DocumentReference is only stored when this server holds its document. An attachment at an
  external URL is imported first, by ``external_documents``: ``local`` (what ``make run`` and
  ``make conformance`` use, offline) copies a document of the same content type that the set itself
  carries as a Binary (the Nictiz PDF/A set has six PDF/A files), the one whose DocumentReference
  title is closest; ``fetch`` downloads it; ``placeholder``, or when neither works, stores a clearly
  labelled placeholder PDF naming the original URL — so the server never sends a PGO, with its token,
  to a third-party host.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import logging
import re
import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import timedelta
from pathlib import Path

from lxml import etree
from sqlalchemy.orm import Session

from fhir_api import fhirjson
from fhir_api import fhirxml
from fhir_api.errors import FhirError
from fhir_api.search.values import parse_reference
from fhir_api.store import display_of

from .. import identity
from ..source.writer import TESTDATA
from ..source.writer import SourceSettings
from ..source.writer import SourceWriter
from ..source.writer import write_rank

logger = logging.getLogger("dvza.testdata")

DATE_TEMPLATE = re.compile(r"\$\{DATE,\s*T,\s*([DMY]),\s*([+-]?)\s*(\d+)\s*\}")
TS_NS = "{http://hl7.org/fhir}"


def add_months(day: date, months: int) -> date:
    """Calendar month arithmetic; the day is clamped to the target month (Jan 31 + 1 M = Feb 28/29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def shift(today: date, unit: str, amount: int) -> date:
    if unit == "D":
        return today + timedelta(days=amount)
    if unit == "M":
        return add_months(today, amount)
    return add_months(today, 12 * amount)


def materialise(text: str, today: date) -> str:
    """Replace every ``${DATE, T, unit, ±n}`` by the ISO date it names."""

    def replace(match: re.Match[str]) -> str:
        amount = int(match[3]) * (-1 if match[2] == "-" else 1)
        return shift(today, match[1], amount).isoformat()

    return DATE_TEMPLATE.sub(replace, text)


@dataclass(slots=True)
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file or id, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    imported_documents: list[tuple[str, str]] = field(default_factory=list)  # (url, how)

    def summary(self) -> str:
        return (f"{len(self.loaded)} loaded, {len(self.refused)} refused, {len(self.skipped)} skipped, "
                f"{len(self.imported_documents)} external documents imported")


# ------------------------------------------------------------------------------------- discovery
def discover(paths: t.Iterable[Path]) -> list[Path]:
    """The fixture files to load, in load order per set, for each given path."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            files.append(path)
            continue
        sets = _sets_under(path)
        if not sets:
            files += _resource_files(path)
        for set_dir in sets:
            files += _set_files(set_dir)
    seen: set[Path] = set()
    unique = []
    for file in files:
        resolved = file.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(file)
    return unique


def _sets_under(path: Path) -> list[Path]:
    if (path / "_reference").is_dir() or (path / "_LoadResources").is_dir():
        return [path]
    found = {p.parent for p in path.rglob("_reference") if p.is_dir()}
    found |= {p.parent for p in path.rglob("_LoadResources") if p.is_dir()}
    return sorted(found)


def _set_files(set_dir: Path) -> list[Path]:
    scripts = sorted((set_dir / "_LoadResources").glob("*.xml")) if (set_dir / "_LoadResources").is_dir() else []
    files: list[Path] = []
    for script in scripts:
        files += fixtures_of_load_script(script)
    if files:
        return files
    for resources in sorted(set_dir.glob("_reference/resources*")):
        files += _resource_files(resources)
    return files


def fixtures_of_load_script(script: Path) -> list[Path]:
    """The fixture files a TestScript declares (``TestScript.fixture.resource.reference``)."""
    tree = etree.parse(str(script), etree.XMLParser(resolve_entities=False, no_network=True))
    files = []
    for reference in tree.iterfind(f"{TS_NS}fixture/{TS_NS}resource/{TS_NS}reference"):
        value = reference.get("value")
        if value:
            files.append((script.parent / value).resolve())
    return files


def _resource_files(folder: Path) -> list[Path]:
    candidates = sorted(p for p in folder.rglob("*") if p.suffix in (".xml", ".json") and p.is_file())
    stems = {p.with_suffix("") for p in candidates if p.suffix == ".xml"}
    # an XML fixture and its JSON twin are the same resource: load one
    return [p for p in candidates if p.suffix == ".xml" or p.with_suffix("") not in stems]


# --------------------------------------------------------------------------------------- loading
def read_fixture(path: Path, today: date) -> dict[str, t.Any] | str:
    """The resource in ``path`` with dates materialised, or the reason it is not data to load."""
    text = materialise(path.read_text(encoding="utf-8-sig"), today)
    if "${" in text:
        return "template with runtime variables"
    if path.suffix == ".json":
        resource = fhirjson.loads(text)
    else:
        resource = fhirxml.parse_xml(text.encode("utf-8"))
    if resource.get("resourceType") == "Bundle":
        return f"{resource.get('type', 'unknown')} Bundle (a request, not data)"
    return resource


def load(
    session: Session,
    paths: t.Iterable[Path],
    *,
    today: date,
    local_bases: t.Sequence[str] = (),
    bsn_key: str | None = None,
    bsn_cipher: identity.BsnCipher | None = None,
    external_documents: str = "fetch",
    fetch: t.Callable[[str], tuple[bytes, str]] | None = None,
    max_document_bytes: int = 15 * 1024 * 1024,
) -> LoadReport:
    """Load fixtures into the store as the source ``dvza:testdata``, through the write path of the hospital's
    own systems (:class:`dvza.source.writer.SourceWriter`); commits once at the end (refused resources
    excluded). Without ``bsn_key`` a BSN is masked but not linked (tests)."""
    report = LoadReport()
    resources: list[tuple[str, dict[str, t.Any]]] = []
    for path in discover(paths):
        try:
            result = read_fixture(path, today)
        except FhirError as exc:
            report.refused.append((str(path), exc.diagnostics))
            continue
        if isinstance(result, str):
            report.skipped.append((str(path), result))
            continue
        resources.append((str(path), result))

    resources.sort(key=lambda item: write_rank(item[1]["resourceType"]))  # stable: keeps the load script's order
    batch = {(r["resourceType"], r.get("id")): r for _, r in resources}
    writer = SourceWriter(session, TESTDATA, SourceSettings(
        bsn_key=bsn_key, cipher=bsn_cipher, local_bases=tuple(local_bases), max_document_bytes=max_document_bytes))
    store = writer.store

    def display_for(type_name: str, logical_id: str) -> str | None:
        if (type_name, logical_id) in batch:
            return display_of(batch[(type_name, logical_id)])
        return store.display_for(type_name, logical_id)

    for path, resource in resources:
        label = f"{resource['resourceType']}/{resource.get('id')}"
        try:
            with writer.savepoint():
                if resource["resourceType"] == "DocumentReference":
                    _import_external_documents(resource, writer, report, external_documents, fetch,
                                               local=_set_documents(batch))
                writer.upsert(resource, display_for=display_for)
            report.loaded.append(label)
        except FhirError as exc:
            details = "; ".join(i.diagnostics for i in exc.issues[:3])
            report.refused.append((label, details or exc.diagnostics))
            # reported to the caller (LoadReport.refused; the CLI prints each): information, not a warning
            logger.debug("refused %s from %s: %s", label, path, details)
    session.commit()
    return report


@dataclass(frozen=True, slots=True)
class SetDocument:
    """A document the loaded set carries itself: its Binary and the titles of what points at it."""

    binary_id: str
    content_type: str
    content: str  # base64, as in Binary.content
    titles: tuple[str, ...]


def _set_documents(batch: t.Mapping[tuple[str, t.Any], dict[str, t.Any]]) -> list[SetDocument]:
    titles: dict[str, list[str]] = {}
    for (type_name, _), resource in batch.items():
        if type_name != "DocumentReference":
            continue
        for content in resource.get("content", []):
            attachment = content.get("attachment") or {}
            url = str(attachment.get("url", ""))
            if url.startswith("Binary/"):
                titles.setdefault(url[len("Binary/"):], []).extend(
                    str(v) for v in (attachment.get("title"), resource.get("description")) if v)
    return [SetDocument(str(r["id"]), str(r.get("contentType", "")), str(r["content"]), tuple(titles.get(r["id"], ())))
            for (type_name, _), r in sorted(batch.items(), key=lambda item: str(item[0][1]))
            if type_name == "Binary" and r.get("content") and r.get("id")]


def _closest(documents: t.Sequence[SetDocument], content_type: str, title: str) -> SetDocument | None:
    """The set's document of this content type whose titles share most words with ``title``."""
    words = set(re.findall(r"\w+", title.lower()))
    candidates = [d for d in documents if d.content_type == content_type]
    if not candidates:
        return None
    return max(candidates, key=lambda d: max((len(words & set(re.findall(r"\w+", x.lower()))) for x in d.titles),
                                             default=0))


def _import_external_documents(
    resource: dict[str, t.Any], writer: SourceWriter, report: LoadReport, mode: str,
    fetch: t.Callable[[str], tuple[bytes, str]] | None, *, local: t.Sequence[SetDocument] = (),
) -> None:
    store = writer.store
    for content in resource.get("content", []):
        attachment = content.get("attachment") or {}
        url = attachment.get("url", "")
        if "://" not in url or parse_reference(url, store.local_bases) is not None:
            continue
        # one copy per patient: a document that two patients' records point at is served to neither
        subject = resource.get("subject")
        owner = str(subject.get("reference") or "") if isinstance(subject, dict) else ""
        binary_id = "doc-" + hashlib.sha256(f"{owner} {url}".encode()).hexdigest()[:20]
        if store.get("Binary", binary_id) is None:
            own = _closest(local, attachment.get("contentType") or "application/pdf",
                           attachment.get("title") or resource.get("description") or "") if mode == "local" else None
            if own is not None:
                data, content_type = base64.b64decode(own.content), own.content_type
                how = f"copied from Binary/{own.binary_id} of the same set"
            else:
                data, content_type, how = _obtain(url, attachment, mode, fetch)
            writer.upsert({
                "resourceType": "Binary", "id": binary_id, "contentType": content_type,
                "content": base64.b64encode(data).decode("ascii"),
            })
            report.imported_documents.append((url, how))
            if how != "fetched":
                attachment.pop("hash", None)
                attachment.pop("size", None)
        attachment["url"] = f"Binary/{binary_id}"


def _obtain(url: str, attachment: dict[str, t.Any], mode: str,
            fetch: t.Callable[[str], tuple[bytes, str]] | None) -> tuple[bytes, str, str]:
    if mode == "fetch":
        try:
            data, content_type = (fetch or _http_fetch)(url)
            return data, attachment.get("contentType") or content_type, "fetched"
        except Exception as exc:  # noqa: BLE001 - any failure falls back to the placeholder
            logger.warning("could not fetch %s (%s); a placeholder document is stored", url, exc)
    title = attachment.get("title") or "Document"
    return placeholder_pdf(title, url), "application/pdf", "placeholder"


def _http_fetch(url: str) -> tuple[bytes, str]:
    import requests

    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.content, response.headers.get("Content-Type", "application/octet-stream").split(";")[0]


def placeholder_pdf(title: str, source_url: str) -> bytes:
    """A small valid PDF saying this document stands in for one that could not be imported."""
    lines = [title, "", "Testdocument (plaatsvervanger).", "Het originele document kon bij het laden",
             "van de testgegevens niet worden opgehaald:", source_url]

    def pdf_text(value: str) -> str:
        value = value.encode("latin-1", "replace").decode("latin-1")
        return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = "BT /F1 12 Tf 50 790 Td 16 TL " + " ".join(f"({pdf_text(line)}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# ------------------------------------------------------------------------------- qualification
@dataclass(slots=True)
class TokenImport:
    imported: list[tuple[str, str]] = field(default_factory=list)  # (familyName, patient id)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def import_tokens(
    session: Session,
    entries: t.Iterable[t.Mapping[str, t.Any]],
    *,
    gegevensdiensten: t.Iterable[str],
    bsn_key: str,
    scripts: t.Collection[str] = (),
    bsn_cipher: identity.BsnCipher | None = None,
) -> TokenImport:
    """Import QualificationTokens.json entries as qualification tokens bound to their patients,
    and link each listed BSN to its patient (by keyed hash). Commits."""
    from sqlalchemy import select

    from fhir_api.models import ResourceRow
    from oauth.tokens import import_qualification_token

    diensten = sorted(set(gegevensdiensten))
    result = TokenImport()
    loaded = set(session.scalars(select(ResourceRow.logical_id).where(ResourceRow.resource_type == "Patient")))
    people: dict[str, set[str]] = {}
    for entry in entries:
        token = str(entry.get("accessToken", "")).strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        patient_id = str(entry.get("resourceId", ""))
        script = str(entry.get("qualificationScript", ""))
        if scripts and script not in scripts:
            continue
        if not token or not patient_id:
            result.skipped.append((str(entry.get("familyName", "?")), "no token or resourceId"))
            continue
        import_qualification_token(session, token, patient_id=patient_id, gegevensdiensten=diensten)
        bsn = str(entry.get("bsn", "") or "")
        if bsn and identity.is_valid_bsn(bsn) and patient_id in loaded:
            people.setdefault(bsn, set()).add(patient_id)
        result.imported.append((str(entry.get("familyName", "")), patient_id))
    # A person is one patient here: link a BSN only to a loaded Patient, and only if it is unambiguous; through
    # the identity path of the hospital's own systems (a BSN that is another record's person is refused).
    writer = SourceWriter(session, TESTDATA, SourceSettings(bsn_key=bsn_key, cipher=bsn_cipher))
    for bsn, patients in people.items():
        if len(patients) == 1:
            try:
                with writer.savepoint():
                    writer.register_bsn(next(iter(patients)), bsn)
            except FhirError as exc:
                result.skipped.append((next(iter(patients)), f"BSN not linked: {exc.diagnostics}"))
        else:
            result.skipped.append((", ".join(sorted(patients)), "one BSN for several loaded patients: not linked"))
    session.commit()
    return result


# ----------------------------------------------------------------------------- questionnaire tasks
def create_tasks(session: Session, files: t.Iterable[Path], *, today: date, close_open: bool = True,
                 local_bases: t.Sequence[str] = ()) -> list[str]:
    """Create Tasks from templates whose id is ``${task-id}`` (the Nictiz ``*-REQUESTED`` fixtures),
    each under a fresh id. With ``close_open``, the patient's other open questionnaire Tasks
    (``requested``) are cancelled first, so a test scenario sees exactly the Task it is about.
    Commits; returns ``Task/<id>`` of each new Task."""
    import uuid

    from fhir_api import compartment

    writer = SourceWriter(session, TESTDATA, SourceSettings(bsn_key=None, local_bases=tuple(local_bases)))
    store = writer.store
    created = []
    for path in files:
        task_id = f"vl-task-{uuid.uuid4().hex[:16]}"
        text = materialise(Path(path).read_text(encoding="utf-8-sig"), today).replace("${task-id}", task_id)
        if "${" in text:
            raise ValueError(f"{path}: template variables other than ${{task-id}} and dates remain")
        resource = fhirjson.loads(text) if str(path).endswith(".json") else fhirxml.parse_xml(text.encode())
        if resource.get("resourceType") != "Task":
            raise ValueError(f"{path} is not a Task")
        patient = compartment.owner(resource, store.local_bases)
        if close_open and patient:
            _cancel_open_tasks(session, writer, patient)
        writer.upsert(resource)
        created.append(f"Task/{task_id}")
    session.commit()
    return created


def _cancel_open_tasks(session: Session, writer: SourceWriter, patient_id: str) -> None:
    from sqlalchemy import select

    from fhir_api.models import ResourceRow

    rows = session.scalars(select(ResourceRow).where(ResourceRow.resource_type == "Task",
                                                     ResourceRow.patient_id == patient_id))
    for row in list(rows):
        task = fhirjson.loads(row.json_text)
        if task.get("status") == "requested":
            task["status"] = "cancelled"
            task.pop("text", None)
            writer.upsert(task)
