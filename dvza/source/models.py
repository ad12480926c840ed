"""The source API's tables: which source system keeps each resource, and the bulk-import jobs.

* :class:`ResourceOwner` — the *system of record* of every resource a source wrote: the rule that settles
  conflicting updates from two sources (:mod:`dvza.source.writer`);
* :class:`ImportJob` and :class:`ImportRefusal` — one NDJSON bulk import: how far it got (committed with
  the data, so a restart after a crash continues exactly there) and the lines it refused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..models import AppBase


class ResourceOwner(AppBase):
    """The source that keeps a resource (``fhir_resource`` by type and id): the first source that wrote it.

    Only that source may change or delete it; another source's different version is refused (409) and the
    same content again is accepted without a change. Internal writers have names no configured source can
    have: ``dvza:testdata`` (the Nictiz loader), ``dvza:return-queue`` (what the hospital accepted from a PGO).
    """

    __tablename__ = "source_resource_owner"

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    logical_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImportJob(AppBase):
    """One bulk import (NDJSON) and how far it is: ``offset`` (bytes) and ``lines`` are committed in the same
    transaction as the resources of those lines, so a restart continues after the last committed line and
    nothing is written twice. ``id`` is derived from the source and the file's SHA-256 (``dvza source import``)
    or from the source and the job name it chose (``$import?job=…``)."""

    __tablename__ = "source_import_job"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(255))
    total_bytes: Mapped[int | None] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(Integer, default=0)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    #: ``running`` (also after a crash: a restart continues it) or ``finished``
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: how often it was started (1 + restarts)
    runs: Mapped[int] = mapped_column(Integer, default=1)


class ImportRefusal(AppBase):
    """A line of a bulk import that was not loaded, and why (never the line itself: it may hold a BSN)."""

    __tablename__ = "source_import_refusal"
    __table_args__ = (Index("ix_source_import_refusal_job", "job_id", "line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64))
    line: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(String(140))
    reason: Mapped[str] = mapped_column(Text)
