"""The tables of client qualification sessions: the session and the exchanges it recorded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..models import AppBase


class QualificationSession(AppBase):
    """One client qualification session: which Nictiz client-role scripts, which test persons, the
    step that runs now, what its setup and teardown did, and — once ended — the report.

    The JSON columns hold: ``steps`` a list of steps, each a list of script paths (relative to the
    scripts folder); ``patients`` the test persons' patient ids; ``variables`` per script the pinned
    TestScript variables (e.g. the ``task-id`` its setup created); ``work`` per script the setup and
    teardown results; ``report`` the evaluated :class:`~dvza.conformance.runner.ScriptResult` list.
    """

    __tablename__ = "qualification_session"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: ``active`` while it records, ``ended`` once evaluated
    status: Mapped[str] = mapped_column(String(16), index=True)
    sets: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: who started it: ``cli`` or ``staff:<name>``
    started_by: Mapped[str] = mapped_column(String(128))
    #: only this PGO's access tokens are recorded (OAuth client_id = PGO hostname); None: any PGO
    client_id: Mapped[str | None] = mapped_column(String(255))
    #: the date the scripts' ``T`` (``${CURRENTDATE}``) stands for
    today: Mapped[str] = mapped_column(String(10))
    step: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[str] = mapped_column(Text)
    patients: Mapped[str] = mapped_column(Text)
    variables: Mapped[str] = mapped_column(Text, default="{}")
    work: Mapped[str] = mapped_column(Text, default="{}")
    report: Mapped[str | None] = mapped_column(Text)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)


class RecordedRequest(AppBase):
    """One request of a session's tokens to the FHIR API and the answer it got.

    Headers are stored with the token masked (``Authorization: Bearer [token 3fa2…]``, the non-secret
    token reference of the audit log) and without cookies or the forwarded client certificate;
    bodies as text (a binary answer, e.g. a PDF, only as its size and type).
    """

    __tablename__ = "qualification_request"
    __table_args__ = (Index("ix_qualification_request_session", "session_id", "id"),)

    #: also the order in which requests were recorded
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("qualification_session.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    method: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    base_url: Mapped[str] = mapped_column(Text)
    request_headers: Mapped[str] = mapped_column(Text)
    request_body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    response_headers: Mapped[str] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(255))
    #: the token as shown: kind and reference, never the token itself
    token_label: Mapped[str] = mapped_column(String(64))
