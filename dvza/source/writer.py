"""The one road by which patient data enters the record: :class:`SourceWriter`.

Every writer of Module 1 data goes through it — the source API for the hospital's systems
(:mod:`dvza.source.api`), the bulk import (:mod:`dvza.source.bulk`, ``dvza source import``), the Nictiz test-data
loader (``dvza testdata load``) and the return queue's *accept* (:mod:`dvza.returnqueue.queue`) — so all data
gets the same validation (FHIR STU3 structure), MedMij content rules (fhir-content.md §1.2), compartment
(STU3 compartmentdefinition-patient) and search index, through :class:`fhir_api.store.ResourceStore`.

What the writer adds to the store:

* **Idempotent upserts** (http.html#update): writing what is stored already changes nothing (no new
  ``versionId``), so a source may resend, and a restarted import repeats nothing.
* **One system of record per resource** (:class:`~dvza.source.models.ResourceOwner`): the first source that
  writes a resource keeps it; another source's *different* version or delete is refused with 409 ``conflict``
  (the same content is accepted as unchanged). Within one source, concurrent writers can use optimistic
  locking: ``If-Match: W/"<versionId>"`` (http.html#concurrency; RFC 9110 §13.1.1) → 412 when it is stale.
* **Patient identity**: the BSN a source sends with a Patient (``identifier`` of system
  ``http://fhir.nl/fhir/NamingSystem/bsn``) is checked (elfproef), kept only as the keyed hash that finds the
  patient at login and, encrypted, for staff (:mod:`dvza.identity`); the served Patient carries it masked
  (content rule #14, MedMij core.rscint.203). A BSN that is already another record's person is refused (409:
  merge or unlink first); a corrected BSN ends every access gained through the old one.
  :meth:`SourceWriter.merge` joins two records of one person, :meth:`SourceWriter.unlink` removes the BSN.
* **Documents**: a Binary must be a PDF (``application/pdf``, ``%PDF-``) of at most ``MAX_ATTACHMENT_BYTES``;
  one without PDF/A identification (ISO 19005 XMP ``pdfaid:part``) is stored with a warning.
* Absolute references to this server become relative, so no served resource names the source API.

Secure semantics the store keeps, and this module never bypasses except in :meth:`SourceWriter.merge`: a
resource never moves from one patient's compartment to another's; data a PGO sent that awaits review
(``hidden_by``) cannot be changed or deleted by a source.

The caller owns the transaction (commit or roll back); every change is collected in :attr:`SourceWriter.changes`
for the audit records (:func:`audit_changes`).
"""

from __future__ import annotations

import base64
import binascii
import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fhir_api import compartment
from fhir_api import fhirjson
from fhir_api.access import DEFAULT_GEGEVENSDIENSTEN
from fhir_api.content_rules import BSN_SYSTEM
from fhir_api.errors import BusinessRuleViolation
from fhir_api.errors import Conflict
from fhir_api.errors import FhirError
from fhir_api.errors import InvalidRequest
from fhir_api.errors import InvalidResource
from fhir_api.errors import Issue
from fhir_api.errors import NotFound
from fhir_api.errors import PayloadTooLarge
from fhir_api.errors import PreconditionFailed
from fhir_api.models import ReferenceIndex
from fhir_api.models import ResourceRow
from fhir_api.references import rewrite_references
from fhir_api.search import index as search_index
from fhir_api.search.values import parse_reference
from fhir_api.store import ResourceStore
from fhir_api.store import display_of
from fhir_api.store import valid_id
from fhir_api.walk import iter_typed
from oauth.revocation import revoke_patient

from .. import identity
from ..db import savepoint
from ..models import IdentityLink
from ..models import PatientBsn
from .models import ResourceOwner

if t.TYPE_CHECKING:
    from ..audit import AuditLog

#: resource types that are never data of the record (requests, answers)
NOT_DATA = frozenset({"Bundle", "OperationOutcome", "Parameters"})
#: the order in which one request's resources are written: documents after the Binaries they point at,
#: shared data and Patients before what refers to them (so references get their display, rule #12)
WRITE_ORDER = ("Binary", "Organization", "Location", "Practitioner", "PractitionerRole", "Patient",
               "RelatedPerson", "Medication", "Device", "Questionnaire")
