"""Rate-limit counters in the app's own database, for Flask-Limiter (the ``limits`` library).

Throttling must hold across gunicorn workers and hosts, so the counters cannot live in process
memory. With ``RATE_LIMIT_STORAGE_URI`` (e.g. ``redis://…``) Flask-Limiter uses that storage; without it
this storage keeps them in the ``rate_limit_counter`` table of the database every host already shares.

It is a ``limits`` storage (``limits.storage.Storage``: registering a subclass with a
``STORAGE_SCHEME`` makes ``dvzadb://`` usable as a storage URI) for the fixed-window strategy: one row
per key with a count and the end of its window, incremented atomically with ``INSERT … ON CONFLICT DO
UPDATE … RETURNING`` (SQLite ≥ 3.35 and PostgreSQL alike). Keys are stored as SHA-256: they contain the
name someone typed, which may be anything (even a password typed in the wrong field).
"""

from __future__ import annotations

import hashlib
import threading
import time
import typing as t

from limits.storage import Storage
from sqlalchemy import Float
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from .models import AppBase

if t.TYPE_CHECKING:
    from .db import Database

SCHEME = "dvzadb"


class RateLimitCounter(AppBase):
    """One fixed-window counter (``limits`` key → hits in the window that ends at ``expires_at``)."""

    __tablename__ = "rate_limit_counter"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    #: end of the window, seconds since the epoch (``time.time()``, as the ``limits`` storages use)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class DatabaseStorage(Storage):
    """``limits`` storage on the app's database (``dvzadb://``; the :class:`~dvza.db.Database` is passed
    as the ``database`` storage option)."""

    STORAGE_SCHEME: t.ClassVar[list[str]] = [SCHEME]  # type: ignore[misc]
    #: expired rows are deleted at most this often (seconds, per process)
    cleanup_interval = 300.0
    #: wall-clock seconds, as the ``limits`` storages count (a test can replace it)
    clock: t.Callable[[], float] = staticmethod(time.time)  # type: ignore[assignment]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *, database: Database,
                 **options: t.Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.database = database
        self._last_cleanup = 0.0
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def _insert(self) -> t.Any:
        return postgresql_insert if self.database.is_postgresql else sqlite_insert

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the key's window (a new window when the old one has ended); the new count."""
        now = self.clock()
        table = RateLimitCounter.__table__
        ended = table.c.expires_at <= now
        statement = (
            self._insert()(table).values(key_hash=_digest(key), count=amount, expires_at=now + expiry)
            .on_conflict_do_update(index_elements=[table.c.key_hash], set_={
                "count": case((ended, amount), else_=table.c.count + amount),
                "expires_at": case((ended, now + expiry), else_=table.c.expires_at),
            })
            .returning(table.c.count)
        )
        with self.database.engine.begin() as connection:
            count = int(connection.execute(statement).scalar_one())
        self._cleanup(now)
        return count

    def _row(self, key: str) -> tuple[int, float] | None:
        with self.database.engine.connect() as connection:
            row = connection.execute(select(RateLimitCounter.count, RateLimitCounter.expires_at)
                                     .where(RateLimitCounter.key_hash == _digest(key))).first()
        if row is None or row.expires_at <= self.clock():
            return None
        return int(row.count), float(row.expires_at)

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else self.clock()

    def check(self) -> bool:
        try:
            with self.database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self.database.engine.begin() as connection:
            return int(connection.execute(delete(RateLimitCounter)).rowcount)

    def clear(self, key: str) -> None:
        with self.database.engine.begin() as connection:
            connection.execute(delete(RateLimitCounter).where(RateLimitCounter.key_hash == _digest(key)))

    def _cleanup(self, now: float) -> None:
        if time.monotonic() - self._last_cleanup < self.cleanup_interval or not self._lock.acquire(False):
            return
        try:
            self._last_cleanup = time.monotonic()
            with self.database.engine.begin() as connection:
                connection.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at <= now))
        finally:
            self._lock.release()
