"""Health endpoints for load balancers and orchestrators: ``/healthz`` (the process runs) and
``/readyz`` (it can serve: the database answers and the MedMij lists are loaded and fresh)."""

from __future__ import annotations

from flask import Flask
from flask import jsonify

from . import lists
from .db import get_database


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
        return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503
