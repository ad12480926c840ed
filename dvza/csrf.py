"""CSRF protection for the app's own forms (hospital page, PGO simulator): the synchronizer token
pattern (OWASP CSRF Prevention Cheat Sheet): a random token in the signed session cookie, repeated
in every form as ``csrf_token`` and compared in constant time on POST.

The authorization server binds its tokens to the authorization flow instead (``oauth.server``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import abort
from flask import request
from flask import session


@dataclass(frozen=True, slots=True)
class SessionCsrf:
    #: the session key that holds the token
    key: str

    def token(self) -> str:
        """The session's token, made on first use."""
        if self.key not in session:
            session[self.key] = secrets.token_urlsafe(24)
        return str(session[self.key])

    def check(self) -> None:
        """400 unless the form's ``csrf_token`` equals the session's token."""
        sent = request.form.get("csrf_token", "")
        if not sent or not secrets.compare_digest(sent, str(session.get(self.key, ""))):
            abort(400)
