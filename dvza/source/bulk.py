"""Bulk import for the initial fill: NDJSON, one FHIR resource per line, many patients (the FHIR Bulk Data
format, https://hl7.org/fhir/uv/bulkdata/ "ndjson"), through the same :class:`~dvza.source.writer.SourceWriter`.

* **Streaming**: lines are read one at a time and written in chunks of ``chunk_lines``; after each chunk is
  committed the session is emptied, and only counters and the first few refusals stay in memory, so memory
  does not grow with the file. A line longer than ``max_line_bytes`` is refused without being held.
* **Restartable**: how far the import got (bytes and lines) is an :class:`~dvza.source.models.ImportJob` row
  updated in the same transaction as the chunk's resources. After a crash the same file (same source, same
  SHA-256) continues after the last committed line; lines of an uncommitted chunk were rolled back and are
  read again; nothing is written twice (and a repeated upsert would change nothing anyway). Two processes on
  one job cannot both advance it: the update is conditional on the offset it started from.
* **Summary**: created, updated, unchanged and refused lines; every refusal is kept in
  :class:`~dvza.source.models.ImportRefusal` (line, resource, reason — never the line itself).
* Each line is its own unit (a savepoint): a bad line is refused, the others load. References get their
  ``display`` from what is already stored, so put shared resources and Patients before what refers to them,
  and Binaries before their DocumentReferences (as ``Bundle`` ordering rules would).
* Audit: one record per patient per chunk (:func:`~dvza.source.writer.audit_changes`), in the chunk's
  transaction.
"""

from __future__ import annotations

import hashlib
import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from fhir_api import fhirjson
from fhir_api.errors import FhirError

from ..redaction import redact
from .models import ImportJob
from .models import ImportRefusal
from .writer import SourceSettings
from .writer import SourceWriter
from .writer import audit_changes

if t.TYPE_CHECKING:
    from ..audit import AuditLog
    from ..db import Database

#: refusals shown in a summary; all of them are in the database
SUMMARY_REFUSALS = 20


class ImportBusy(Exception):
    """Another process advanced this import job meanwhile (two imports of the same file at once)."""


