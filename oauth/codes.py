"""Authorization codes: issued after consent, exchanged once at the token endpoint.

MedMij (UCI "ZA OAuth", core.tknint.202–204): a UUIDv4, valid 900 s, offered only once, discarded
after one presentation, and only for the client it was issued to. RFC 6749 §4.1.2: "If an
authorization code is used more than once, the authorization server MUST deny the request and SHOULD
revoke (when possible) all tokens previously issued based on that authorization code."

Consumption is one statement — ``UPDATE … SET used_at = now WHERE code_hash = :h AND used_at IS NULL
RETURNING …`` (design-references.md §1.7) — so of two simultaneous token requests exactly one wins,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import typing as t
import uuid
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from .models import AuthorizationCode
from .models import Token
from .tokens import aware
from .tokens import hash_secret
from .tokens import new_secret
from .tokens import revoke_tokens
from .tokens import utcnow


def issue_code(session: Session, *, flow_id: str, consent_id: str, client_id: str, redirect_uri: str, scope: str,
               patient_id: str, gegevensdiensten: t.Iterable[str], correlation_id: str | None,
               lifetime: timedelta, now: datetime | None = None) -> str:
    """Store a new code (hashed) and return its value; the caller commits."""
    now = now or utcnow()
    value = new_secret()
    session.add(AuthorizationCode(
        id=str(uuid.uuid4()), code_hash=hash_secret(value), flow_id=flow_id, consent_id=consent_id,
        client_id=client_id, redirect_uri=redirect_uri, scope=scope, patient_id=patient_id,
        gegevensdiensten=" ".join(sorted(set(gegevensdiensten))), correlation_id=correlation_id,
        created_at=now, expires_at=now + lifetime,
    ))
    return value


class CodeReplayed(Exception):
    """The code was already used; the tokens it produced have been revoked."""

    def __init__(self, code: AuthorizationCode, revoked: int):
        super().__init__("authorization code replayed")
        self.code = code
        self.revoked = revoked


class CodeOfAnotherClient(Exception):
    """The code exists but was issued to another client; it stays usable for its own client."""


def consume_code(session: Session, value: str, *, client_id: str, now: datetime | None = None
                 ) -> AuthorizationCode | None:
    """Mark the code used by ``client_id`` and return it — or None if unknown. A code of another
    client raises CodeOfAnotherClient (and is not consumed). A second use raises CodeReplayed after
    revoking every token issued from the code (in the caller's transaction)."""
    now = now or utcnow()
    digest = hash_secret(value)
    statement = (
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == digest, AuthorizationCode.used_at.is_(None),
               AuthorizationCode.client_id == client_id)
        .values(used_at=now)
        .returning(AuthorizationCode)
        .execution_options(synchronize_session=False)
    )
    code = session.scalar(statement)
    if code is not None:
        return code
    used = session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_hash == digest))
    if used is None:
        return None
    if used.client_id != client_id:
        raise CodeOfAnotherClient()
    revoked = revoke_tokens_of_code(session, used.id, now=now)
    raise CodeReplayed(used, revoked)


def revoke_tokens_of_code(session: Session, code_id: str, *, now: datetime, reason: str = "code_replay") -> int:
    return revoke_tokens(session, Token.code_id == code_id, now=now, reason=reason)


def is_expired(code: AuthorizationCode, now: datetime | None = None) -> bool:
    expires_at = aware(code.expires_at)
    return expires_at is None or expires_at <= (now or utcnow())
