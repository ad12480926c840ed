"""Health endpoints for load balancers and orchestrators: ``/healthz`` (the process runs) and
``/readyz`` (it can serve: the database answers and the MedMij lists are loaded and fresh).

``/readyz`` on the public binds answers with the status only (``ready`` / ``unavailable``): its
details (file paths, list URLs, error texts) are for operators, on the internal bind
(:mod:`dvza.internal`) or for a caller that sends the readiness key in ``X-Readyz-Key``
(``READYZ_KEY_SHA256`` holds its SHA-256; OWASP: no internal details to anonymous callers).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask
from flask import jsonify
from flask import request

from . import lists
from .db import get_database
from .internal import is_internal

KEY_HEADER = "X-Readyz-Key"


def _may_see_details(app: Flask) -> bool:
    if is_internal(request):
        return True
    expected = app.config.get("READYZ_KEY_SHA256")
    sent = request.headers.get(KEY_HEADER, "")
    if not expected or not sent:
        return False
    return hmac.compare_digest(hashlib.sha256(sent.encode("utf-8")).hexdigest(), str(expected).lower())


def init_app(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz():  # type: ignore[no-untyped-def]
        checks: dict[str, dict[str, object]] = {}
        try:
            get_database(app).check()
            checks["database"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
            checks["database"] = {"ok": False, "error": type(exc).__name__}
        checks["lists"] = lists.readiness(app)
        ready = all(c["ok"] for c in checks.values())
        status = "ready" if ready else "unavailable"
        body = jsonify(status=status, checks=checks) if _may_see_details(app) else jsonify(status=status)
        body.headers["Cache-Control"] = "no-store"
        return body, 200 if ready else 503
