"""Access tokens: issuing, hashing, checking (introspection for the resource server).

MedMij rules: tokens are UUID version 4, random, without meaning, never two identical valid ones
(UCI "ZA OAuth"; 2.0.0 "Verplichting controle op uniciteit"); an access token is valid 900 s.
Only ``sha256(token)`` is stored; the unique index on the hash enforces uniqueness.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import typing as t
import uuid
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from sqlalchemy import bindparam
from sqlalchemy import exists
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .errors import InvalidTokenError
from .models import Token

QUALIFICATION = "qualification"
ACCESS = "access"
REFRESH = "refresh"


def hash_secret(value: str) -> str:
    """SHA-256 hex of a code or token: what is stored and looked up."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def token_ref(token_hash: str) -> str:
    """A short, non-secret reference to a token for logs and audit records."""
    return token_hash[:12]


def new_secret() -> str:
    """A fresh UUIDv4 (MedMij: "slechts gebruik gemaakt van UUID Version 4", random)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; they are stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What the resource server learns about a valid token."""

    token_id: str
    token_ref: str
    kind: str
    patient_id: str
    client_id: str | None
    gegevensdiensten: frozenset[str]
    scope: str
    cnf_x5t_s256: str | None
    expires_at: datetime | None


def introspect(
    connection: Connection,
    token: str,
    *,
    client_thumbprint: str | None = None,
    allow_qualification: bool = False,
    now: datetime | None = None,
) -> TokenInfo:
    """Check an access token presented on a resource request (RFC 6750 §3.1 ``invalid_token``).

    Valid means: known, an access (or, in qualification mode, a qualification) token, not expired
    (900 s, core.tknint), not revoked, and — when bound to a certificate — presented over a TLS
    connection with that client certificate (RFC 8705 §3: the resource server "MUST verify that the
    certificate matches the certificate-bound access token").
    """
    row = _lookup(connection, hash_secret(token))
    if row is None:
        raise InvalidTokenError("The access token is unknown")
    if row.revoked_at is not None:
        raise InvalidTokenError("The access token has been revoked")
    info = TokenInfo(
        token_id=row.id,
        token_ref=token_ref(row.token_hash),
        kind=row.kind,
        patient_id=row.patient_id,
        client_id=row.client_id,
        gegevensdiensten=frozenset(row.gegevensdiensten.split()),
        scope=row.scope,
        cnf_x5t_s256=row.cnf_x5t_s256,
        expires_at=aware(_as_datetime(row.expires_at)),
    )
    check_presented(info, client_thumbprint=client_thumbprint, allow_qualification=allow_qualification, now=now)
    return info


def check_presented(info: TokenInfo, *, client_thumbprint: str | None, allow_qualification: bool,
                    now: datetime | None = None) -> None:
    """The checks of :func:`introspect` that need no database: the kind of token, its expiry and its
    certificate binding (RFC 8705 §3) — for a token whose row was read earlier (``dvza.access``'s grant
    cache; whether it was revoked since is confirmed by :data:`STILL_VALID`)."""
    if info.kind == QUALIFICATION:
        if not allow_qualification:
            raise InvalidTokenError("Qualification tokens are only accepted in qualification mode")
    elif info.kind != ACCESS:
        raise InvalidTokenError("This is not an access token")
    if info.expires_at is not None and info.expires_at <= (now or utcnow()):
        raise InvalidTokenError("The access token has expired")
    if info.cnf_x5t_s256:
        if not client_thumbprint or not hmac.compare_digest(info.cnf_x5t_s256, client_thumbprint):
            raise InvalidTokenError("The access token is bound to another client certificate")


def recheck_params(info: TokenInfo, now: datetime) -> dict[str, t.Any]:
    """The values of :data:`STILL_VALID`'s parameters: the token row as ``info`` read it, at ``now``."""
    return {"recheck_token_id": info.token_id, "recheck_patient_id": info.patient_id,
            "recheck_gegevensdiensten": " ".join(sorted(info.gegevensdiensten)),  # as stored
            "recheck_kind": info.kind, "recheck_cnf": info.cnf_x5t_s256, "recheck_now": now}


def _lookup(connection: Connection, token_hash: str) -> t.Any:
    """The token's row by its hash: one statement per resource request, compiled once per dialect and
    handed to the driver directly (issue 12: no ORM, no per-call statement construction)."""
    dialect = connection.dialect
    compiled = _COMPILED.get(dialect.name)
    if compiled is None:
        compiled = _COMPILED[dialect.name] = _INTROSPECT.compile(dialect=dialect)
    params: t.Any = (token_hash,) if compiled.positional else {"token_hash": token_hash}
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:  # a read on the driver's cursor: the pool rolls back what it leaves open
        cursor.execute(compiled.string, params)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else _TokenRow._make(row)


