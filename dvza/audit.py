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

from sqlalchemy import bindparam
from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from fhir_api.errors import GrantLapsed
from fhir_api.services import AccessEvent
from fhir_api.sqlcache import STATEMENTS
from oauth.tokens import STILL_VALID
from oauth.tokens import recheck_params

from .access import challenge
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

    def record(self, event: AccessEvent, *, session: Session | None = None) -> None:
        """Store a FHIR access event (``fhir_api.services.AuditSink``) on the request's own connection
        (autocommit: one durable statement), before the answer leaves — fail closed: if this raises,
        the answer is withheld. A read's event carries its grant's ``recheck``: the INSERT then selects its
        row only while the token is still valid (one statement), and none written raises ``GrantLapsed``."""
        values = self._values(
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
        if event.recheck is None:
            key, statement, params = "audit-insert", _INSERT, values
        else:  # written only while the token is still valid as read (oauth.tokens.STILL_VALID)
            key, statement = "audit-insert-if-valid", _INSERT_IF_VALID
            params = {**values, **recheck_params(event.recheck, values["occurred_at"])}
        if session is not None:  # in the caller's transaction; the log line once it commits
            written = self._insert(session.connection(), params, key, statement)
        else:
            connection = self.database.connection()  # autocommit: the INSERT is durable when it returns
            written = STATEMENTS.get(connection, key, lambda: statement).run(
                connection.connection.driver_connection, params)  # type: ignore[union-attr]
        if written != 1:
            description = "The access token was revoked or has expired"
            raise GrantLapsed(description, headers={"WWW-Authenticate": challenge("invalid_token", description)})
        _log_when_committed(_payload(values), session)

    @staticmethod
    def _insert(connection: Connection, params: dict[str, t.Any], key: str = "audit-insert",
                statement: t.Any = None) -> int:
        """The record's INSERT (``_INSERT`` unless another ``statement`` is given under its ``key``) through
        SQLAlchemy, in the caller's transaction; how many rows it wrote."""
        compiled = STATEMENTS.get(connection, key, lambda: _INSERT if statement is None else statement)
        return int(compiled.execute(connection, params).rowcount)

    def _values(self, *, event_type: str, outcome: str, actor: str, **fields: t.Any) -> dict[str, t.Any]:
        actor = redact(actor, self._reference)
        for name in REDACTED_FIELDS[1:]:
            if isinstance(fields.get(name), str):
                fields[name] = redact(fields[name], self._reference)
        values = _clipped({"event_type": event_type, "outcome": outcome, "actor": actor, **fields})
        return {**_EMPTY, **values, "occurred_at": datetime.now(UTC)}

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
        values = self._values(event_type=event_type, outcome=outcome, actor=actor, **fields)
        if session is None:
            with self.database.engine.begin() as connection:
                self._insert(connection, values)
        else:
            self._insert(session.connection(), values)
        _log_when_committed(_payload(values), session)


_EMPTY = {column.name: None for column in AuditRecord.__table__.columns if column.name != "id"}
_INSERT = insert(AuditRecord.__table__).values({name: bindparam(name) for name in _EMPTY})
#: the same record, inserted only if the read's token is still valid: one statement (issue 12, dvza.access)
_INSERT_IF_VALID = insert(AuditRecord.__table__).from_select(
    list(_EMPTY), select(*(bindparam(name, type_=AuditRecord.__table__.c[name].type) for name in _EMPTY))
    .where(STILL_VALID))


def _payload(values: dict[str, t.Any]) -> dict[str, t.Any]:
    payload = {k: v for k, v in values.items() if v is not None}
    payload["occurred_at"] = values["occurred_at"].isoformat()
    return {"occurred_at": payload.pop("occurred_at"), **payload}


def _clipped(values: dict[str, t.Any]) -> dict[str, t.Any]:
    out = {}
    for key, value in values.items():
        length = _LENGTHS.get(key)
        if length is not None and isinstance(value, str) and len(value) > length:
            value = value[: length - 1] + "…"
        out[key] = value
    return out


#: the length of each text column of the audit table (values are cut to fit)
_LENGTHS = {column.name: column.type.length for column in AuditRecord.__table__.columns
            if getattr(column.type, "length", None)}


def _log_when_committed(payload: dict[str, t.Any], session: Session | None) -> None:
    """The log line now (the record is committed), or once ``session`` commits the record with its data."""
    if session is None:
        _log(payload)
    else:
        sa_event.listen(session, "after_commit", lambda _session: _log(payload), once=True)


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
