"""Who the signed-in hospital staff member is — the one place the staff pages ask.

The sign-in itself is the hospital page's (:mod:`dvza.returnqueue.pages` and :mod:`dvza.returnqueue.signin`,
``/ziekenhuis/inloggen``: throttled, server-side session). Other staff pages (e.g. client qualification)
use :func:`signed_in_staff` / :func:`require_staff` and the same CSRF token (OWASP synchronizer
token), so a change to how staff sign in is made here and on the sign-in page only.
"""

from __future__ import annotations

import typing as t

from flask import abort
from flask import redirect
from flask import url_for

from .csrf import SessionCsrf
from .returnqueue import signin

#: the CSRF token of all staff pages (the sign-out form in their header uses it too)
STAFF_CSRF = SessionCsrf("hospital_csrf")


def signed_in_staff() -> str | None:
    """The name of the signed-in staff member, if that name is (still) a configured staff user."""
    return signin.signed_in_user()


def require_staff() -> str:
    """The signed-in staff member; otherwise the browser is sent to the sign-in page (303)."""
    user = signed_in_staff()
    if user is None:
        abort(redirect(url_for("hospital.sign_in"), code=303))
    return t.cast(str, user)
