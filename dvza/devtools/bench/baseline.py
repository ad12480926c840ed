"""The baseline the benchmark compares the DVZA against: a Flask app under the same gunicorn settings (the
DVZA's own stack), serving the DVZA's own recorded answers with no other work, so the ratio shows what the
DVZA's code costs on top of its stack.

``BENCH_RECORDING`` names a JSON file ``{"<path?query>": {"json": "...", "xml": "..."}}`` written by
the benchmark. Per request (``BENCH_MODE``):

* ``bytes`` — the recorded bytes as they are (the ceiling: HTTP + gunicorn + Flask-free WSGI);
* ``dumps`` — ``json.dumps`` of the recorded bundle parsed once at start (what a server that keeps
  dicts and serialises per request pays).

``POST /write`` is the write-path baseline: parse the JSON body, insert one row, commit — on the
benchmark's own database (``BENCH_DATABASE_URL``, SQLAlchemy Core, durable commit).
"""

from __future__ import annotations

import json
import os
import uuid

from flask import Flask
from flask import Response
from flask import request

CONTENT_TYPE = {"json": "application/fhir+json;charset=utf-8", "xml": "application/fhir+xml;charset=utf-8"}


def create_app() -> Flask:
    """A Flask app (the DVZA's own framework and gunicorn settings: the stack's ceiling)."""
    with open(os.environ["BENCH_RECORDING"], encoding="utf-8") as handle:
        recording: dict[str, dict[str, str]] = json.load(handle)
    encoded = {path: {fmt: text.encode("utf-8") for fmt, text in answers.items()}
               for path, answers in recording.items()}
    parsed = {path: json.loads(answers["json"]) for path, answers in recording.items() if "json" in answers}
    mode = os.environ.get("BENCH_MODE", "bytes")
    app = Flask(__name__)
    engine = None
    if os.environ.get("BENCH_DATABASE_URL"):
        from sqlalchemy import create_engine
        from sqlalchemy import text

        engine = create_engine(os.environ["BENCH_DATABASE_URL"])
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        insert = text("INSERT INTO bench_write (id, body) VALUES (:id, :body)")

    @app.post("/write")
    def write() -> Response:
        body = request.get_data()
        json.loads(body)
        with engine.begin() as connection:  # type: ignore[union-attr]
            connection.execute(insert, {"id": str(uuid.uuid4()), "body": body.decode("utf-8")})
        return Response(b"{}", 201, content_type="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b'{"status":"ok"}', content_type="application/json")

    @app.get("/fhir/<path:rest>")
    def recorded(rest: str) -> Response:
        key = request.full_path.rstrip("?")
        fmt = "xml" if "xml" in request.headers.get("Accept", "") else "json"
        answers = encoded.get(key)
        if answers is None or fmt not in answers:
            return Response(status=404)
        data = json.dumps(parsed[key]).encode("utf-8") if mode == "dumps" and fmt == "json" else answers[fmt]
        return Response(data, content_type=CONTENT_TYPE[fmt])

    return app
