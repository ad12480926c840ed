"""Resource storage: the write path of the resource server.

:class:`ResourceStore` validates, applies the content rules, computes the Patient compartment, stamps
``meta``, renders JSON and XML once, and replaces the index rows — all in the caller's transaction.
Reading, scoped to one grant, is :mod:`fhir_api.view`.
"""

from __future__ import annotations

import hashlib
import typing as t
import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

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


@dataclass(slots=True)
class StoredRow:
    """One stored resource (a row of ``fhir_resource``)."""

    pk: int
    resource_type: str
    logical_id: str
    patient_id: str | None
    version_id: int
    last_updated: str
    json_text: str
    xml_text: str
    hidden_by: str | None


@dataclass(slots=True)
class Staged:
    """A resource ready to be written (:meth:`ResourceStore.stage`)."""

    row: StoredRow
    created: bool
    bsns: tuple[str, ...]
    index: search_index.ResourceIndex
    #: the version an update was staged from (None for a new resource)
    previous_version: int | None = None


@dataclass(frozen=True, slots=True)
class Written:
    row: StoredRow
    created: bool
    #: BSNs removed from the resource (for the identity link of a Patient)
    bsns: tuple[str, ...]


_RESOURCES = ResourceRow.__table__
_COLUMNS = [_RESOURCES.c[name] for name in StoredRow.__slots__]  # type: ignore[attr-defined]
_GET = select(*_COLUMNS).where(_RESOURCES.c.resource_type == bindparam("resource_type"),
                               _RESOURCES.c.logical_id == bindparam("logical_id"))
_INSERT = insert(_RESOURCES).returning(_RESOURCES.c.pk)
_UPDATE = (update(_RESOURCES).where(_RESOURCES.c.pk == bindparam("row_pk"),
                                    _RESOURCES.c.version_id == bindparam("expected_version"))
           .values(version_id=bindparam("version_id"), patient_id=bindparam("patient_id"),
                   last_updated=bindparam("last_updated"), json_text=bindparam("json_text"),
                   xml_text=bindparam("xml_text")))


