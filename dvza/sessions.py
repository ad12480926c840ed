"""Server-side browser sessions for the person-facing pages (authorization flow, *Mijn toestemmingen*,
the hospital's pages), following the OWASP Session Management Cheat Sheet:

* the cookie holds only a random session id (256 bits); the database holds its SHA-256, never the id
  itself, so a copy of the table cannot be replayed as cookies;
* logout deletes the session (``session.clear()``): a cookie copied before "Uitloggen" opens nothing;
* an idle timeout (``SESSION_IDLE_TIMEOUT``, default 15 minutes) and an absolute lifetime
  (``SESSION_ABSOLUTE_LIFETIME``, default 8 hours) end every session on the server;
* the id is renewed after authentication (:meth:`ServerSessionInterface.regenerate`, the name
  Flask-Session uses, so code that does not know this module can call it), so an id planted before
  sign-in (session fixation) is worthless afterwards.

Flask-Session's SQLAlchemy backend needs Flask-SQLAlchemy and stores ids in the clear, with neither an
idle timeout nor an absolute lifetime; hence this small interface on the app's own database. Rows are
written in their own transaction (like the audit log), never in the request's.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import typing as t
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from flask import Flask
from flask import Request
from flask import Response
from flask.sessions import SecureCookieSession
from flask.sessions import SessionInterface
from flask.sessions import session_json_serializer
from sqlalchemy import DateTime
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import delete
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from .models import AppBase

if t.TYPE_CHECKING:
    from .db import Database


class BrowserSession(AppBase):
    """One browser session. ``expires_at`` is the earlier of the idle deadline and the absolute end."""

    __tablename__ = "browser_session"

    #: SHA-256 (hex) of the id in the cookie
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: the session's values (Flask's tagged JSON)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ServerSession(SecureCookieSession):
    """The session values, plus the id they are stored under (None: not stored yet)."""

    def __init__(self, initial: t.Any = None, *, sid: str | None = None, created_at: datetime | None = None,
                 last_seen_at: datetime | None = None, ended: bool = False) -> None:
        super().__init__(initial)
        self.sid = sid
        self.created_at = created_at
        self.last_seen_at = last_seen_at
        #: the browser sent a cookie whose session no longer exists (logged out, timed out)
        self.ended = ended
        self.regenerate_requested = False


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def hash_id(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


class ServerSessionInterface(SessionInterface):
    """Flask's session interface on the ``browser_session`` table."""

    serializer = session_json_serializer
    #: a session read within this time of its last write is not written again just to move the idle deadline
    touch_interval = timedelta(seconds=30)
    #: how often (per process) expired rows are deleted
    cleanup_interval = 300.0

    def __init__(self, database: Database, *, idle_timeout: timedelta, absolute_lifetime: timedelta) -> None:
        self.database = database
        self.idle_timeout = idle_timeout
        self.absolute_lifetime = absolute_lifetime
        self._last_cleanup = 0.0
        self._cleanup_lock = threading.Lock()

    # ------------------------------------------------------------------------------------- reading
    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if not sid:
            return ServerSession()
        now = _utcnow()
        with self.database.sessionmaker() as db:
            row = db.get(BrowserSession, hash_id(sid))
            if row is None:
                return ServerSession(ended=True)
            if _aware(row.expires_at) <= now:
                db.delete(row)
                db.commit()
                return ServerSession(ended=True)
            try:
                values = self.serializer.loads(row.data)
            except ValueError:
                values = {}
            return ServerSession(values, sid=sid, created_at=_aware(row.created_at),
                                 last_seen_at=_aware(row.last_seen_at))

    # ------------------------------------------------------------------------------------- writing
    def regenerate(self, session: t.Any) -> None:
        """Give the session a new id at the end of this request (after sign-in); the old id stops working."""
        if isinstance(session, ServerSession):
            session.regenerate_requested = True

    def end(self, session: t.Any) -> None:
        """End the session now: all its values go, and the row is deleted when the response is saved."""
        session.clear()

    def _expires(self, created_at: datetime, now: datetime) -> datetime:
        return min(created_at + self.absolute_lifetime, now + self.idle_timeout)

    def save_session(self, app: Flask, session: t.Any, response: Response) -> None:
        if not isinstance(session, ServerSession):
            return
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        accessed = session.accessed
        if accessed:
            response.vary.add("Cookie")
        now = _utcnow()
        if not session:
            if session.sid is not None:
                self._delete(session.sid)
            if session.sid is not None or session.ended:
                response.delete_cookie(name, domain=domain, path=path, secure=self.get_cookie_secure(app),
                                       httponly=self.get_cookie_httponly(app),
                                       samesite=self.get_cookie_samesite(app))
            return
        data = self.serializer.dumps(dict(session))
        if session.sid is None or session.regenerate_requested:
            if session.sid is not None:
                self._delete(session.sid)
            sid = secrets.token_urlsafe(32)
            with self.database.sessionmaker() as db:
                db.add(BrowserSession(id_hash=hash_id(sid), data=data, created_at=now, last_seen_at=now,
                                      expires_at=self._expires(now, now)))
                db.commit()
            session.sid, session.created_at, session.last_seen_at = sid, now, now
            session.regenerate_requested = False
            # no Expires: the cookie ends with the browser; the server ends the session sooner
            response.set_cookie(name, sid, domain=domain, path=path, secure=self.get_cookie_secure(app),
                                httponly=self.get_cookie_httponly(app), samesite=self.get_cookie_samesite(app))
            self._cleanup(now)
            return
        if session.modified or (accessed and session.last_seen_at is not None
                                and now - session.last_seen_at >= self.touch_interval):
            created = session.created_at or now
            values: dict[str, t.Any] = {"last_seen_at": now, "expires_at": self._expires(created, now)}
            if session.modified:
                values["data"] = data
            with self.database.sessionmaker() as db:
                # a session deleted meanwhile (logout in another tab) stays deleted: no upsert
                db.execute(update(BrowserSession).where(BrowserSession.id_hash == hash_id(session.sid))
                           .values(**values))
                db.commit()

    def _delete(self, sid: str) -> None:
        with self.database.sessionmaker() as db:
            db.execute(delete(BrowserSession).where(BrowserSession.id_hash == hash_id(sid)))
            db.commit()

    def _cleanup(self, now: datetime) -> None:
        """Delete expired rows, at most once per :attr:`cleanup_interval` in this process."""
        if time.monotonic() - self._last_cleanup < self.cleanup_interval or not self._cleanup_lock.acquire(False):
            return
        try:
            self._last_cleanup = time.monotonic()
            with self.database.sessionmaker() as db:
                db.execute(delete(BrowserSession).where(BrowserSession.expires_at <= now))
                db.commit()
        finally:
            self._cleanup_lock.release()


def init_app(app: Flask, database: Database) -> ServerSessionInterface:
    if app.config.get("SESSION_COOKIE_NAME") in (None, "session"):  # Flask's default name says nothing
        app.config["SESSION_COOKIE_NAME"] = "dvza_session"
    interface = ServerSessionInterface(
        database, idle_timeout=timedelta(seconds=app.config["SESSION_IDLE_TIMEOUT"]),
        absolute_lifetime=timedelta(seconds=app.config["SESSION_ABSOLUTE_LIFETIME"]),
    )
    app.session_interface = interface
    return interface