LATE_TYPES = ("DocumentReference", "DocumentManifest")
#: owner names of the writers inside the DVZA (configured sources cannot contain ``:``)
TESTDATA = "dvza:testdata"
RETURN_QUEUE = "dvza:return-queue"
PDFA_MARKER = b"pdfaid:part"


def write_rank(type_name: str) -> int:
    """Sort key for writing several resources in one go (see :data:`WRITE_ORDER`)."""
    if type_name in WRITE_ORDER:
        return WRITE_ORDER.index(type_name)
    return len(WRITE_ORDER) + (1 if type_name in LATE_TYPES else 0)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """What the write path needs from the configuration."""

    #: the key of the BSN lookup hash; None only in tests that load data without identities (BSNs are then
    #: masked, never linked)
    bsn_key: str | None
    cipher: identity.BsnCipher | None = None
    local_bases: tuple[str, ...] = ()
    max_document_bytes: int = 15 * 1024 * 1024
    gegevensdiensten: t.Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_GEGEVENSDIENSTEN))
    #: called in the merge's transaction as ``hook(session, merged_patient_id, surviving_patient_id)``
    #: (the return queue moves its items with the data)
    on_merge: tuple[t.Callable[[Session, str, str], None], ...] = ()

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any], **extra: t.Any) -> SourceSettings:
        base = config.get("PUBLIC_BASE_URL")
        values: dict[str, t.Any] = {
            "bsn_key": config["BSN_HMAC_KEY"], "cipher": identity.cipher_from_config(config),
            "local_bases": (base.rstrip("/"),) if base else (),
            "max_document_bytes": config["MAX_ATTACHMENT_BYTES"], "gegevensdiensten": config["GEGEVENSDIENSTEN"],
        }
        values.update(extra)
        return cls(**values)


@dataclass(slots=True)
class Change:
    """One resource a request created, updated, left unchanged or deleted."""

    reference: str
    patient_id: str | None
    action: str  # created | updated | unchanged | deleted | absent (a delete of what was not there)
    version: int | None = None
    row: ResourceRow | None = None
    warnings: list[Issue] = field(default_factory=list)

    @property
    def status(self) -> str:
        return {"created": "201 Created", "deleted": "204 No Content", "absent": "204 No Content"}.get(
            self.action, "200 OK")


@dataclass(frozen=True, slots=True)
class MergeResult:
    merged: str
    into: str
    moved: int
    links_moved: int
    revoked: str


