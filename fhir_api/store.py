"""Resource storage: the write path of the resource server.

:class:`ResourceStore` validates, applies the content rules, computes the Patient compartment, stamps
``meta``, renders JSON and XML once, and replaces the index rows — all in the caller's transaction.
Reading, scoped to one grant, is :mod:`fhir_api.view`.
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from . import compartment
from . import content_rules
from . import fhirjson
from . import fhirxml
from .errors import InvalidResource
from .errors import Issue
from .models import INDEX_TABLES
from .models import DateIndex
from .models import LastnIndex
from .models import ReferenceIndex
from .models import ResourceRow
from .models import StringIndex
from .models import TokenIndex
from .search import index as search_index
from .search.values import parse_reference
from .validation import validate_structure

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


def valid_id(logical_id: str) -> bool:
    """datatypes.html#id: ``[A-Za-z0-9\\-\\.]{1,64}``."""
    return 0 < len(logical_id) <= 64 and all(ch in _ID_CHARS for ch in logical_id)


def now_instant() -> str:
    """An FHIR instant for ``meta.lastUpdated`` (UTC, millisecond precision)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Written:
    row: ResourceRow
    created: bool
    #: BSNs removed from the resource (for the identity link of a Patient)
    bsns: tuple[str, ...]


class ResourceStore:
    """Write access to the resource tables within one SQLAlchemy session."""

    def __init__(self, session: Session, *, local_bases: t.Sequence[str] = ()):
        self.session = session
        self.local_bases = tuple(local_bases)

    # ------------------------------------------------------------------ lookups (unscoped, internal)
    def get(self, resource_type: str, logical_id: str) -> ResourceRow | None:
        return self.session.scalar(
            select(ResourceRow).where(
                ResourceRow.resource_type == resource_type, ResourceRow.logical_id == logical_id
            )
        )

    def load(self, resource_type: str, logical_id: str) -> dict[str, t.Any] | None:
        row = self.get(resource_type, logical_id)
        return fhirjson.loads(row.json_text) if row else None

    def display_for(self, resource_type: str, logical_id: str) -> str | None:
        resource = self.load(resource_type, logical_id)
        return display_of(resource) if resource else None

    # ---------------------------------------------------------------------------------- writing
    def prepare(self, resource: dict[str, t.Any], *, display_for: t.Callable[[str, str], str | None] | None = None
                ) -> tuple[dict[str, t.Any], tuple[str, ...]]:
        """Validate and fix a resource for storage; returns it with the BSNs that were masked.

        Raises :class:`InvalidResource` with every violated rule when it cannot be stored.
        """
        validate_structure(resource)
        bsns = tuple(content_rules.mask_bsn(resource))
        content_rules.fill_reference_displays(resource, display_for or self.display_for, self.local_bases)
        issues = content_rules.check(resource)
        issues += document_issues(resource, lambda t_, i: self.get(t_, i) is not None, self.local_bases)
        if issues:
            raise InvalidResource(
                f"{resource['resourceType']}/{resource.get('id', '')} breaks the MedMij content rules",
                issues=issues,
            )
        return resource, bsns

    def put(self, resource: dict[str, t.Any], *, prepared: bool = False,
            display_for: t.Callable[[str, str], str | None] | None = None, hidden_by: str | None = None) -> Written:
        """Create or update ``resource`` under its own id (FHIR update, http.html#update)."""
        logical_id = resource.get("id")
        if not isinstance(logical_id, str) or not valid_id(logical_id):
            raise InvalidResource(f"Resource id {logical_id!r} is not a valid FHIR id")
        bsns: tuple[str, ...] = ()
        if not prepared:
            resource, bsns = self.prepare(resource, display_for=display_for)
        patient_id = compartment.owner(resource, self.local_bases)
        existing = self.get(resource["resourceType"], logical_id)
        if existing is not None and existing.hidden_by is not None:
            raise InvalidResource(f"{resource['resourceType']}/{logical_id} is awaiting review and cannot change")
        if existing is not None and existing.patient_id != patient_id:
            raise InvalidResource(
                f"{resource['resourceType']}/{logical_id} belongs to another patient and cannot move"
            )
        version = existing.version_id + 1 if existing else 1
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = now_instant()
        resource = dict(resource)
        resource["meta"] = meta
        resource = fhirjson.canonical_order(resource)
        json_text = fhirjson.dumps(resource)
        xml_text = fhirxml.render_xml(resource)
        if existing is None:
            row = ResourceRow(
                resource_type=resource["resourceType"], logical_id=logical_id, patient_id=patient_id,
                version_id=version, last_updated=meta["lastUpdated"], json_text=json_text, xml_text=xml_text,
                hidden_by=hidden_by,
            )
            self.session.add(row)
            self.session.flush()
        else:
            row = existing
            row.version_id, row.last_updated = version, meta["lastUpdated"]
            row.json_text, row.xml_text = json_text, xml_text
            self._drop_index(row.pk)
        self._write_index(row.pk, resource, patient_id, meta["lastUpdated"])
        return Written(row, existing is None, bsns)

    def claimed_by_other_patients(self, row: ResourceRow, patient_id: str) -> bool:
        """Does a resource of a patient other than ``patient_id`` refer to this (shared) row?"""
        source = aliased(ResourceRow)
        return self.session.scalar(
            select(ReferenceIndex.id).join(source, source.pk == ReferenceIndex.resource_pk).where(
                ReferenceIndex.target_type == row.resource_type, ReferenceIndex.target_id == row.logical_id,
                ReferenceIndex.param == search_index.ALL_REFERENCES, source.patient_id.is_not(None),
                source.patient_id != patient_id).limit(1)
        ) is not None

    def same_content(self, row: ResourceRow, resource: dict[str, t.Any]) -> bool:
        """Would storing ``resource`` leave ``row`` as it is (``meta.versionId``/``lastUpdated`` aside)?"""
        try:
            prepared, _ = self.prepare(dict(resource))
        except InvalidResource:
            return False
        stored = fhirjson.loads(row.json_text)
        for candidate in (prepared, stored):
            meta = dict(candidate.get("meta") or {})
            meta.pop("versionId", None)
            meta.pop("lastUpdated", None)
            candidate["meta"] = meta
        return fhirjson.dumps(fhirjson.canonical_order(prepared)) == fhirjson.dumps(fhirjson.canonical_order(stored))

    def create(self, resource: dict[str, t.Any], **kwargs: t.Any) -> Written:
        """FHIR create: the server assigns the id (a UUID)."""
        resource = dict(resource)
        resource["id"] = str(uuid.uuid4())
        return self.put(resource, **kwargs)

    def reveal(self, hidden_by: str) -> int:
        """Make the resources of an accepted submission visible; returns how many."""
        rows = list(self.session.scalars(select(ResourceRow).where(ResourceRow.hidden_by == hidden_by)))
        for row in rows:
            row.hidden_by = None
        return len(rows)

    def delete_patient_data(self, patient_id: str) -> int:
        """Remove every resource in a patient's compartment (test-data purge); returns the count."""
        pks = list(self.session.scalars(select(ResourceRow.pk).where(ResourceRow.patient_id == patient_id)))
        for table in INDEX_TABLES:
            self.session.execute(delete(table).where(table.patient_id == patient_id))
        if pks:
            self.session.execute(delete(ResourceRow).where(ResourceRow.pk.in_(pks)))
        return len(pks)

    def _drop_index(self, pk: int) -> None:
        for table in INDEX_TABLES:
            self.session.execute(delete(table).where(table.resource_pk == pk))

    def _write_index(self, pk: int, resource: dict[str, t.Any], patient_id: str | None, last_updated: str) -> None:
        """The resource's search values, each row carrying its patient and type (models module docstring)."""
        extracted = search_index.extract(resource, self.local_bases)
        rtype = resource["resourceType"]
        common = {"resource_pk": pk, "patient_id": patient_id}
        typed = {**common, "resource_type": rtype}
        batches: list[tuple[t.Any, list[dict[str, t.Any]]]] = [
            (TokenIndex, [{**typed, "param": p, "system": s, "code": c} for p, s, c in extracted.tokens]),
            (DateIndex, [{**typed, "param": p, "start": s, "end": e} for p, s, e in extracted.dates]),
            (ReferenceIndex, [{**typed, "param": p, "target_type": ty, "target_id": i}
                              for p, ty, i in extracted.references]),
            (StringIndex, [{**typed, "param": p, "value": v} for p, v in extracted.strings]),
            (LastnIndex, [{**common, "system": s, "code": c, "position": n, "effective": extracted.effective,
                           "last_updated": last_updated} for s, c, n in extracted.lastn]),
        ]
        for model, rows in batches:
            if rows:
                self.session.execute(insert(model.__table__), rows)


def display_of(resource: dict[str, t.Any]) -> str | None:
    """A human-readable name for a resource, used to fill missing Reference.display."""
    names = resource.get("name")
    if isinstance(names, list) and names:
        name = names[0]
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        text = " ".join(p for p in parts if isinstance(p, str) and p)
        if text:
            return text
    if isinstance(names, str) and names:
        return names
    for key in ("title", "description"):
        if isinstance(resource.get(key), str) and resource[key]:
            return str(resource[key])
    code = resource.get("code")
    if isinstance(code, dict):
        if code.get("text"):
            return str(code["text"])
        for coding in code.get("coding", []):
            if coding.get("display"):
                return str(coding["display"])
    return None


def document_issues(resource: dict[str, t.Any], exists_: t.Callable[[str, str], bool],
                    local_bases: t.Sequence[str]) -> list[Issue]:
    """A DocumentReference is only served when this server holds its document (IHE MHD: the
    attachment URL is where the PGO retrieves it, with its token, from this resource server).

    Every attachment must point at a Binary held here; external URLs and unknown Binaries are
    refused (the loader imports external documents first).
    """
    if resource.get("resourceType") != "DocumentReference":
        return []
    issues = []
    for index, content in enumerate(resource.get("content", [])):
        attachment = content.get("attachment") or {}
        url = attachment.get("url")
        if not url:
            if not attachment.get("data"):
                issues.append(Issue("invalid", f"DocumentReference.content[{index}] has no document"))
            continue
        target = parse_reference(url, local_bases)
        if target is None:
            issues.append(Issue("invalid", f"DocumentReference.content[{index}].attachment.url {url!r} "
                                           "is not a document on this server"))
        elif target.type != "Binary" or not exists_(target.type, target.id):
            issues.append(Issue("invalid", f"DocumentReference.content[{index}].attachment.url {url!r} "
                                           "points at a document this server does not hold"))
    return issues
