"""The audit log: every data access and security event, appended in its own transaction.

Records go to the append-only ``audit_event`` table (committed independently of the request, so
a failed or rolled-back request is still logged) and, as JSON lines, to the ``dvza.audit`` logger
(and ``AUDIT_LOG_FILE`` when configured) for shipping to a SIEM. If the record cannot be written
the FHIR response is withheld (see ``fhir_api.api``): no unlogged access (NEN 7513).

The free-text fields a client or person can fill (actor, query, resource ids, detail) pass
:func:`dvza.redaction.redact` first: a BSN someone sent is stored as a keyed reference, never as is.
"""

from __future__ import annotations

import json
import logging
import typing as t
from datetime import UTC
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.orm import Session

from fhir_api.services import AccessEvent

from .models import AuditRecord
from .redaction import audit_reference
from .redaction import redact

if t.TYPE_CHECKING:
    from .db import Database

logger = logging.getLogger("dvza.audit")


#: fields whose text may come from outside (a PGO's query, a typed name): BSNs are replaced in these
REDACTED_FIELDS = ("actor", "query", "resource_ids", "detail")


class AuditLog:
    def __init__(self, database: Database, *, bsn_key: str):
        self.database = database
        self._reference = audit_reference(bsn_key)

    def record(self, event: AccessEvent) -> None:
        """Store a FHIR access event (``fhir_api.services.AuditSink``)."""
        self.write(
            event_type=f"fhir.{event.action}",
            outcome=str(event.status),
            actor=f"pgo:{event.client_id}" if event.client_id else "pgo",
            patient_id=event.patient_id,
            client_id=event.client_id,
            token_ref=event.token_ref,
            gegevensdiensten=" ".join(event.gegevensdiensten) or None,
            resource_type=event.resource_type,
            resource_ids=" ".join(event.resource_ids)[:20000] or None,
            query=event.query or None,
            request_id=event.request_id,
            correlation_id=event.correlation_id,
            remote_addr=event.remote_addr,
            detail=event.detail or None,
        )

    def write(self, *, event_type: str, outcome: str, actor: str, session: Session | None = None,
              **fields: t.Any) -> None:
        """Append one record (any subsystem: oauth, queue, admin).

        Without ``session`` the record is committed at once in its own transaction. With ``session``
        it joins the caller's transaction — committed with the data it describes or not at all — and
        its log line is written after that commit (e.g. the token endpoint: no token without its
        record, and the record cannot fail after the token is committed).

        Values longer than their column are cut (a hostile client id or header must never make the
        audit write fail); the request itself refuses such values with its protocol's error.
        """
        now = datetime.now(UTC)
        actor = redact(actor, self._reference)
        for name in REDACTED_FIELDS[1:]:
            if isinstance(fields.get(name), str):
                fields[name] = redact(fields[name], self._reference)
        values = _clipped({"event_type": event_type, "outcome": outcome, "actor": actor, **fields})
        record = AuditRecord(occurred_at=now, **values)
        payload = {"occurred_at": now.isoformat(), **{k: v for k, v in values.items() if v is not None}}
        if session is None:
            with self.database.sessionmaker() as own:
                own.add(record)
                own.commit()
            _log(payload)
            return
        session.add(record)
        event.listen(session, "after_commit", lambda _session: _log(payload), once=True)


def _clipped(values: dict[str, t.Any]) -> dict[str, t.Any]:
    columns = AuditRecord.__table__.columns
    out = {}
    for key, value in values.items():
        length = getattr(columns[key].type, "length", None)
        if isinstance(value, str) and length is not None and len(value) > length:
            value = value[: length - 1] + "…"
        out[key] = value
    return out


def _log(payload: dict[str, t.Any]) -> None:
    logger.info("%s %s actor=%s patient=%s", payload["event_type"], payload["outcome"], payload["actor"],
                payload.get("patient_id") or "-", extra={"audit": payload})


class JsonLinesHandler(logging.FileHandler):
    """Writes the ``audit`` payload of each record as one JSON line."""

    def emit(self, record: logging.LogRecord) -> None:
        payload = getattr(record, "audit", None)
        if payload is None:
            return
        record.msg, record.args = json.dumps(payload, ensure_ascii=False, default=str), ()
        super().emit(record)