class SourceWriter:
    """Writes of one source within one SQLAlchemy session (see the module docstring)."""

    def __init__(self, session: Session, source: str, settings: SourceSettings):
        self.session = session
        self.source = source
        self.settings = settings
        self.store = ResourceStore(session, local_bases=settings.local_bases)
        self.changes: list[Change] = []

    def savepoint(self) -> t.Any:
        """A savepoint for one unit (an entry, a line): its failure undoes only it (:func:`dvza.db.savepoint`)."""
        return savepoint(self.session)

    # ------------------------------------------------------------------------------------ upsert
    def upsert(self, resource: t.Any, *, if_match: str | None = None,
               display_for: t.Callable[[str, str], str | None] | None = None,
               streamed_document_warnings: list[Issue] | None = None) -> Change:
        """Create or update ``resource`` under its own id; raises a :class:`FhirError` and changes nothing
        when it cannot be stored. ``streamed_document_warnings``: a Binary whose document the caller has already
        checked (PDF, size, PDF/A) while it was streamed in — ``PUT Binary/<id>`` with the PDF as the body — and
        these were the findings; the document is then not decoded and checked a second time."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidResource("This is not a FHIR resource (no resourceType)")
        rtype = resource["resourceType"]
        if rtype in NOT_DATA:
            raise InvalidResource(f"A {rtype} is not data of a patient record; send its resources")
        rid = resource.get("id")
        if not isinstance(rid, str) or not valid_id(rid):
            raise InvalidResource(f"{rtype}: the id {rid!r} is not a valid FHIR id (every resource a source "
                                  "writes carries its own id)")
        resource = fhirjson.loads(fhirjson.dumps(resource))  # never change the caller's dict
        self._relative_references(resource)
        if rtype != "Binary":
            warnings: list[Issue] = []
        elif streamed_document_warnings is not None:
            warnings = list(streamed_document_warnings)
        else:
            warnings = self._document_checks(resource)
        reference = f"{rtype}/{rid}"
        try:
            claimed = compartment.owner(resource, self.store.local_bases)
        except FhirError:
            claimed = None  # prepare() names the problem with the others
        if claimed is not None and rtype != "Patient" and self.store.get("Patient", claimed) is None:
            raise BusinessRuleViolation(f"{reference} belongs to Patient/{claimed}, which is not known here: "
                                        "register the patient first (in a transaction or an import, put the "
                                        "Patient before its data)")
        prepared, bsns = self.store.prepare(resource, display_for=display_for or self.store.display_for)
        patient_id = compartment.owner(prepared, self.store.local_bases)
        existing = self.store.get(rtype, rid)
        if existing is not None and existing.hidden_by is not None:
            raise Conflict(f"{reference} is data a PGO sent that awaits review in the return queue; a source "
                           "cannot change it")
        if existing is not None and existing.patient_id != patient_id:
            raise Conflict(f"{reference} belongs to {_compartment_name(existing.patient_id)}; a resource never "
                           f"moves to {_compartment_name(patient_id)} (to join two records of one person use "
                           "Patient/$merge)")
        owner = self.session.get(ResourceOwner, (rtype, rid))
        # the stored Patient shows its BSN masked: a different BSN is a change even when the JSON is the same
        bsn = self._bsn_of(bsns) if rtype == "Patient" and bsns else None
        bsn_owner = self._bsn_owner(bsn) if bsn is not None and self.settings.bsn_key else None
        new_bsn = bsn is not None and bool(self.settings.bsn_key) and bsn_owner != rid
        same = existing is not None and self.store.unchanged(existing, prepared)
        if same and not new_bsn:
            self._check_if_match(existing, if_match, reference)
            if owner is None:
                self._own(rtype, rid)
            return self._record(Change(reference, patient_id, "unchanged", existing.version_id, existing, warnings))
        if owner is not None and owner.source != self.source:
            raise Conflict(f"{reference} is kept by source {owner.source!r}; only that source can change it "
                           "(this version differs from the stored one)")
        self._check_if_match(existing, if_match, reference)
        if new_bsn:
            self._refuse_other_owner(bsn_owner, rid)
        if same and existing is not None:
            row, action = existing, "updated"
        else:
            try:
                written = self.store.write(self.store.stage_version(existing, prepared, patient_id))
            except StaleDataError:
                raise PreconditionFailed(f"{reference} was changed by another request meanwhile; read it and try "
                                         "again") from None
            except IntegrityError:
                raise Conflict(f"{reference} was created by another request at the same moment; send it again "
                               "(it is an update now)") from None
            row, action = written.row, "created" if written.created else "updated"
        if new_bsn:
            self._link_bsn(rid, str(bsn))
        if owner is None:
            self._own(rtype, rid)
        return self._record(Change(reference, patient_id, action, row.version_id, row, warnings))

    def _record(self, change: Change) -> Change:
        self.changes.append(change)
        return change

    def _own(self, rtype: str, rid: str) -> None:
        self.session.add(ResourceOwner(resource_type=rtype, logical_id=rid, source=self.source, since=utcnow()))

    @staticmethod
    def _check_if_match(existing: ResourceRow | None, if_match: str | None, reference: str) -> None:
        """``If-Match`` (http.html#concurrency, RFC 9110 §13.1.1): ``*`` or ``W/"<versionId>"`` of the stored
        version; anything else, or any If-Match on a resource that does not exist, fails with 412."""
        if if_match is None:
            return
        if existing is None:
            raise PreconditionFailed(f"If-Match: {reference} does not exist")
        wanted = [v.strip() for v in if_match.split(",")]
        current = {f'W/"{existing.version_id}"', f'"{existing.version_id}"', "*"}
        if not current.intersection(wanted):
            raise PreconditionFailed(f"If-Match: {reference} is at version {existing.version_id}, not "
                                     f"{if_match.strip()[:40]} (it was changed meanwhile; read it and try again)")

    def _relative_references(self, resource: dict[str, t.Any]) -> None:
        """Absolute references to this server (``PUBLIC_BASE_URL``, the source API's base) become ``Type/id``."""
        if self.store.local_bases:
            rewrite_references(resource, local_bases=self.store.local_bases)

    def _document_checks(self, resource: dict[str, t.Any]) -> list[Issue]:
        """A document (Binary) is a PDF of at most the configured size (fhir-content.md §3: PDF/A documents);
        returns the warning for one that does not identify itself as PDF/A."""
        limit = self.settings.max_document_bytes
        content = resource.get("content")
        if not isinstance(content, str) or not content:
            raise InvalidResource("Binary.content is empty: a document needs its content")
        if len(content) > (limit + 2) // 3 * 4 + 4:
            raise PayloadTooLarge(f"Binary/{resource.get('id')}: the document is larger than the limit of "
                                  f"{limit} bytes")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidResource("Binary.content is not valid base64") from None
        return pdf_issues(data, resource.get("contentType"), limit, f"Binary/{resource.get('id')}")

    # ------------------------------------------------------------------------------------ identity
    def _bsn_of(self, bsns: t.Sequence[str]) -> str:
        distinct = {b.strip() for b in bsns}
        if len(distinct) != 1:
            raise InvalidResource(f"A Patient has one BSN; this one names {len(distinct)} different ones")
        bsn = distinct.pop()
        if not identity.is_valid_bsn(bsn):
            raise InvalidResource("Patient.identifier: the BSN is not a valid BSN (nine digits passing the "
                                  "elfproef)")
        return bsn

    def _bsn_owner(self, bsn: str) -> str | None:
        """The Patient this BSN is the person of now, if any (one lookup of the keyed hash)."""
        return identity.patient_for(self.session, str(self.settings.bsn_key), bsn)

    def register_bsn(self, patient_id: str, bsn: str) -> bool:
        """Link a BSN to an existing Patient without changing the resource (the Nictiz test persons, whose
        fixtures carry their BSN masked); the same checks as a Patient with its BSN. True when it is new."""
        row = self._patient_row(patient_id)
        bsn = self._bsn_of((bsn,))
        current = self._bsn_owner(bsn) if self.settings.bsn_key else None
        if current == patient_id:
            return False
        self._check_owner(row, "link a BSN to it")
        if not self.settings.bsn_key:
            raise InvalidResource("BSN_HMAC_KEY is needed to link a BSN")
        self._refuse_other_owner(current, patient_id)
        self._link_bsn(patient_id, bsn)
        self._record(Change(f"Patient/{patient_id}", patient_id, "updated", row.version_id, row))
        return True

    @staticmethod
    def _refuse_other_owner(current: str | None, patient_id: str) -> None:
        """One BSN is one person: a BSN that already leads to another record is refused (merge or unlink first)."""
        if current is not None and current != patient_id:
            raise Conflict(f"This BSN is already the person of Patient/{current}. If Patient/{patient_id} is the "
                           f"same person, merge the two records (Patient/$merge); if the BSN was wrong there, "
                           f"unlink it first (Patient/{current}/$unlink)")

    def _link_bsn(self, patient_id: str, bsn: str) -> None:
        """Link the Patient's BSN (keyed hash; encrypted for staff), once :meth:`_refuse_other_owner` has let it
        through. A different BSN it had before is removed, and with it every access gained through it (a
        corrected BSN means another person)."""
        key = str(self.settings.bsn_key)
        digest = identity.bsn_hmac(key, bsn)
        others = list(self.session.scalars(select(IdentityLink).where(
            IdentityLink.patient_id == patient_id, IdentityLink.bsn_hmac != digest)))
        if others:
            for link in others:
                self.session.delete(link)
            self.session.execute(delete(PatientBsn).where(PatientBsn.patient_id == patient_id))
            self.session.flush()
            revoke_patient(self.session, patient_id, reason="bsn-changed", now=utcnow())
        identity.link(self.session, key, bsn, patient_id, self.settings.cipher)

    def unlink(self, patient_id: str) -> tuple[int, str]:
        """``Patient/<id>/$unlink``: the BSN no longer leads to this record. Removes the identity link and the
        staff copy, the masked BSN identifier from the Patient, and ends every access to the record (whoever
        logged in through that BSN loses it). Returns the number of links removed and what was revoked."""
        patient = self._patient_row(patient_id)
        self._check_owner(patient, "unlink its BSN")
        links = list(self.session.scalars(select(IdentityLink).where(IdentityLink.patient_id == patient_id)))
        for link in links:
            self.session.delete(link)
        self.session.execute(delete(PatientBsn).where(PatientBsn.patient_id == patient_id))
        self.session.flush()
        revoked = revoke_patient(self.session, patient_id, reason="bsn-unlinked", now=utcnow())
        resource = fhirjson.loads(patient.json_text)
        if _drop_bsn_identifiers(resource):
            written = self.store.put(resource)
            self._record(Change(f"Patient/{patient_id}", patient_id, "updated", written.row.version_id, written.row))
        else:
            self._record(Change(f"Patient/{patient_id}", patient_id, "unchanged", patient.version_id, patient))
        return len(links), str(revoked)

    def merge(self, merged_id: str, into_id: str) -> MergeResult:
        """``Patient/$merge``: the hospital's system says Patient ``merged_id`` and Patient ``into_id`` are one
        person, and ``into_id`` is the record that stays (FHIR R5 Patient $merge, whose parameter names the API
        uses; in STU3 terms: ``Patient.link`` ``replaced-by``).

        * Every resource of ``merged_id`` (also data awaiting review) is rewritten to refer to ``into_id`` and
          moves into its compartment; return-queue items follow (:attr:`SourceSettings.on_merge`).
        * The merged Patient stays, inactive, with ``link`` ``replaced-by`` ``into_id``; it has no data left.
        * Identity: a BSN link of the merged record moves to the surviving record only when that has none; two
          different BSNs are two people and the merge is refused (409). Every token, consent, unused code and
          login in progress of the merged record ends, so nobody reaches data through the old record, and
          the only login that reaches the joined data is the person's own.
        """
        if merged_id == into_id:
            raise InvalidRequest("source-patient and target-patient are the same record")
        merged = self._patient_row(merged_id)
        into = self._patient_row(into_id)
        for row in (merged, into):
            self._check_owner(row, "merge it")
        merged_links = list(self.session.scalars(select(IdentityLink).where(IdentityLink.patient_id == merged_id)))
        into_links = list(self.session.scalars(select(IdentityLink).where(IdentityLink.patient_id == into_id)))
        if merged_links and into_links:
            raise Conflict(f"Patient/{merged_id} and Patient/{into_id} each have their own BSN: they are two "
                           "people. Correct or unlink the wrong BSN first")
        revoked = revoke_patient(self.session, merged_id, reason="patient-merged", now=utcnow())
        for link in merged_links:
            link.patient_id = into_id
        staff_copy = self.session.get(PatientBsn, merged_id)
        if staff_copy is not None:
            if merged_links and self.session.get(PatientBsn, into_id) is None:
                self.session.add(PatientBsn(patient_id=into_id, bsn_encrypted=staff_copy.bsn_encrypted))
            self.session.delete(staff_copy)
        self.session.flush()
        into_display = display_of(fhirjson.loads(into.json_text))
        rows = list(self.session.scalars(select(ResourceRow).where(
            ResourceRow.patient_id == merged_id, ResourceRow.resource_type != "Patient").order_by(ResourceRow.pk)))
        for row in rows:
            resource = _rewrite_patient(fhirjson.loads(row.json_text), merged_id, into_id, into_display,
                                        self.store.local_bases)
            written = self.store.move_to_patient(row, resource, into_id)
            self._record(Change(f"{row.resource_type}/{row.logical_id}", into_id, "updated",
                                written.row.version_id, written.row))
        patient = fhirjson.loads(merged.json_text)
        patient["active"] = False
        _drop_bsn_identifiers(patient)
        patient["link"] = [{"other": {"reference": f"Patient/{into_id}", "display": into_display or into_id},
                            "type": "replaced-by"}]
        written = self.store.put(patient)
        self._record(Change(f"Patient/{merged_id}", merged_id, "updated", written.row.version_id, written.row))
        for hook in self.settings.on_merge:
            hook(self.session, merged_id, into_id)
        return MergeResult(merged_id, into_id, len(rows), len(merged_links), str(revoked))

    # ------------------------------------------------------------------------------------ delete
    def delete(self, rtype: str, rid: str, *, if_match: str | None = None) -> Change:
        """FHIR delete (http.html#delete). Deleting what does not exist succeeds (idempotent). Deleting a
        Patient removes the whole record (:meth:`delete_patient`)."""
        if not valid_id(rid):
            raise InvalidRequest(f"{rid!r} is not a valid resource id")
        reference = f"{rtype}/{rid}"
        row = self.store.get(rtype, rid)
        if row is None:
            self._check_if_match(None, if_match, reference)
            return self._record(Change(reference, None, "absent"))
        if row.hidden_by is not None:
            raise Conflict(f"{reference} is data a PGO sent that awaits review in the return queue; a source "
                           "cannot delete it")
        self._check_owner(row, "delete it")
        self._check_if_match(row, if_match, reference)
        if rtype == "Patient":
            return self.delete_patient(rid)
        documents = None if rtype != "Binary" else self.session.scalar(
            select(ResourceRow.logical_id).join(ReferenceIndex, ReferenceIndex.resource_pk == ResourceRow.pk).where(
                ReferenceIndex.param == search_index.ALL_REFERENCES, ReferenceIndex.target_type == rtype,
                ReferenceIndex.target_id == rid, ResourceRow.resource_type.in_(LATE_TYPES)).limit(1))
        if documents is not None:
            raise Conflict(f"{reference} is the document of DocumentReference/{documents}; delete or change that "
                           "first")
        patient_id = row.patient_id
        self.store.delete(row)
        self.session.execute(delete(ResourceOwner).where(ResourceOwner.resource_type == rtype,
                                                         ResourceOwner.logical_id == rid))
        return self._record(Change(reference, patient_id, "deleted"))

    def delete_patient(self, patient_id: str) -> Change:
        """Remove a patient's whole record: every resource of the compartment (whoever keeps it), the identity
        link and staff copy of the BSN, and every access to it (tokens, consents, codes, logins)."""
        rows = list(self.session.execute(select(ResourceRow.resource_type, ResourceRow.logical_id).where(
            ResourceRow.patient_id == patient_id)))
        documents = set(self.session.scalars(
            select(ReferenceIndex.target_id).join(ResourceRow, ResourceRow.pk == ReferenceIndex.resource_pk).where(
                ResourceRow.patient_id == patient_id, ReferenceIndex.param == search_index.ALL_REFERENCES,
                ReferenceIndex.target_type == "Binary")))
        removed = self.store.delete_patient_data(patient_id)
        # the record's documents go with it, unless something else still points at them
        for binary_id in sorted(documents):
            binary = self.store.get("Binary", binary_id)
            still_used = self.session.scalar(select(ReferenceIndex.id).where(
                ReferenceIndex.param == search_index.ALL_REFERENCES, ReferenceIndex.target_type == "Binary",
                ReferenceIndex.target_id == binary_id).limit(1))
            if binary is not None and still_used is None:
                self.store.delete(binary)
                rows.append(("Binary", binary_id))
                removed += 1
        for rtype, rid in rows:
            self.session.execute(delete(ResourceOwner).where(ResourceOwner.resource_type == rtype,
                                                             ResourceOwner.logical_id == rid))
        self.session.execute(delete(IdentityLink).where(IdentityLink.patient_id == patient_id))
        self.session.execute(delete(PatientBsn).where(PatientBsn.patient_id == patient_id))
        revoked = revoke_patient(self.session, patient_id, reason="patient-deleted", now=utcnow())
        change = Change(f"Patient/{patient_id}", patient_id, "deleted")
        change.warnings.append(Issue("informational", f"{removed} resource(s) of the record removed; {revoked}",
                                     severity="information"))
        return self._record(change)

    # ------------------------------------------------------------------------------------ helpers
    def _patient_row(self, patient_id: str) -> ResourceRow:
        row = self.store.get("Patient", patient_id) if valid_id(patient_id) else None
        if row is None:
            raise NotFound(f"Patient/{patient_id} is not known")
        return row

    def _check_owner(self, row: ResourceRow, what: str) -> None:
        owner = self.session.get(ResourceOwner, (row.resource_type, row.logical_id))
        if owner is not None and owner.source != self.source:
            raise Conflict(f"{row.resource_type}/{row.logical_id} is kept by source {owner.source!r}; only that "
                           f"source can {what}")


def pdf_issues(data: bytes, content_type: t.Any, limit: int, where: str) -> list[Issue]:
    """Refuse what is not a PDF within ``limit`` bytes; a warning when it does not identify itself as PDF/A
    (ISO 19005: ``pdfaid:part`` in the XMP metadata). Full PDF/A conformance needs a validator such as veraPDF."""
    if len(data) > limit:
        raise PayloadTooLarge(f"{where}: the document is {len(data)} bytes; at most {limit} are accepted")
    if content_type != "application/pdf" or not data.startswith(b"%PDF-"):
        raise InvalidResource(f"{where}: only PDF/A documents (contentType application/pdf) are accepted")
    if PDFA_MARKER not in data:
        return [Issue("informational", f"{where}: the PDF does not identify itself as PDF/A (no pdfaid:part in "
                                       "its XMP metadata); it is stored, but MedMij expects PDF/A",
                      severity="warning")]
    return []


def _drop_bsn_identifiers(patient: dict[str, t.Any]) -> bool:
    """Remove the (masked) BSN identifiers of a Patient; True when there were any."""
    identifiers = patient.get("identifier") or []
    kept = [i for i in identifiers if not (isinstance(i, dict) and i.get("system") == BSN_SYSTEM)]
    if len(kept) == len(identifiers):
        return False
    if kept:
        patient["identifier"] = kept
    else:
        patient.pop("identifier", None)
    return True


def _compartment_name(patient_id: str | None) -> str:
    return f"Patient/{patient_id}" if patient_id else "no patient (shared data)"


def _rewrite_patient(resource: dict[str, t.Any], old: str, new: str, display: str | None,
                     local_bases: t.Sequence[str]) -> dict[str, t.Any]:
    """Every Reference to ``Patient/old`` becomes ``Patient/new`` (with the surviving record's display)."""
    for fhir_type, node, _ in iter_typed(resource):
        if fhir_type != "Reference" or not isinstance(node, dict):
            continue
        target = parse_reference(str(node.get("reference") or ""), local_bases)
        if target is not None and target.type == "Patient" and target.id == old:
            node["reference"] = f"Patient/{new}"
            if display:
                node["display"] = display
    return resource


def audit_changes(audit: AuditLog, session: Session, changes: t.Sequence[Change], *, event_type: str, actor: str,
                  **fields: t.Any) -> None:
    """One audit record per patient whose record changed (NEN 7513: whose data, which resources, who), in the
    caller's transaction: committed with the data or not at all. Unchanged resources are not listed."""
    by_patient: dict[str | None, list[str]] = {}
    for change in changes:
        if change.action not in ("unchanged", "absent"):
            by_patient.setdefault(change.patient_id, []).append(f"{change.action[0]}:{change.reference}")
    for patient_id, references in by_patient.items():
        audit.write(event_type=event_type, outcome="success", actor=actor, patient_id=patient_id,
                    resource_ids=" ".join(references), session=session, **fields)


def refusal(issues: t.Sequence[Issue], errors: t.Sequence[FhirError], what: str) -> FhirError:
    """One error naming every problem of a request (all-or-nothing), with the status of the most telling
    one: 413 (too large), 412 (If-Match), 409 (conflict), 400 (structure, content rules), 422, 404."""
    order = (413, 412, 409, 400, 422, 404)
    best = min(errors, key=lambda e: order.index(e.status_code) if e.status_code in order else len(order),
               default=None)
    error_class = type(best) if best is not None else InvalidResource
    return error_class(f"{what} is refused ({len(issues)} problem(s)); nothing was stored", issues=list(issues))
