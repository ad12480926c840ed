"""Recording the FHIR traffic of qualification sessions: a WSGI middleware around the whole app.

Installed only in qualification mode (``QUALIFICATION_MODE``; never in production). For a request to
the FHIR base while a session is active it keeps the request body (up to ``MAX_BODY_BYTES``) and the
answer; after the app has answered it asks whose token the request carried — the grant the resource
server resolved, left in the WSGI environ by :class:`dvza.access.TokenAccessResolver` — and stores the
exchange for each active session of that patient (and, when the session names one, that PGO). So it
works for any PGO over the real network flow (OAuth, mutual TLS, certificate-bound access tokens) as
well as with the Nictiz qualification tokens, and neither ``fhir_api`` nor ``oauth`` knows about it.

A request the resource server refuses before it has looked at the token (an unknown path, an
unsupported ``Accept``) or without a valid token is not recorded: it belongs to no known token, so to no
session. What is stored never holds a token: ``Authorization`` is replaced by the token's kind and non-secret
reference (the prefix of its hash, as in the audit log), cookies and the forwarded client certificate
are left out. Requests the DVZA makes itself for a session (its setup, :data:`INTERNAL`) are not
recorded.
"""

from __future__ import annotations

import io
import json
import logging
import typing as t
from datetime import UTC
from datetime import datetime

from sqlalchemy import select
from werkzeug.wsgi import get_current_url

from ..access import GRANT_ENVIRON_KEY
from .models import QualificationSession
from .models import RecordedRequest

if t.TYPE_CHECKING:
    from fhir_api.access import AccessGrant

    from ..db import Database

logger = logging.getLogger("dvza.qualification")

#: environ key marking a request the DVZA sends to itself for a session (setup): not recorded
INTERNAL = "dvza.qualification.internal"
#: request headers never stored (the token is masked separately)
DROPPED_HEADERS = frozenset({"cookie", "x-ssl-client-cert"})
#: answers above this size are stored as a note, not as text (a served document is not needed to judge it)
MAX_STORED_RESPONSE = 5 * 1024 * 1024
TEXT_TYPES = ("json", "xml", "text/")


def token_label(grant: AccessGrant) -> str:
    """How a token is shown: its kind and non-secret reference."""
    kind = "qualification token" if grant.qualification else "access token"
    return f"{kind} {grant.token_ref}"


def masked_headers(environ: dict[str, t.Any], label: str | None, client_cert_header: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    dropped = DROPPED_HEADERS | {client_cert_header.lower()}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key.replace("_", "-").title()
        else:
            continue
        if name.lower() in dropped:
            continue
        if name.lower() == "authorization":
            scheme = str(value).split(" ", 1)[0]
            value = f"{scheme} [{label}]" if label else f"{scheme} [masked]"
        headers[name] = str(value)
    return headers


def _body_text(data: bytes, content_type: str | None) -> str | None:
    if not data:
        return None
    ctype = (content_type or "").lower()
    if ctype and not any(kind in ctype for kind in TEXT_TYPES):
        return f"[{len(data)} bytes {ctype.split(';')[0]}, not stored]"
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"[{len(data)} bytes, not text, not stored]"


class QualificationRecorder:
    """WSGI middleware: see the module docstring."""

    def __init__(self, wsgi_app: t.Callable[..., t.Any], database: Database, *, fhir_prefix: str,
                 max_body_bytes: int, client_cert_header: str = "X-SSL-Client-Cert") -> None:
        self.wsgi_app = wsgi_app
        self.database = database
        self.fhir_prefix = fhir_prefix.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.client_cert_header = client_cert_header

    def _applies(self, environ: dict[str, t.Any]) -> bool:
        if environ.get(INTERNAL):
            return False
        path = environ.get("PATH_INFO", "")
        return path == self.fhir_prefix or path.startswith(self.fhir_prefix + "/")

    def _active(self) -> list[QualificationSession]:
        try:
            with self.database.sessionmaker() as db:
                return list(db.scalars(select(QualificationSession).where(QualificationSession.status == "active")))
        except Exception:  # noqa: BLE001 - recording must never break the API (e.g. tables not created yet)
            logger.exception("qualification sessions could not be read; not recording")
            return []

    def __call__(self, environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]) -> t.Any:
        if not self._applies(environ) or not self._active():
            return self.wsgi_app(environ, start_response)
        body = self._buffer_request(environ)
        captured: dict[str, t.Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> t.Any:
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.wsgi_app(environ, capture)
        try:
            chunks = list(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        try:
            self._record(environ, body, captured, b"".join(chunks))
        except Exception:  # noqa: BLE001 - a recording failure must not change the answer
            logger.exception("a qualification request could not be recorded")
        return chunks

    def _buffer_request(self, environ: dict[str, t.Any]) -> bytes | None:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length <= 0 or length > self.max_body_bytes:
            return None
        data = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(data)
        return data

    def _record(self, environ: dict[str, t.Any], body: bytes | None, captured: dict[str, t.Any],
                answer: bytes) -> None:
        grant: AccessGrant | None = environ.get(GRANT_ENVIRON_KEY)
        if grant is None:
            return  # no valid token: nobody's session
        now = datetime.now(UTC)
        with self.database.sessionmaker() as db:
            sessions = [s for s in db.scalars(select(QualificationSession).where(
                QualificationSession.status == "active")) if _belongs(s, grant)]
            if not sessions:
                return
            status_text = str(captured.get("status", "500"))
            response_headers = dict(captured.get("headers") or [])
            response_type = next((v for k, v in response_headers.items() if k.lower() == "content-type"), None)
            if len(answer) > MAX_STORED_RESPONSE:
                response_body: str | None = f"[{len(answer)} bytes, not stored]"
            else:
                response_body = _body_text(answer, response_type)
            label = token_label(grant)
            url = get_current_url(environ)
            base = get_current_url(environ, root_only=True).rstrip("/") + self.fhir_prefix
            for session in sessions:
                db.add(RecordedRequest(
                    session_id=session.id, step=session.step, recorded_at=now,
                    method=environ.get("REQUEST_METHOD", "GET"), url=url, base_url=base,
                    request_headers=json.dumps(masked_headers(environ, label, self.client_cert_header)),
                    request_body=_body_text(body or b"", environ.get("CONTENT_TYPE")),
                    status=int(status_text.split(" ", 1)[0]),
                    response_headers=json.dumps({k: v for k, v in response_headers.items()
                                                 if k.lower() != "set-cookie"}),
                    response_body=response_body, patient_id=grant.patient_id, client_id=grant.client_id,
                    token_label=label,
                ))
            db.commit()


def _belongs(session: QualificationSession, grant: AccessGrant) -> bool:
    """The session's tokens: any token of one of its test persons; with a PGO named, only that PGO's
    access tokens (qualification tokens belong to no PGO)."""
    if grant.patient_id not in json.loads(session.patients):
        return False
    if session.client_id:
        return grant.client_id == session.client_id and not grant.qualification
    return True
