"""Client qualification: the DVZA plays Nictiz's test server for a PGO (issue 15).

A vendor starts a session for one or more Nictiz client-role sets (``dvza conformance client start``
or the staff page ``/ziekenhuis/kwalificatie``), points the PGO at this DVZA, does the scenarios with
the Nictiz test persons and ends the session; the DVZA records the session's FHIR traffic and
evaluates the client-role TestScripts against it.

* :mod:`.recorder` — WSGI middleware that records the traffic of the session's tokens;
* :mod:`.sessions` — starting, stepping and ending sessions, setup/teardown, evaluation;
* :mod:`.pages` — the staff pages; :mod:`.cli` — ``dvza conformance client``;
* :mod:`.models` — the tables; :mod:`.sets` — the Nictiz sets and test persons.

Everything here exists only in qualification mode (``QUALIFICATION_MODE``), never in production.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    """In qualification mode: record FHIR traffic for sessions and offer the staff pages."""
    if not app.config.get("QUALIFICATION_MODE"):
        return
    from . import pages
    from .recorder import QualificationRecorder
    from .sessions import QualificationService

    app.extensions["dvza.qualification"] = QualificationService(app)
    app.wsgi_app = QualificationRecorder(  # type: ignore[method-assign]
        app.wsgi_app, app.extensions["dvza.db"], fhir_prefix=app.config["FHIR_BASE_PATH"],
        max_body_bytes=app.config["MAX_BODY_BYTES"], client_cert_header=app.config["CLIENT_CERT_HEADER"])
    app.register_blueprint(pages.bp)
