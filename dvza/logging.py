"""Structured logs (Warehouse style, design-references.md §4.3): one JSON object per line in
production, readable lines in development. ``extra=`` fields are kept as JSON fields.

Every line passes :func:`dvza.redaction.redact` as it is formatted: no BSN in any log line, whichever
logger wrote it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC
from datetime import datetime

from .redaction import redact

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, ensure_ascii=False, default=str))


class ConsoleFormatter(logging.Formatter):
    """Readable lines for development, BSNs masked like the JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(fmt: str = "json", level: str = "INFO", audit_file: str | None = None) -> None:
    """Set up the ``dvza``, ``oauth``, ``fhir_api`` and ``medmij_lists`` loggers (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name("dvza")
    handler.setLevel(level)
    # loggers pass INFO on so the audit file gets every record; the console handler filters by level
    logger_level = min(logging.getLevelName(level) if isinstance(level, str) else level, logging.INFO)
    for name in ("dvza", "oauth", "fhir_api", "medmij_lists", "medmij"):
        logger = logging.getLogger(name)
        logger.setLevel(logger_level)
        existing = next((h for h in logger.handlers if h.get_name() == "dvza"), None)
        if existing is None:
            logger.addHandler(handler)
        else:  # configured again (another app in this process): the newest settings and stderr apply
            existing.setLevel(level)
            existing.setFormatter(handler.formatter)
            if isinstance(existing, logging.StreamHandler) and existing.stream is not sys.stderr:
                existing.stream = sys.stderr  # not setStream(): it flushes the old stream, which may be closed
        logger.propagate = False
    if audit_file:
        from .audit import JsonLinesHandler

        audit_logger = logging.getLogger("dvza.audit")
        if not any(isinstance(h, JsonLinesHandler) for h in audit_logger.handlers):
            audit_logger.addHandler(JsonLinesHandler(audit_file, encoding="utf-8"))