class ResourceStore:
    """Write access to the resource tables within one SQLAlchemy session (Core statements on the
    session's connection: no ORM unit of work on the write path, issue 12)."""

    def __init__(self, session: Session, *, local_bases: t.Sequence[str] = ()):
        self.session = session
        self.local_bases = tuple(local_bases)

    def _connection(self) -> t.Any:
        return self.session.connection()

    # ------------------------------------------------------------------ lookups (unscoped, internal)
    def get(self, resource_type: str, logical_id: str) -> StoredRow | None:
        found = self._connection().execute(_GET, {"resource_type": resource_type, "logical_id": logical_id}).first()
        return StoredRow(*found) if found is not None else None

    def load(self, resource_type: str, logical_id: str) -> dict[str, t.Any] | None:
        row = self.get(resource_type, logical_id)
        return fhirjson.loads(row.json_text) if row else None

    def display_for(self, resource_type: str, logical_id: str) -> str | None:
        resource = self.load(resource_type, logical_id)
        return display_of(resource) if resource else None

    def set_hidden(self, resource_type: str, logical_id: str, hidden_by: str | None) -> bool:
        """Hide a stored resource from every read (``hidden_by`` set) or show it again (None)."""
        result = self._connection().execute(
            update(_RESOURCES).where(_RESOURCES.c.resource_type == resource_type,
                                     _RESOURCES.c.logical_id == logical_id).values(hidden_by=hidden_by))
        return bool(result.rowcount)

    # ---------------------------------------------------------------------------------- writing
    def prepare(self, resource: dict[str, t.Any], *, display_for: t.Callable[[str, str], str | None] | None = None,
                validated: bool = False, will_exist: t.Collection[str] = ()
                ) -> tuple[dict[str, t.Any], tuple[str, ...]]:
        """Validate and fix a resource for storage; returns it with the BSNs that were masked.
        ``validated``: the caller has checked this very dict's structure already.

        Raises :class:`InvalidResource` with every violated rule when it cannot be stored.
        """
        if not validated:
            validate_structure(resource)
        bsns = tuple(content_rules.mask_bsn(resource))
        content_rules.fill_reference_displays(resource, display_for or self.display_for, self.local_bases)
        issues = content_rules.check(resource)
        issues += document_issues(
            resource, lambda t_, i: f"{t_}/{i}" in will_exist or self.get(t_, i) is not None, self.local_bases)
        if issues:
            raise InvalidResource(
                f"{resource['resourceType']}/{resource.get('id', '')} breaks the MedMij content rules",
                issues=issues,
            )
        return resource, bsns

    def put(self, resource: dict[str, t.Any], *, prepared: bool = False, validated: bool = False,
            new: bool = False, display_for: t.Callable[[str, str], str | None] | None = None,
            hidden_by: str | None = None) -> Written:
        """Create or update ``resource`` under its own id (FHIR update, http.html#update). ``new``: the
        id was just made by the server (no existing row to look for)."""
        return self.write(self.stage(resource, prepared=prepared, validated=validated, new=new,
                                     display_for=display_for, hidden_by=hidden_by))

    def stage(self, resource: dict[str, t.Any], *, prepared: bool = False, validated: bool = False,
              new: bool = False, display_for: t.Callable[[str, str], str | None] | None = None,
              hidden_by: str | None = None, will_exist: t.Collection[str] = (),
              based_on: StoredRow | None = None) -> Staged:
        """Everything :meth:`put` does before it writes: the rules, the stored forms and the index
        values — so a unit of several resources can do all its work first and then hold the
        database's write lock only for the writes (SQLite has one writer). ``will_exist``: ``Type/id``
        of resources written in the same unit (a document's Binary). ``based_on``: the stored version this
        update was made from (read by the caller); the write then succeeds only on that version
        (http.html#concurrency), instead of on whatever version is there when staging reads it."""
        logical_id = resource.get("id")
        if not isinstance(logical_id, str) or not valid_id(logical_id):
            raise InvalidResource(f"Resource id {logical_id!r} is not a valid FHIR id")
        bsns: tuple[str, ...] = ()
        if not prepared:
            resource, bsns = self.prepare(resource, display_for=display_for, validated=validated,
                                          will_exist=will_exist)
        patient_id = compartment.owner(resource, self.local_bases)
        existing = based_on
        if existing is None and not new:
            existing = self.get(resource["resourceType"], logical_id)
        if existing is not None and existing.hidden_by is not None:
            raise InvalidResource(f"{resource['resourceType']}/{logical_id} is awaiting review and cannot change")
        if existing is not None and existing.patient_id != patient_id:
            raise InvalidResource(
                f"{resource['resourceType']}/{logical_id} belongs to another patient and cannot move"
            )
        return self.stage_version(existing, resource, patient_id, hidden_by=hidden_by, bsns=bsns)

    def stage_version(self, existing: t.Any, resource: dict[str, t.Any], patient_id: str | None, *,
                      hidden_by: str | None = None, bsns: tuple[str, ...] = ()) -> Staged:
        """``resource`` (prepared) as the next version of ``existing`` (or as version 1): ``meta``, JSON, XML,
        index — for a caller that has read and checked ``existing`` itself (:meth:`stage` does both)."""
        logical_id = resource["id"]
        version = existing.version_id + 1 if existing else 1
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = now_instant()
        resource = dict(resource)
        resource["meta"] = meta
        resource = fhirjson.canonical_order(resource)
        row = StoredRow(existing.pk if existing else 0, resource["resourceType"], logical_id, patient_id, version,
                        meta["lastUpdated"], fhirjson.dumps(resource), fhirxml.render_xml(resource, strict=True),
                        existing.hidden_by if existing else hidden_by)
        return Staged(row, existing is None, bsns, search_index.extract(resource, self.local_bases),
                      existing.version_id if existing else None)

    def write(self, staged: Staged) -> Written:
        """Store a staged resource: its row (insert or update) and its index rows.

        An update only succeeds on the version it was staged from (http.html#concurrency): when another
        request stored a newer one meanwhile, :class:`~sqlalchemy.orm.exc.StaleDataError` and nothing
        is written — never a lost update."""
        row, connection = staged.row, self._connection()
        if staged.created:
            values = {name: getattr(row, name) for name in StoredRow.__slots__ if name != "pk"}  # type: ignore[attr-defined]
            row.pk = connection.execute(_INSERT, values).scalar_one()
        else:
            result = connection.execute(_UPDATE, {
                "row_pk": row.pk, "expected_version": staged.previous_version, "version_id": row.version_id,
                "patient_id": row.patient_id, "last_updated": row.last_updated, "json_text": row.json_text,
                "xml_text": row.xml_text})
            if result.rowcount != 1:
                raise StaleDataError(f"{row.resource_type}/{row.logical_id} changed since version "
                                     f"{staged.previous_version} was read")
            self._drop_index(row.pk)
        self._write_index(row.pk, staged.index, row.resource_type, row.patient_id, row.last_updated)
        return Written(row, staged.created, staged.bsns)

    def move_to_patient(self, row: t.Any, resource: dict[str, t.Any], patient_id: str) -> Written:
        """Store ``resource`` (already prepared) as the next version of ``row`` in another patient's compartment.

        Only for merging two records of one person (``dvza.source``: ``Patient/$merge``, after the hospital's
        own system said they are one person); :meth:`put` never moves a resource between compartments. A row
        awaiting review keeps its ``hidden_by``.
        """
        if resource.get("resourceType") != row.resource_type or resource.get("id") != row.logical_id:
            raise InvalidResource("move_to_patient: the resource is not this row")
        if compartment.owner(resource, self.local_bases) != patient_id:
            raise InvalidResource(f"{row.resource_type}/{row.logical_id} does not refer to Patient/{patient_id}")
        return self.write(self.stage_version(row, resource, patient_id, hidden_by=row.hidden_by))

    def unchanged(self, row: t.Any, prepared: dict[str, t.Any]) -> bool:
        """Is ``prepared`` (a resource after :meth:`prepare`) what ``row`` holds, ``meta.versionId`` and
        ``meta.lastUpdated`` aside? An idempotent upsert stores nothing new then."""
        stored = fhirjson.loads(row.json_text)
        return _without_version(stored) == _without_version(prepared)

    def delete(self, row: t.Any) -> None:
        """Remove one resource and its index rows (FHIR delete, http.html#delete; no history is kept)."""
        self._drop_index(row.pk)
        self._connection().execute(delete(_RESOURCES).where(_RESOURCES.c.pk == row.pk))

    def claimed_by_other_patients(self, row: StoredRow, patient_id: str) -> bool:
        """Does a resource of a patient other than ``patient_id`` refer to this (shared) row?"""
        return self.session.scalar(  # an index row carries its resource's patient (fhir_api.models)
            select(ReferenceIndex.id).where(
                ReferenceIndex.target_type == row.resource_type, ReferenceIndex.target_id == row.logical_id,
                ReferenceIndex.param == search_index.ALL_REFERENCES, ReferenceIndex.patient_id.is_not(None),
                ReferenceIndex.patient_id != patient_id).limit(1)
        ) is not None

    def same_content(self, row: StoredRow, resource: dict[str, t.Any]) -> bool:
        """Would storing ``resource`` leave ``row`` as it is (``meta.versionId``/``lastUpdated`` aside)?"""
        try:
            prepared, _ = self.prepare(dict(resource))
        except InvalidResource:
            return False
        return self.unchanged(row, prepared)

    def create(self, resource: dict[str, t.Any], **kwargs: t.Any) -> Written:
        """FHIR create: the server assigns the id (a UUID)."""
        resource = dict(resource)
        resource["id"] = str(uuid.uuid4())
        return self.put(resource, new=True, **kwargs)

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

    def _write_index(self, pk: int, extracted: search_index.ResourceIndex, rtype: str, patient_id: str | None,
                     last_updated: str) -> None:
        """The resource's search values, each row carrying its patient and type (models module docstring)."""
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
        connection = self._connection()
        for model, rows in batches:
            if rows:
                connection.execute(insert(model.__table__), rows)