def _as_datetime(value: t.Any) -> datetime | None:
    """A timestamp as the driver returns it: a datetime (PostgreSQL) or SQLAlchemy's text (SQLite)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


_COMPILED: dict[str, t.Any] = {}
_TOKEN_COLUMNS = ("id", "token_hash", "kind", "patient_id", "client_id", "gegevensdiensten", "scope", "cnf_x5t_s256",
                  "expires_at", "revoked_at")
_TokenRow = collections.namedtuple("_TokenRow", _TOKEN_COLUMNS)
_TOKENS = Token.__table__.c
#: one prepared statement (Core, no ORM unit of work: issue 12) for every resource request
_INTROSPECT = select(*(_TOKENS[name] for name in _TOKEN_COLUMNS)).where(_TOKENS.token_hash == bindparam("token_hash"))


#: A condition that holds while a token read earlier is still valid as read: not revoked (RFC 7009 §2, consent
#: withdrawn), not expired, still for the same patient and gegevensdiensten (kind and certificate binding never
#: change today; compared all the same, so a future change to them cannot slip past). The application puts it
#: in the statement that writes a read's audit record (``dvza.audit``), so that the check and the record are one
#: statement at the moment the answer leaves: revocation takes effect on the next request on every worker, with
#: no per-process state to clear (issue 12).
STILL_VALID = exists().where(
    _TOKENS.id == bindparam("recheck_token_id"),
    _TOKENS.revoked_at.is_(None),
    _TOKENS.patient_id == bindparam("recheck_patient_id"),
    _TOKENS.gegevensdiensten == bindparam("recheck_gegevensdiensten"),
    _TOKENS.kind == bindparam("recheck_kind"),
    _TOKENS.cnf_x5t_s256.is_not_distinct_from(bindparam("recheck_cnf", type_=_TOKENS.cnf_x5t_s256.type)),
    or_(_TOKENS.expires_at.is_(None), _TOKENS.expires_at > bindparam("recheck_now", type_=_TOKENS.expires_at.type)),
)


def store_token(
    session: Session,
    value: str,
    *,
    kind: str,
    patient_id: str,
    gegevensdiensten: t.Iterable[str],
    client_id: str | None = None,
    scope: str = "",
    lifetime: timedelta | None = None,
    code_id: str | None = None,
    consent_id: str | None = None,
    cnf_x5t_s256: str | None = None,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> Token:
    """Persist a token by its hash (the caller commits)."""
    now = now or utcnow()
    row = Token(
        id=str(uuid.uuid4()), token_hash=hash_secret(value), kind=kind, client_id=client_id,
        patient_id=patient_id, scope=scope, gegevensdiensten=" ".join(sorted(set(gegevensdiensten))),
        issued_at=now, expires_at=now + lifetime if lifetime else None, code_id=code_id,
        consent_id=consent_id, cnf_x5t_s256=cnf_x5t_s256, correlation_id=correlation_id,
    )
    session.add(row)
    return row


def revoke_tokens(session: Session, *where: t.Any, now: datetime, reason: str) -> int:
    """Revoke the tokens matching ``where`` that are not revoked yet (RFC 7009 §2: invalid from then on, on every
    worker: ``introspect`` and ``STILL_VALID`` refuse them); how many. The caller commits."""
    return session.execute(
        update(Token).where(*where, Token.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason).execution_options(synchronize_session=False)).rowcount or 0


def import_qualification_token(session: Session, value: str, *, patient_id: str,
                               gegevensdiensten: t.Iterable[str]) -> Token:
    """Create or re-bind a pre-issued qualification token (Nictiz QualificationTokens.json)."""
    existing = session.scalar(select(Token).where(Token.token_hash == hash_secret(value)))
    if existing is not None:
        if existing.kind != QUALIFICATION:
            raise ValueError("A token with this value exists and is not a qualification token")
        existing.patient_id = patient_id
        existing.gegevensdiensten = " ".join(sorted(set(gegevensdiensten)))
        existing.revoked_at = None
        return existing
    return store_token(session, value, kind=QUALIFICATION, patient_id=patient_id,
                       gegevensdiensten=gegevensdiensten, scope="qualification")
