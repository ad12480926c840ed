"""The return queue: what patients send from their PGO, waiting for the hospital (Module 2).

The resource server hands every accepted submission to :meth:`ReturnQueue.enqueue` inside its own
transaction (one commit for the data and the item). The hospital consumes items through the JSON
API (:mod:`dvza.returnqueue.api`), the ``dvza queue`` commands or the queue page:

* ``claim`` leases up to N ``new`` (or lease-expired) items to one consumer. On PostgreSQL the
  candidate rows are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent consumers never get the
  same item; SQLite runs the single ``UPDATE … RETURNING`` under its one-writer lock.
* ``accept`` makes the submitted resources part of the patient's record, through the same write path as the
  hospital's own systems (:class:`dvza.source.writer.SourceWriter`: validation, content rules, compartment,
  search index; kept by ``dvza:return-queue``), all or nothing: if any resource no longer passes, nothing is
  accepted and the item stays claimed. ``reject`` keeps them out, with the reason, and puts back what the
  submission changed at once (a questionnaire Task: :meth:`ReturnQueue._put_back`). Both need the caller's
  current claim.

Every hospital-side action is audit-logged with the patient it concerns (NEN 7513).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fhir_api import fhirjson
from fhir_api.errors import FhirError
from fhir_api.models import ResourceRow
from fhir_api.services import DuplicateSubmission
from fhir_api.services import PriorSubmission
from fhir_api.services import Submission
from fhir_api.store import ResourceStore
from fhir_api.store import content_digest

from ..source.writer import RETURN_QUEUE
from ..source.writer import SourceSettings
from ..source.writer import SourceWriter
from ..source.writer import write_rank
from .models import QueueItem

if t.TYPE_CHECKING:
    from ..audit import AuditLog
    from ..db import Database

STATUSES = ("new", "claimed", "accepted", "rejected")
_ITEMS = QueueItem.__table__
_PRIOR = select(_ITEMS.c.body_sha256, _ITEMS.c.response_json, _ITEMS.c.patient_id).where(
    _ITEMS.c.client_id == bindparam("client_id"), _ITEMS.c.request_id == bindparam("request_id"))
_ENQUEUE = insert(_ITEMS)


class QueueError(Exception):
    """A queue operation that cannot be done (unknown item, not claimed by you, already decided)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ItemView:
    """A queue item as shown to the hospital (JSON API, CLI, page)."""

    id: str
    received_at: str
    kind: str
    gegevensdienst: str | None
    patient_id: str
    client_id: str
    request_id: str
    status: str
    summary: str
    resources: list[str]
    claimed_by: str | None
    claimed_until: str | None
    decided_at: str | None
    decided_by: str | None
    reason: str | None

    @classmethod
    def of(cls, item: QueueItem) -> ItemView:
        def iso(moment: datetime | None) -> str | None:
            if moment is None:
                return None
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()

        return cls(item.id, iso(item.received_at) or "", item.kind, item.gegevensdienst, item.patient_id,
                   item.client_id, item.request_id, item.status, item.summary, item.resources.split(),
                   item.claimed_by, iso(item.claimed_until), iso(item.decided_at), item.decided_by, item.reason)

    def to_json(self) -> dict[str, t.Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


class ReturnQueue:
    def __init__(self, database: Database, audit: AuditLog, *, now: t.Callable[[], datetime] | None = None,
                 source_settings: SourceSettings | None = None):
        self.database = database
        self.audit = audit
        self.now = now or (lambda: datetime.now(UTC))
        self.source_settings = source_settings or SourceSettings(bsn_key="")

    def reassign_patient(self, session: Session, merged_id: str, into_id: str) -> None:
        """Two patient records were merged (``dvza.source``: ``Patient/$merge``): the merged record's items
        follow its data, which moved to ``into_id`` (in the merge's transaction)."""
        session.execute(update(QueueItem).where(QueueItem.patient_id == merged_id).values(patient_id=into_id)
                        .execution_options(synchronize_session=False))

    # ---------------------------------------------------------------- SubmissionSink (fhir_api)
    def prior(self, session: Session, *, client_id: str, request_id: str) -> PriorSubmission | None:
        found = session.connection().execute(_PRIOR, {"client_id": client_id, "request_id": request_id}).first()
        return PriorSubmission(found[0], found[1], found[2]) if found is not None else None

    def enqueue(self, session: Session, submission: Submission) -> None:
        """Add the item in the caller's transaction (one Core INSERT). A concurrent submission with the
        same ``MedMij-Request-ID`` violates the unique key: the caller rolls back and replays it."""
        values = {
            "id": submission.id, "received_at": self.now(), "kind": submission.kind,
            "gegevensdienst": submission.gegevensdienst, "patient_id": submission.patient_id,
            "client_id": submission.client_id, "request_id": submission.request_id,
            "correlation_id": submission.correlation_id, "body_sha256": submission.body_sha256,
            "resources": " ".join(submission.resources), "summary": submission.summary,
            "response_json": fhirjson.dumps(submission.response), "status": "new", "claims": 0,
            "restores_json": fhirjson.dumps([{"reference": r.reference, "before": r.before_json, "version": r.version,
                                              "after": r.after_digest} for r in submission.restores])
            if submission.restores else None,
        }
        try:
            session.connection().execute(_ENQUEUE, values)
        except IntegrityError as exc:
            raise DuplicateSubmission(str(exc)) from exc

    # ---------------------------------------------------------------------- hospital side
    def list(self, *, status: str | None = None, patient_id: str | None = None, limit: int = 100) -> list[ItemView]:
        with self.database.sessionmaker() as session:
            query = select(QueueItem).order_by(QueueItem.received_at.desc()).limit(limit)
            if status:
                query = query.where(QueueItem.status == status)
            if patient_id:
                query = query.where(QueueItem.patient_id == patient_id)
            return [ItemView.of(item) for item in session.scalars(query)]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.database.sessionmaker() as session:
            rows = session.execute(select(QueueItem.status, func.count()).group_by(QueueItem.status))
            return {status: 0 for status in STATUSES} | {status: count for status, count in rows}

    def oldest_new(self) -> datetime | None:
        """When the oldest item that is still ``new`` arrived (None when there is none), for monitoring."""
        from sqlalchemy import func

        with self.database.sessionmaker() as session:
            oldest = session.scalar(select(func.min(QueueItem.received_at)).where(QueueItem.status == "new"))
        return oldest.replace(tzinfo=UTC) if oldest is not None and oldest.tzinfo is None else oldest

    def get(self, item_id: str, *, actor: str, with_resources: bool = True) -> tuple[ItemView, list[dict[str, t.Any]]]:
        with self.database.sessionmaker() as session:
            item = session.get(QueueItem, item_id)
            if item is None:
                raise QueueError(f"queue item {item_id} does not exist", 404)
            resources = []
            if with_resources:
                store = ResourceStore(session)
                for reference in item.resources.split():
                    resource_type, _, logical_id = reference.partition("/")
                    loaded = store.load(resource_type, logical_id)
                    if loaded is not None:
                        resources.append(loaded)
            view = ItemView.of(item)
        self.audit.write(event_type="queue.show", outcome="success", actor=actor, patient_id=view.patient_id,
                         client_id=view.client_id, resource_ids=" ".join(view.resources), detail=view.id)
        return view, resources

    def claim(self, consumer: str, *, max_items: int = 10, lease_seconds: int = 300) -> list[ItemView]:
        """Lease up to ``max_items`` claimable items to ``consumer``, oldest first."""
        now = self.now()
        with self.database.sessionmaker() as session:
            claimable = (
                select(QueueItem.id)
                .where(or_(QueueItem.status == "new",
                           (QueueItem.status == "claimed") & (QueueItem.claimed_until < now)))
                .order_by(QueueItem.received_at, QueueItem.id)
                .limit(max_items)
                .with_for_update(skip_locked=True)
            )
            statement = (
                update(QueueItem)
                .where(QueueItem.id.in_(claimable.scalar_subquery()))
                .values(status="claimed", claimed_by=consumer, claimed_until=now + timedelta(seconds=lease_seconds),
                        claims=QueueItem.claims + 1)
                .returning(QueueItem)
                .execution_options(synchronize_session=False)
            )
            items = [ItemView.of(item) for item in session.scalars(statement)]
            session.commit()
        for item in items:
            self.audit.write(event_type="queue.claim", outcome="success", actor=f"staff:{consumer}",
                             patient_id=item.patient_id, client_id=item.client_id, detail=item.id)
        return sorted(items, key=lambda i: (i.received_at, i.id))

    def claim_item(self, item_id: str, consumer: str, *, lease_seconds: int = 900) -> ItemView:
        """Lease one chosen item (the queue page's "Behandelen"): it must be new, lease-expired or
        already this consumer's."""
        now = self.now()
        with self.database.sessionmaker() as session:
            item, claimed_until = self._locked(session, item_id)
            free = item.status == "new" or (item.status == "claimed" and (
                item.claimed_by == consumer or (claimed_until is not None and claimed_until < now)))
            if not free:
                raise QueueError(_state(item))
            item.status, item.claimed_by = "claimed", consumer
            item.claimed_until = now + timedelta(seconds=lease_seconds)
            item.claims = item.claims + 1
            view = ItemView.of(item)
            session.commit()
        self.audit.write(event_type="queue.claim", outcome="success", actor=f"staff:{consumer}",
                         patient_id=view.patient_id, client_id=view.client_id, detail=view.id)
        return view

    def accept(self, item_id: str, consumer: str) -> ItemView:
        return self._decide(item_id, consumer, "accepted", None)

    def reject(self, item_id: str, consumer: str, reason: str) -> ItemView:
        if not reason.strip():
            raise QueueError("a rejection needs a reason", 400)
        return self._decide(item_id, consumer, "rejected", reason.strip())

    def release(self, item_id: str, consumer: str) -> ItemView:
        """Give a claimed item back without deciding."""
        with self.database.sessionmaker() as session:
            item = self._claimed(session, item_id, consumer)
            item.status, item.claimed_by, item.claimed_until = "new", None, None
            view = ItemView.of(item)
            session.commit()
        return view

    @staticmethod
    def _locked(session: Session, item_id: str) -> tuple[QueueItem, datetime | None]:
        """The item, row-locked for this transaction, and its lease end as an aware datetime
        (SQLite gives naive values back)."""
        item = session.scalar(select(QueueItem).where(QueueItem.id == item_id).with_for_update())
        if item is None:
            raise QueueError(f"queue item {item_id} does not exist", 404)
        claimed_until = item.claimed_until
        if claimed_until is not None and claimed_until.tzinfo is None:
            claimed_until = claimed_until.replace(tzinfo=UTC)
        return item, claimed_until

    def _claimed(self, session: Session, item_id: str, consumer: str) -> QueueItem:
        item, claimed_until = self._locked(session, item_id)
        if item.status != "claimed" or item.claimed_by != consumer or (claimed_until and claimed_until < self.now()):
            raise QueueError(_state(item) + "; claim it first")
        return item

    def _decide(self, item_id: str, consumer: str, status: str, reason: str | None) -> ItemView:
        with self.database.sessionmaker() as session:
            item = self._claimed(session, item_id, consumer)
            item.status, item.decided_at, item.decided_by, item.reason = status, self.now(), consumer, reason
            item.claimed_until = None
            if status == "accepted":
                self._join_record(session, item, consumer)
            else:
                self._put_back(session, item, consumer)
            view = ItemView.of(item)
            session.commit()
        self.audit.write(event_type=f"queue.{status}", outcome="success", actor=f"staff:{consumer}",
                         patient_id=view.patient_id, client_id=view.client_id,
                         resource_ids=" ".join(view.resources), detail=reason or view.id)
        return view

    def _put_back(self, session: Session, item: QueueItem, consumer: str) -> None:
        """A rejected submission leaves the record as it was: what it changed at once (the Task its answers
        completed, or whose status it set) goes back to the version before it, in the rejection's transaction —
        so the Task is open again and the patient can answer anew. Only while the resource still holds what the
        submission wrote: one that changed since (a later submission, the hospital, a Task deleted and made anew)
        is left as it is, and so is one another request changes during the rejection (the write is staged from the
        version checked). If the version before was itself written by a submission the hospital rejected, it goes
        back further (:meth:`_before_rejected`): no rejected change stays. Audited with the patient (NEN 7513)."""
        if not item.restores_json:
            return
        store = ResourceStore(session, local_bases=self.source_settings.local_bases)
        restored, kept = [], []
        for entry in fhirjson.loads(item.restores_json):
            resource_type, _, logical_id = entry["reference"].partition("/")
            row = store.get(resource_type, logical_id)
            if row is None or row.patient_id != item.patient_id or content_digest(row.json_text) != entry.get("after"):
                kept.append(entry["reference"])
                continue
            try:  # the next version of the very version checked above (meta set anew), or nothing
                store.write(store.stage(fhirjson.loads(self._before_rejected(session, item, entry)), based_on=row))
            except (StaleDataError, FhirError):  # changed by another request after the check; or the earlier
                kept.append(entry["reference"])  # version no longer passes the rules: the rejection still stands
                continue
            restored.append(entry["reference"])
        detail = (f"{item.id}: put back as before the submission: {' '.join(restored) or '-'}; changed since, "
                  f"left as is: {' '.join(kept) or '-'}")
        self.audit.write(event_type="queue.restored", outcome="success", actor=f"staff:{consumer}",
                         patient_id=item.patient_id, client_id=item.client_id, detail=detail, session=session,
                         resource_ids=" ".join(restored) or None)

    @staticmethod
    def _before_rejected(session: Session, item: QueueItem, entry: dict[str, t.Any]) -> str:
        """``entry``'s version before — or, when a submission the hospital rejected wrote that very version (its
        number and content), the version before that one, and so on. So two stacked changes (a Task accepted, then
        completed with answers) both rejected, in either order, leave the Task as it was before both."""
        rejected = [(other.id, earlier) for other in session.scalars(
            select(QueueItem).where(QueueItem.patient_id == item.patient_id, QueueItem.status == "rejected",
                                    QueueItem.id != item.id, QueueItem.restores_json.is_not(None)))
            for earlier in fhirjson.loads(other.restores_json or "[]") if earlier["reference"] == entry["reference"]]
        before, used = entry["before"], set()
        while True:
            version = str((fhirjson.loads(before).get("meta") or {}).get("versionId"))
            digest = content_digest(before)
            found = next(((item_id, earlier) for item_id, earlier in rejected if item_id not in used
                          and str(earlier["version"]) == version and earlier.get("after") == digest), None)
            if found is None:
                return t.cast(str, before)
            used.add(found[0])
            before = found[1]["before"]

    def _join_record(self, session: Session, item: QueueItem, consumer: str) -> None:
        """The accepted submission joins the record like the hospital's own data: every resource it brought goes
        through :meth:`SourceWriter.upsert` (validation, content rules, compartment, index), Binaries first; any
        refusal undoes the whole accept (QueueError 422 naming the problems)."""
        rows = list(session.scalars(select(ResourceRow).where(ResourceRow.hidden_by == item.id)))
        resources = [fhirjson.loads(row.json_text) for row in rows]
        for row in rows:
            row.hidden_by = None
        session.flush()
        writer = SourceWriter(session, RETURN_QUEUE, self.source_settings)
        problems: list[str] = []
        for resource in sorted(resources, key=lambda r: write_rank(r["resourceType"])):
            try:
                with writer.savepoint():
                    writer.upsert(resource)
            except FhirError as exc:
                problems += [f"{resource['resourceType']}/{resource.get('id')}: {i.diagnostics}" for i in exc.issues]
        if problems:
            session.rollback()
            raise QueueError("the submission can no longer join the record: " + "; ".join(problems[:10]), 422)
        # what joined the record (in the accept's transaction), changed by the write path or not
        self.audit.write(event_type="queue.joined-record", outcome="success", actor=f"staff:{consumer}",
                         patient_id=item.patient_id, client_id=item.client_id, detail=item.id, session=session,
                         resource_ids=" ".join(f"{c.action[0]}:{c.reference}" for c in writer.changes) or None)


def _state(item: QueueItem) -> str:
    return f"queue item {item.id} is {item.status}" + (f" by {item.claimed_by}" if item.status == "claimed" else "")