def content_digest(json_text: str) -> str:
    """SHA-256 of a stored resource's content, ``meta.versionId``/``meta.lastUpdated`` aside: the same for two
    versions that hold the same thing (the return queue's check that a resource still holds what a submission
    wrote)."""
    return hashlib.sha256(_without_version(fhirjson.loads(json_text)).encode()).hexdigest()


def _without_version(resource: dict[str, t.Any]) -> str:
    """Canonical JSON of ``resource`` without ``meta.versionId``/``meta.lastUpdated`` (content comparison)."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    candidate = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        candidate["meta"] = meta
    return fhirjson.dumps(fhirjson.canonical_order(candidate))


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


def unwritable_xml(session: Session, *, batch: int = 500) -> t.Iterator[tuple[str, str, str]]:
    """(type, id, why) of every stored resource whose XML rendering is not well-formed XML — possible for what
    was stored before control characters and unchecked narratives were refused (fhir_api.fhirxml). Reads the
    table in primary-key order, ``batch`` rows at a time; says where, never what the data holds."""
    last = 0
    while True:
        rows = session.execute(select(_RESOURCES.c.pk, _RESOURCES.c.resource_type, _RESOURCES.c.logical_id,
                                      _RESOURCES.c.xml_text).where(_RESOURCES.c.pk > last)
                               .order_by(_RESOURCES.c.pk).limit(batch)).all()
        if not rows:
            return
        for pk, resource_type, logical_id, xml_text in rows:
            last = pk
            if not fhirxml.well_formed(xml_text):
                yield resource_type, logical_id, "its XML rendering is not well-formed XML"
