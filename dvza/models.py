"""Tables owned by the application: the identity links, the staff copy of the BSN (encrypted) and the audit
log (the return queue has its own, ``dvza.returnqueue.models``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column


class AppBase(DeclarativeBase):
    """Declarative base of the application's own tables."""


class IdentityLink(AppBase):
    """Which Patient resource a person (BSN) is. Only a keyed hash (HMAC-SHA256) of the BSN is
    stored: login (DigiD) yields a BSN, and this maps it to the patient's logical id. The BSN never
    appears in served resources (fhir-content.md §1.2 #14), logs or audit records.
    """

    __tablename__ = "identity_link"

    bsn_hmac: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)


class PatientBsn(AppBase):
    """A patient's BSN, encrypted, for hospital staff only: the return-queue page shows it so staff can
    match what a PGO sent with the patient in their own record (issue 17).

    Encrypted with Fernet (AES-128-CBC with HMAC-SHA256, ``cryptography``) under ``BSN_ENCRYPTION_KEY``, a
    key separate from ``BSN_HMAC_KEY`` (the lookup hash of :class:`IdentityLink`), so a leaked lookup key or
    database alone does not reveal a BSN. Never in served resources, logs, audit records or URLs.
    """

    __tablename__ = "patient_bsn"

    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bsn_encrypted: Mapped[str] = mapped_column(Text)


class AuditRecord(AppBase):
    """One data access or security event (NEN 7513:2018 style: which event, when, which patient,
    which user/client, on whose behalf, outcome). Append-only: the database refuses UPDATE and
    DELETE (triggers made by migration ``0001_baseline``). Never holds a BSN or a token, only references.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_patient_time", "patient_id", "occurred_at"),
        Index("ix_audit_event_client_time", "client_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: ``fhir.type-search``, ``fhir.instance-read``, ``oauth.consent-granted``, ``queue.claim`` …
    event_type: Mapped[str] = mapped_column(String(64))
    #: HTTP status or ``success``/``failure``
    outcome: Mapped[str] = mapped_column(String(32))
    #: who acted: ``pgo:<client_id>``, ``person``, ``staff:<name>``, ``system``
    actor: Mapped[str] = mapped_column(String(255))
    #: on whose behalf / whose data: the Patient logical id (never the BSN)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(255))
    token_ref: Mapped[str | None] = mapped_column(String(32))
    gegevensdiensten: Mapped[str | None] = mapped_column(String(255))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_ids: Mapped[str | None] = mapped_column(Text)
    query: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
