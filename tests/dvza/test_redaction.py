"""No BSN in any log line, audit record or access log, whoever sent it (issue 13)."""

from __future__ import annotations

import json
import logging
import typing as t
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from dvza.identity import bsn_hmac
from dvza.models import AuditRecord
from dvza.redaction import MASK
from dvza.redaction import redact
from tests.support import bearer
from tests.support import load_cert_data
from tests.support import make_app

BSN = "999911120"  # XXX_Helleman's test BSN (passes the elfproef)
SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"


@pytest.mark.parametrize("text", [
    f"identifier={SYSTEM}|{BSN}",
    f"identifier={quote(SYSTEM + '|' + BSN, safe='')}",
    f"identifier={quote(SYSTEM, safe='')}|{BSN}&_count=5",
    f"GET /fhir/Patient?identifier={SYSTEM}%7C{BSN} HTTP/1.1",
    f'{{"message": "bsn {BSN} not found"}}',
    f"Patient/{BSN}",
    f"name=%7C{BSN}",
    # split or disguised by FHIR search escapes (search.html#escaping), typed or URL-encoded
    f"identifier={SYSTEM[:-1]}\\{SYSTEM[-1]}|{BSN[:5]}\\{BSN[5:]}",
    f"identifier={quote(SYSTEM[:-1], safe='')}%5C{SYSTEM[-1]}%7C{BSN[:5]}%5c{BSN[5:]}",
    f"name={BSN[:3]}\\{BSN[3:]}",
])
def test_bsns_are_masked_in_any_form(text: str) -> None:
    masked = redact(text)
    assert BSN not in masked and MASK in masked


def test_a_value_sent_as_bsn_is_masked_even_when_it_is_not_valid() -> None:
    assert redact(f"identifier={SYSTEM}|123456789") == f"identifier={SYSTEM}|{MASK}"


@pytest.mark.parametrize("text", [
    "123456789",  # nine digits that fail the elfproef
    "correlation 22222222-2222-4222-8222-222222222222",
    "999911120999",  # part of a longer number
    "abc999911120",  # part of a word
    "duration_ms=1234",
])
def test_other_numbers_are_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.fixture(scope="module")
def audited_app(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    audit_file = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    app = make_app(databases, tmp_path_factory, AUDIT_LOG_FILE=str(audit_file))
    load_cert_data(app, "bgz")
    app.config["TEST_AUDIT_FILE"] = audit_file
    yield app
    app.extensions["dvza.db"].dispose()


def test_a_bsn_search_is_refused_and_audited_without_the_bsn(audited_app: t.Any) -> None:
    """A PGO's search by BSN is refused (MedMij core.rscint.203: the patient follows from the token; a BSN
    reaches the DVZA only from the hospital's own systems, issue 16) — also with handling=lenient — and the
    refusal is audited with a keyed reference instead of the BSN."""
    client = audited_app.test_client()
    response = client.get(f"/fhir/Patient?identifier={SYSTEM}|{BSN}",
                          headers=bearer("medmij-bgz-patient-ts-01"))
    assert response.status_code == 400 and "BSN" in response.get_json()["issue"][0]["diagnostics"]
    lenient = client.get(f"/fhir/Patient?identifier={SYSTEM}|{BSN}",
                         headers={**bearer("medmij-bgz-patient-ts-01"), "Prefer": "handling=lenient"})
    assert lenient.status_code == 400
    disguised = quote(SYSTEM[:-1] + "\\" + SYSTEM[-1] + "|" + BSN[:5] + "\\" + BSN[5:], safe="")
    escaped = client.get(f"/fhir/Patient?identifier={disguised}",
                         headers=bearer("medmij-bgz-patient-ts-01"))  # search escapes do not hide a BSN
    assert escaped.status_code == 400 and "BSN" in escaped.get_json()["issue"][0]["diagnostics"]
    raw = client.get(f"/fhir/Patient/x/y?identifier={SYSTEM}|{BSN}")  # not an interaction: raw query kept
    assert raw.status_code == 400
    read = client.get(f"/fhir/Patient/{BSN}", headers=bearer("medmij-bgz-patient-ts-01"))
    assert read.status_code == 404
    reference = "bsn#" + bsn_hmac(audited_app.config["BSN_HMAC_KEY"], BSN)[:16]
    with audited_app.extensions["dvza.db"].sessionmaker() as session:
        records = session.scalars(select(AuditRecord).where(AuditRecord.event_type.like("fhir.%"))).all()
    stored = json.dumps([[r.actor, r.query, r.resource_ids, r.detail] for r in records])
    assert BSN not in stored
    assert BSN[:5] + "%5C" + BSN[5:] not in stored
    assert stored.count(reference) >= 4  # the auditor can still tell (with the key) which person it was
    lines = audited_app.config["TEST_AUDIT_FILE"].read_text(encoding="utf-8")
    assert lines.count("fhir.type-search") >= 1 and BSN not in lines and reference in lines


def test_log_lines_mask_bsns() -> None:
    from dvza.logging import ConsoleFormatter
    from dvza.logging import JsonFormatter

    record = logging.LogRecord("fhir_api", logging.WARNING, __file__, 1, "search for %s failed",
                               (f"{SYSTEM}|{BSN}",), None)
    record.request = {"query": f"identifier={BSN}"}
    for formatter in (JsonFormatter(), ConsoleFormatter("%(message)s %(request)s")):
        line = formatter.format(record)
        assert BSN not in line and MASK in line


def test_the_access_log_masks_bsns(capsys: pytest.CaptureFixture[str]) -> None:
    from gunicorn.config import Config

    from dvza.serving import RedactingLogger

    class Answer:
        status = "200 OK"
        sent = 10
        headers: list[tuple[str, str]] = []

    query = f"identifier={SYSTEM}%7C{BSN}"
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/fhir/Patient?{query}", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": "/fhir/Patient", "QUERY_STRING": query, "REMOTE_ADDR": "192.0.2.1"}
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", '%(h)s "%(r)s" %(U)s %(q)s %({x-searched-for}i)s %(s)s')
    logger = RedactingLogger(config)
    logger.access(Answer(), [("X-Searched-For", BSN)], environ, timedelta(milliseconds=5))
    line = capsys.readouterr().out
    assert "GET /fhir/Patient?identifier=" in line and " 200" in line and BSN not in line
    assert line.count(MASK) == 3  # request line, query, header
    logger.error("Error handling request %s", f"/fhir/Patient?{query}")  # gunicorn's own words
    assert BSN not in capsys.readouterr().err


def test_an_access_line_that_cannot_be_written_shows_no_bsn(capsys: pytest.CaptureFixture[str]) -> None:
    """When a line cannot be written, logging reports the record's arguments on stderr: none are left."""
    from gunicorn.config import Config

    from dvza.serving import RedactingLogger

    class Answer:
        status = "200 OK"
        sent = 10
        headers: list[tuple[str, str]] = []

    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                raise OSError("disk full")
            except OSError:
                self.handleError(record)

    query = f"identifier={SYSTEM}%7C{BSN}"
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/fhir/Patient?{query}", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": "/fhir/Patient", "QUERY_STRING": query, "REMOTE_ADDR": "192.0.2.1"}
    config = Config()
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    logger.access_log.handlers[:] = [Broken()]
    raise_exceptions, logging.raiseExceptions = logging.raiseExceptions, True
    try:
        logger.access(Answer(), [("X-Searched-For", BSN)], environ, timedelta(milliseconds=5))
    finally:
        logging.raiseExceptions = raise_exceptions
    report = capsys.readouterr().err
    assert "disk full" in report and BSN not in report
