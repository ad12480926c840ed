"""Staff sign-in for the hospital pages (``/ziekenhuis/inloggen``): who is signed in, the password
check, and throttling of failed attempts.

* :func:`signed_in_user` is the one answer to "which staff member is this": the name in the session,
  only while it is still in ``HOSPITAL_USERS``.
* :func:`check_password` does the same work for every name (OWASP Authentication Cheat Sheet,
  "Authentication Responses"): an unknown name is checked against a dummy hash made with the same
  method and cost as the configured ones, so the answer time does not tell which names exist.
* :func:`init_app` throttles failed sign-ins with Flask-Limiter (OWASP: "Protect Against Automated
  Attacks"): ``SIGN_IN_LIMIT_PER_ACCOUNT`` per typed name and ``SIGN_IN_LIMIT_PER_ADDRESS`` per client
  address, counted only for refused attempts (``deduct_when``: answer 401), in storage every worker
  and host shares (``RATE_LIMIT_STORAGE_URI``, or the database: :mod:`dvza.ratelimit`). Over a limit,
  even the right password is refused (429) until the window ends. Counting after the answer (the only
  way to count refusals alone) means attempts already in flight when the limit is reached still get
  their answer: at most one per gunicorn worker, as sync workers serve one request at a time.
"""

from __future__ import annotations

import collections
import functools
import secrets
import time
import typing as t

from flask import Flask
from flask import Response
from flask import current_app
from flask import request
from flask import session
from flask_limiter import Limiter
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from .. import ratelimit

SESSION_USER = "hospital_user"
LIMITER_KEY = "dvza.sign_in_limiter"
#: the answer of a refused sign-in; only those count towards the limits
REFUSED = 401


def users() -> t.Mapping[str, str]:
    return t.cast("t.Mapping[str, str]", current_app.config.get("HOSPITAL_USERS") or {})


def signed_in_user() -> str | None:
    """The staff member signed in on this session, or None."""
    name = session.get(SESSION_USER)
    if not isinstance(name, str) or name not in users():
        return None
    return name


def _method(password_hash: str) -> str:
    """The Werkzeug method with its cost parameters, e.g. ``scrypt:32768:8:1``."""
    return password_hash.split("$", 1)[0]


@functools.lru_cache(maxsize=8)
def _dummy_hash(method: str | None) -> str:
    password = secrets.token_urlsafe(18)
    return generate_password_hash(password, method=method) if method else generate_password_hash(password)


def check_password(name: str, password: str) -> bool:
    """True when ``name`` is a staff member and ``password`` is theirs; the same work either way."""
    known = users()
    stored = known.get(name)
    if stored is None:
        methods = collections.Counter(_method(h) for h in known.values())
        stored_for_timing = _dummy_hash(methods.most_common(1)[0][0] if methods else None)
        check_password_hash(stored_for_timing, password)
        return False
    return check_password_hash(stored, password)


def sign_in(name: str) -> None:
    """Start the staff session: the session gets a new id (no fixation), then holds the name."""
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None:
        regenerate(session)
    session[SESSION_USER] = name


def sign_out() -> None:
    """End the session entirely (its server-side row is deleted when the answer is saved)."""
    session.clear()


# ------------------------------------------------------------------------------------ throttling
def _account_key() -> str:
    return "account:" + request.form.get("name", "").strip().casefold()[:200]


def _address_key() -> str:
    return "address:" + (request.remote_addr or "unknown")


def _refused(response: Response) -> bool:
    return response.status_code == REFUSED


def retry_after() -> int:
    """Seconds until the breached limit's window ends (for ``Retry-After``)."""
    limiter: Limiter | None = current_app.extensions.get(LIMITER_KEY)
    current = limiter.current_limit if limiter is not None else None
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()))


def init_app(app: Flask, database: t.Any, endpoint: str = "hospital.sign_in") -> Limiter:
    """Throttle ``endpoint`` (POST) per account and per address, on this app's storage."""
    configured = app.config.get("RATE_LIMIT_STORAGE_URI")
    limiter = Limiter(
        key_func=_address_key, app=app, key_prefix="dvza", strategy="fixed-window", headers_enabled=False,
        storage_uri=configured or f"{ratelimit.SCHEME}://",
        storage_options={} if configured else {"database": database},
    )
    app.extensions[LIMITER_KEY] = limiter
    _only_on_blueprint(app, limiter, endpoint.partition(".")[0])
    view = app.view_functions[endpoint]
    for limit, key in ((app.config["SIGN_IN_LIMIT_PER_ACCOUNT"], _account_key),
                       (app.config["SIGN_IN_LIMIT_PER_ADDRESS"], _address_key)):
        view = limiter.limit(limit, key_func=key, methods=["POST"], deduct_when=_refused)(view)
    app.view_functions[endpoint] = view
    return limiter


def _only_on_blueprint(app: Flask, limiter: Limiter, blueprint: str) -> None:
    """Flask-Limiter hooks into every request of the app; only the sign-in is limited, so its check runs
    for that blueprint's requests alone (issue 12: the FHIR read path pays nothing for it)."""
    check = limiter._check_request_limit  # noqa: SLF001 - the hook Flask-Limiter registers app-wide
    hooks = app.before_request_funcs.get(None, [])
    if check in hooks:
        hooks.remove(check)
        app.before_request_funcs.setdefault(blueprint, []).append(check)