class Readable(t.Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


@dataclass(slots=True)
class ImportSummary:
    job_id: str
    label: str
    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    #: the line after which this run started (0: from the beginning)
    resumed_after: int = 0
    finished: bool = False
    already_done: bool = False
    refusals: list[tuple[int, str | None, str]] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return self.created + self.updated + self.unchanged

    def text(self) -> str:
        head = f"{self.lines} lines: {self.loaded} loaded ({self.created} created, {self.updated} updated, " \
               f"{self.unchanged} unchanged), {self.refused} refused"
        if self.already_done:
            return head + " (this file was imported before; --again imports it once more)"
        if self.resumed_after:
            head += f" (continued after line {self.resumed_after})"
        return head

    def to_json(self) -> dict[str, t.Any]:
        return {"job": self.job_id, "lines": self.lines, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "refused": self.refused, "resumedAfter": self.resumed_after,
                "finished": self.finished}


def file_digest(path: t.Any, block: int = 1 << 20) -> str:
    """SHA-256 of a file, read in blocks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def job_id(source: str, key: str) -> str:
    """The job of one source and one file digest (or job name)."""
    return hashlib.sha256(f"{source}\0{key}".encode()).hexdigest()


def read_lines(stream: Readable, max_line_bytes: int) -> t.Iterator[tuple[bytes | None, int]]:
    """``(line, bytes consumed)`` per line; ``None`` for a line over ``max_line_bytes`` (read past, not held).

    A last line without a newline is given only once the stream confirms its end: an upload that breaks off
    (the client disconnects, Werkzeug raises ``ClientDisconnected``) never yields its cut-off line, so it is
    not loaded or refused, and a restart reads it whole."""
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        if line.endswith(b"\n") and len(line) <= max_line_bytes + 1:
            yield line, len(line)
            continue
        if len(line) <= max_line_bytes:
            rest = stream.readline(1)  # b"" at a real end; an error when the upload broke off
            if not rest:
                yield line, len(line)
                return
            line += rest  # pragma: no cover - readline stops only at a newline, the limit or the end
        consumed = len(line)
        while line and not line.endswith(b"\n"):
            line = stream.readline(1 << 16)
            consumed += len(line)
        yield None, consumed


class BulkImport:
    """One import job of one source (see the module docstring)."""

    def __init__(self, database: Database, audit: AuditLog, settings: SourceSettings, *, source: str, job: str,
                 label: str, total_bytes: int | None = None, chunk_lines: int = 500,
                 max_line_bytes: int = 32 * 1024 * 1024, actor: str | None = None):
        self.database = database
        self.audit = audit
        self.settings = settings
        self.source = source
        self.job = job
        self.label = label[:255]
        self.total_bytes = total_bytes
        self.chunk_lines = max(1, chunk_lines)
        self.max_line_bytes = max_line_bytes
        self.actor = actor or f"source:{source}"

    # ------------------------------------------------------------------------------------ job state
    def start(self, *, again: bool = False) -> ImportJob:
        """The job row (created, or found for a restart); ``again`` starts a finished job from the beginning."""
        now = datetime.now(UTC)
        with self.database.sessionmaker() as session:
            job = session.get(ImportJob, self.job)
            if job is None:
                job = ImportJob(id=self.job, source=self.source, label=self.label, total_bytes=self.total_bytes,
                                offset=0, lines=0, created=0, updated=0, unchanged=0, refused=0, status="running",
                                started_at=now, updated_at=now, runs=1)
                session.add(job)
                try:
                    session.commit()
                except IntegrityError:  # started at the same moment elsewhere: continue that one
                    session.rollback()
                    job = session.get(ImportJob, self.job)
                    assert job is not None
                return job
            if again and job.status == "finished":
                session.execute(delete(ImportRefusal).where(ImportRefusal.job_id == self.job))
                job.offset = job.lines = job.created = job.updated = job.unchanged = job.refused = 0
                job.status, job.finished_at = "running", None
            job.runs += 1
            job.updated_at = now
            session.commit()
            return job

    def summary(self, job: ImportJob, *, resumed_after: int = 0, already_done: bool = False) -> ImportSummary:
        from sqlalchemy import select

        with self.database.sessionmaker() as session:
            refusals = [(r.line, r.reference, r.reason) for r in session.scalars(
                select(ImportRefusal).where(ImportRefusal.job_id == job.id).order_by(ImportRefusal.line)
                .limit(SUMMARY_REFUSALS))]
        return ImportSummary(job.id, job.label, job.lines, job.created, job.updated, job.unchanged, job.refused,
                             resumed_after, job.status == "finished", already_done, refusals)

    # ------------------------------------------------------------------------------------ running
    def run(self, stream: Readable, *, seek: bool = False, again: bool = False,
            progress: t.Callable[[int], None] | None = None) -> ImportSummary:
        """Import from ``stream``. A restart continues the job: a seekable stream (a file, ``seek=True``) is
        positioned after the last committed line; otherwise (a re-sent HTTP body) the lines already done are
        read past."""
        job = self.start(again=again)
        if job.status == "finished":
            return self.summary(job, already_done=True)
        resumed_after, offset, lineno = job.lines, job.offset, job.lines
        if seek:
            stream.seek(offset)  # type: ignore[attr-defined]
        lines = read_lines(stream, self.max_line_bytes)
        if not seek:
            for _ in range(lineno):
                if next(lines, None) is None:
                    break
        if progress:
            progress(offset)
        done = False
        while not done:  # one session per chunk: nothing of a committed chunk stays referenced
            with self.database.sessionmaker() as session:
                writer = SourceWriter(session, self.source, self.settings)
                counts = {"created": 0, "updated": 0, "unchanged": 0, "refused": 0}
                in_chunk = consumed = 0
                try:
                    for line, size in lines:
                        lineno += 1
                        in_chunk += 1
                        consumed += size
                        self._one(session, writer, line, lineno, counts)
                        if in_chunk >= self.chunk_lines:
                            break
                    else:
                        done = True
                    offset = self._commit(session, writer, offset, offset + consumed, lineno, counts, done=done)
                except BaseException:
                    session.rollback()
                    raise
            if progress:
                progress(offset)
        with self.database.sessionmaker() as reader:
            final = reader.get(ImportJob, self.job)
            assert final is not None
        return self.summary(final, resumed_after=resumed_after)

    def _one(self, session: t.Any, writer: SourceWriter, line: bytes | None, lineno: int,
             counts: dict[str, int]) -> None:
        reference: str | None = None
        if line is not None and not line.strip():
            return  # an empty line (e.g. the last newline) is no resource
        try:
            if line is None:
                raise FhirError(f"the line is longer than {self.max_line_bytes} bytes")
            resource = fhirjson.loads(line)
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                reference = f"{resource['resourceType']}/{resource.get('id', '')}"[:140]
            with writer.savepoint():
                change = writer.upsert(resource)
            counts[change.action] += 1
        except FhirError as exc:
            reason = "; ".join(i.diagnostics for i in exc.issues[:5]) or exc.diagnostics
            session.add(ImportRefusal(job_id=self.job, line=lineno, reference=reference,
                                      reason=redact(reason)[:4000]))
            counts["refused"] += 1

    def _commit(self, session: t.Any, writer: SourceWriter, old_offset: int, new_offset: int, lineno: int,
                counts: dict[str, int], *, done: bool) -> int:
        """Commit a chunk together with the job's progress (conditional on the offset it started from)."""
        audit_changes(self.audit, session, writer.changes, event_type="source.import", actor=self.actor,
                      detail=f"bulk import {self.label}"[:500])
        writer.changes.clear()
        now = datetime.now(UTC)
        values: dict[str, t.Any] = {
            "offset": new_offset, "lines": lineno, "updated_at": now,
            "created": ImportJob.created + counts["created"], "updated": ImportJob.updated + counts["updated"],
            "unchanged": ImportJob.unchanged + counts["unchanged"], "refused": ImportJob.refused + counts["refused"],
        }
        if done:
            values.update(status="finished", finished_at=now)
        result = session.execute(update(ImportJob).where(ImportJob.id == self.job, ImportJob.offset == old_offset)
                                 .values(**values).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            session.rollback()
            raise ImportBusy(f"import job {self.job[:12]} was advanced by another process; this run stops")
        session.commit()
        return new_offset
