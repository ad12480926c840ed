"""The NDJSON bulk import: a summary of loaded and refused lines, restartable after a broken upload and after
a crash of the importing process (nothing duplicated, nothing lost), memory that does not grow with the file,
and ``dvza source import`` with its progress bar."""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import typing as t
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from dvza.devtools.synthetic import write_ndjson
from dvza.models import AuditRecord
from dvza.source.bulk import BulkImport
from dvza.source.bulk import job_id
from dvza.source.models import ImportJob
from dvza.source.models import ImportRefusal
from dvza.source.models import ResourceOwner
from fhir_api.models import DateIndex
from fhir_api.models import ReferenceIndex
from fhir_api.models import ResourceRow
from fhir_api.models import StringIndex
from fhir_api.models import TokenIndex
from tests.source.conftest import Source
from tests.source.conftest import audit_records
from tests.source.conftest import patient
from tests.source.conftest import rows
from tests.source.conftest import source_config
from tests.source.conftest import weight
from tests.support import REPO
from tests.support import make_app

NDJSON = "application/fhir+ndjson"


def ndjson(*resources: t.Any) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in resources)


def count(app: t.Any, model: t.Any, *where: t.Any) -> int:
    with app.extensions["dvza.db"].sessionmaker() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))


def test_an_import_loads_what_it_can_and_says_what_it_refused(source_app: t.Any, epd: Source) -> None:
    body = ndjson(patient("pt-1", "999911120"), weight("w-1", "pt-1"), b"{not json", b"",
                  weight("w-2", "nobody"), {"resourceType": "Observation"}, b"x" * 5000, weight("w-3", "pt-1"))
    source_app.extensions["dvza.source"].max_body_bytes = 4000  # the line limit
    response = epd.call("POST", "/$import", body, content_type=NDJSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    issues = [i["diagnostics"] for i in response.get_json()["issue"]]
    assert issues[0] == "8 lines: 3 loaded (3 created, 0 updated, 0 unchanged), 4 refused"
    assert issues[1].startswith("line 3: Invalid JSON") and issues[2].startswith("line 5 (Observation/w-2)")
    assert issues[3].startswith("line 6") and "longer than 4000 bytes" in issues[4]
    assert {r.logical_id for r in rows(source_app)} == {"pt-1", "w-1", "w-3"}
    with source_app.extensions["dvza.db"].sessionmaker() as session:
        reasons = " ".join(r.reason for r in session.scalars(select(ImportRefusal)))
    assert "999911120" not in reasons
    again = epd.call("POST", "/$import", body, content_type=NDJSON)
    summary = again.get_json()["issue"][0]["diagnostics"]
    assert summary.startswith("8 lines: 3 loaded (0 created, 0 updated, 3 unchanged)")
    assert epd.call("POST", "/$import", body, content_type="application/json").status_code == 415
    assert len(rows(source_app)) == 3
    [data_record] = [r for r in audit_records(source_app, AuditRecord.event_type == "source.import")
                     if r.outcome == "success"]  # the changes, per patient, in the chunk's transaction
    assert data_record.patient_id == "pt-1" and data_record.actor == "source:epd"
    assert data_record.resource_ids == "c:Patient/pt-1 c:Observation/w-1 c:Observation/w-3"


class BreakingUpload(io.RawIOBase):
    """An upload whose client goes away after ``cut`` bytes (the stream ends before its Content-Length)."""

    def __init__(self, data: bytes, cut: int):
        self.data, self.cut, self.position = data, cut, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        n = max(0, min(len(buffer), self.cut - self.position))
        buffer[:n] = self.data[self.position:self.position + n]
        self.position += n
        return n


def test_an_import_job_continues_after_a_broken_upload(source_app: t.Any, epd: Source, tmp_path: Path) -> None:
    source_app.extensions["dvza.source"].import_chunk_lines = 20
    data = (tmp_path / "f.ndjson")
    lines = write_ndjson(data, 12, per_patient=9, prefix="up")  # 120 lines
    body = data.read_bytes()
    cut = body.index(b"\n", len(body) // 2) - 10  # in the middle of a line, after three committed chunks
    broken = source_app.test_client().post(
        "/source/fhir/$import?job=initial-fill", environ_overrides={
            **epd.environ, "wsgi.input": BreakingUpload(body, cut), "CONTENT_LENGTH": str(len(body))},
        headers={"Content-Type": NDJSON})
    assert broken.status_code == 400
    done = count(source_app, ResourceRow)
    assert 0 < done < lines and done % 20 == 0  # whole chunks only, the cut-off line not at all
    resumed = epd.call("POST", "/$import?job=initial-fill", body, content_type=NDJSON)
    text = resumed.get_json()["issue"][0]["diagnostics"]
    assert text == f"{lines} lines: {lines} loaded ({lines} created, 0 updated, 0 unchanged), 0 refused " \
                   f"(continued after line {done})"
    assert count(source_app, ResourceRow) == lines
    assert count(source_app, ResourceRow, ResourceRow.version_id != 1) == 0
    finished = epd.call("POST", "/$import?job=initial-fill", body, content_type=NDJSON)
    assert "imported before" in finished.get_json()["issue"][0]["diagnostics"]


def test_dvza_source_import_with_a_progress_bar(source_app: t.Any, tmp_path: Path) -> None:
    data = tmp_path / "records.ndjson"
    lines = write_ndjson(data, 5, per_patient=3, prefix="cli")
    runner = source_app.test_cli_runner()
    result = runner.invoke(args=["source", "import", str(data), "--source", "epd", "--chunk", "4"])
    assert result.exit_code == 0, result.output
    assert f"{lines} lines: {lines} loaded ({lines} created" in result.output
    assert "importing records.ndjson" in result.output  # the progress bar (stderr, mixed in by the runner)
    again = runner.invoke(args=["source", "import", str(data), "--source", "epd", "--quiet"])
    assert "imported before" in again.output
    forced = runner.invoke(args=["source", "import", str(data), "--source", "epd", "--again", "--quiet"])
    assert f"0 created, 0 updated, {lines} unchanged" in forced.output
    jobs = runner.invoke(args=["source", "jobs"])
    assert "finished" in jobs.output and "runs=3" in jobs.output
    assert runner.invoke(args=["source", "import", str(data), "--source", "not a name"]).exit_code == 2
    with source_app.extensions["dvza.db"].sessionmaker() as session:
        assert set(session.scalars(select(ResourceOwner.source))) == {"epd"}
    key = runner.invoke(args=["source", "apikey", "integration"])
    assert "DVZA_SOURCE_API_KEYS" in key.output and "SOURCE_API_KEYS_ALLOWED=true" in key.output
    from tests.source.conftest import CERTS
    from tests.source.conftest import EPD

    (tmp_path / "epd.pem").write_text(CERTS[EPD])
    printed = runner.invoke(args=["source", "certificate", str(tmp_path / "epd.pem"), "--name", "epd"])
    assert source_app.config["SOURCE_CERTIFICATES"]["epd"] in printed.output


@pytest.mark.slow
def test_memory_does_not_grow_with_the_file(source_app: t.Any, tmp_path: Path, caplog: t.Any) -> None:
    """tracemalloc, per chunk of 50 lines over a 1 200-line file: the memory still held after each chunk and the
    peak within each chunk stay where they were after the first chunks (a growing import would hold each chunk's
    rows, changes or audit listeners until the end). pytest's own log capture keeps every record it sees, so
    the audit log lines (the records still go to the database) are kept out of it here."""
    caplog.set_level(logging.WARNING, logger="dvza.audit")
    database, audit = source_app.extensions["dvza.db"], source_app.extensions["dvza.audit"]
    settings = source_app.extensions["dvza.source.settings"]

    def importer(name: str, patients: int, offset: int) -> tuple[BulkImport, Path]:
        path = tmp_path / f"{name}.ndjson"
        write_ndjson(path, patients, per_patient=9, prefix=name, bsn_offset=offset)
        return BulkImport(database, audit, settings, source="epd", job=job_id("epd", name), label=name,
                          chunk_lines=50), path

    # as large as the measured file: the process's bounded caches (compiled statements, driver prepared
    # statements, SQLAlchemy's statement cache) fill during the warm-up, not during the measurement
    warm, warm_path = importer("warm", 120, 0)
    with open(warm_path, "rb") as handle:
        warm.run(handle, seek=True)
    measured, path = importer("big", 120, 1000)
    held: list[int] = []
    peaks: list[int] = []

    def progress(_offset: int) -> None:
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        held.append(current)
        peaks.append(peak)
        tracemalloc.reset_peak()

    gc.collect()
    tracemalloc.start()
    try:
        with open(path, "rb") as handle:
            summary = measured.run(handle, seek=True, progress=progress)
    finally:
        tracemalloc.stop()
    assert summary.created == 1200 and len(held) == 26  # the start, 24 chunks, the (empty) end
    early_held, late_held = max(held[2:8]), max(held[-8:-1])
    early_peak, late_peak = max(peaks[2:8]), max(peaks[-8:-1])
    assert late_held <= early_held * 1.3 + 32_000, (held, peaks)
    assert late_peak <= early_peak * 1.3 + 32_000, (held, peaks)
    assert late_peak < path.stat().st_size  # far less than the file itself


def _run_import(app: t.Any, path: Path, instance: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DVZA_INSTANCE_PATH": str(instance), "DVZA_DATABASE_URL": app.config["DATABASE_URL"],
           "DVZA_SECRET_KEY": app.config["SECRET_KEY"], "DVZA_QUALIFICATION_MODE": "true",
           "DVZA_DEVELOPMENT_LOGIN": "true", "DVZA_LOG_LEVEL": "WARNING", "DVZA_LOG_FORMAT": "console"}
    return subprocess.Popen([sys.executable, "-m", "dvza.cli", "source", "import", str(path), "--source", "epd",
                             "--chunk", "25", "--quiet", *extra], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_crash_in_the_middle_of_an_import_is_completed_by_a_restart(source_app: t.Any, tmp_path: Path,
                                                                      databases: t.Any,
                                                                      tmp_path_factory: t.Any) -> None:
    """A real ``dvza source import`` process is killed (SIGKILL: no clean-up at all) after some chunks; what it
    committed is whole chunks with the job's progress; a second run continues after the last committed line
    and the result is exactly one copy of every line: every resource at version 1, one owner each, and the
    search index of a clean import."""
    path = tmp_path / "big.ndjson"
    lines = write_ndjson(path, 200, per_patient=9, prefix="crash")  # 2 000 lines
    instance = Path(source_app.instance_path)
    first = _run_import(source_app, path, instance)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and first.poll() is None:
        with source_app.extensions["dvza.db"].sessionmaker() as session:
            done = session.scalar(select(ImportJob.lines)) or 0
        if done >= 300:
            break
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    with source_app.extensions["dvza.db"].sessionmaker() as session:
        job = session.scalar(select(ImportJob))
        assert job is not None and job.status == "running" and 300 <= job.lines < lines and job.lines % 25 == 0
        committed = job.lines
    assert count(source_app, ResourceRow) == committed  # whole chunks only, nothing of the one in flight

    second = _run_import(source_app, path, instance)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()
    assert f"{lines} lines: {lines} loaded" in out.decode()
    assert f"(continued after line {committed})" in out.decode()
    assert count(source_app, ResourceRow) == lines
    assert count(source_app, ResourceRow, ResourceRow.version_id != 1) == 0
    assert count(source_app, ResourceOwner) == lines
    with source_app.extensions["dvza.db"].sessionmaker() as session:
        job = session.scalar(select(ImportJob))
        assert job.status == "finished" and job.runs == 2 and job.created == lines and job.refused == 0
    # the search index is exactly that of one clean import of the same file into an empty database
    clean = make_app(databases, tmp_path_factory, **source_config())
    with open(path, "rb") as handle:
        BulkImport(clean.extensions["dvza.db"], clean.extensions["dvza.audit"],
                   clean.extensions["dvza.source.settings"], source="epd", job=job_id("epd", "clean"),
                   label="clean").run(handle, seek=True)
    for table in (TokenIndex, DateIndex, ReferenceIndex, StringIndex):
        assert count(source_app, table) == count(clean, table) > 0, table.__tablename__
    clean.extensions["dvza.db"].dispose()
