"""Per-login state of the identity-provider adapters, kept server-side and taken at most once.

A login adapter that sends the browser to an identity provider must remember what it asked for
(the SAML AuthnRequest ID, the OIDC ``nonce`` and PKCE ``code_verifier``) until the browser comes
back. :class:`LoginStates` keeps that in the database (``oauth_login_state``) under a random handle:

* the handle goes out as SAML ``RelayState`` / OIDC ``state`` and is also put in the signed session
  cookie, so an answer only counts in the browser that started the login (OpenID Connect Core
  §3.1.2.1 and RFC 6749 §10.12: CSRF protection of the redirection endpoint);
* only the handle's SHA-256 is stored, and :meth:`LoginStates.take` deletes the row as it reads it,
  so a replayed artifact, assertion or code finds nothing (SAML Bindings §3.6.5.2, RFC 6819 §4.4.1.1);
* rows expire (a login has ``lifetime`` to complete) and expired rows are purged.

The BSN never goes in here: it is only known after the answer has been checked.
"""

from __future__ import annotations

import json
import secrets
import typing as t
from datetime import timedelta

from flask import session as browser
from sqlalchemy import delete
from sqlalchemy import select

from .models import LoginState
from .tokens import aware
from .tokens import hash_secret
from .tokens import utcnow

if t.TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: how long a person may take at the identity provider
DEFAULT_LIFETIME = timedelta(minutes=15)


class LoginStates:
    """Server-side, single-use state for one adapter (``adapter`` names it in the table and the cookie)."""

    def __init__(self, session: t.Callable[[], Session], adapter: str, lifetime: timedelta = DEFAULT_LIFETIME):
        self._session = session
        self.adapter = adapter
        self.lifetime = lifetime

    @property
    def _cookie_key(self) -> str:
        return f"oauth_login_{self.adapter}"

    def begin(self, data: t.Mapping[str, t.Any]) -> str:
        """Store ``data`` for a new login; returns the handle to send to the identity provider."""
        handle = secrets.token_urlsafe(32)
        now = utcnow()
        session = self._session()
        session.execute(delete(LoginState).where(LoginState.expires_at < now)
                        .execution_options(synchronize_session=False))
        session.add(LoginState(handle_hash=hash_secret(handle), adapter=self.adapter, data=json.dumps(dict(data)),
                               expires_at=now + self.lifetime))
        session.commit()
        browser[self._cookie_key] = handle
        return handle

    def take(self, handle: str | None) -> dict[str, t.Any] | None:
        """The data stored under ``handle`` — only when this browser started that login, it has not
        expired and nobody took it before (the row is deleted here, atomically: of two concurrent
        takes only one wins). ``None`` otherwise."""
        expected = browser.pop(self._cookie_key, None)
        if not handle or not isinstance(expected, str) or not secrets.compare_digest(handle, expected):
            return None
        key = hash_secret(handle)
        session = self._session()
        row = session.scalar(select(LoginState).where(LoginState.handle_hash == key,
                                                      LoginState.adapter == self.adapter))
        if row is None:
            session.rollback()
            return None
        data, expires_at = row.data, aware(row.expires_at)
        deleted = session.execute(delete(LoginState).where(LoginState.handle_hash == key)
                                  .execution_options(synchronize_session=False)).rowcount
        session.commit()
        if deleted != 1 or expires_at is None or expires_at <= utcnow():
            return None
        return t.cast(dict[str, t.Any], json.loads(data))
