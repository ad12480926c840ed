"""The return queue's table: one row per submission a PGO sent back (Module 2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..models import AppBase


class QueueItem(AppBase):
    """One submission a PGO sent back (Module 2), waiting for the hospital.

    Created in the same transaction as the submitted resources (which stay hidden until the item is
    accepted), so an acknowledged submission is always queued and a queued item always complete.
    ``(client_id, request_id)`` is unique: a PGO retrying with the same ``MedMij-Request-ID`` gets
    the stored response instead of a duplicate. Status: ``new`` → ``claimed`` → ``accepted`` /
    ``rejected``; a claim is a lease that expires, so a crashed consumer's items come back.
    """

    __tablename__ = "return_queue_item"
    __table_args__ = (
        UniqueConstraint("client_id", "request_id", name="uq_return_queue_request"),
        Index("ix_return_queue_status_received", "status", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: ``vitalsigns`` | ``documents`` | ``questionnaire-answers`` | ``task-status``
    kind: Mapped[str] = mapped_column(String(32))
    gegevensdienst: Mapped[str | None] = mapped_column(String(16))
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str] = mapped_column(String(64))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    body_sha256: Mapped[str] = mapped_column(String(64))
    #: space-separated ``Type/id`` of the resources this submission wrote
    resources: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    #: the FHIR response (JSON) given to the PGO, replayed on a retry
    response_json: Mapped[str] = mapped_column(Text)
    #: what the submission changed at once (a Task), as it was before: put back if the item is rejected (JSON
    #: list of ``{"reference", "before", "version", "after"}``, ``fhir_api.services.Restore``; NULL when it changed
    #: nothing at once)
    restores_json: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="new")
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claims: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
