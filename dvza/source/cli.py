"""``dvza source``: the bulk import on the DVZA's own host, and the credentials of the source systems.

    dvza source import FILE --source epd   NDJSON bulk import with a progress bar; run it again after a crash
                                           and it continues where it stopped (same file, same source)
    dvza source jobs                       import jobs and how far they got
    dvza source certificate FILE --name epd   the SOURCE_CERTIFICATES entry for a source's client certificate
    dvza source apikey NAME                a development API key and its SOURCE_API_KEYS entry
"""

from __future__ import annotations

import getpass
import json
import secrets
import sys
import typing as t
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext


@click.group("source", help="The hospital's own systems feeding data in: bulk import and source credentials.")
def source_group() -> None:
    pass


def _name(_ctx: t.Any, _param: t.Any, value: str) -> str:
    from .auth import NAME

    if not NAME.fullmatch(value):
        raise click.BadParameter("letters, digits, '.', '_' and '-' only (at most 64)")
    return value


@source_group.command("import", help="Import an NDJSON file (one FHIR resource per line, many patients).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source", required=True, callback=_name,
              help="The source system the data comes from (its name in SOURCE_CERTIFICATES, e.g. epd): it keeps "
                   "what it loads, so it can update it later through the source API.")
@click.option("--chunk", default=500, show_default=True, type=click.IntRange(1, 100000),
              help="Lines per transaction (how much a crash can make it read again).")
@click.option("--again", is_flag=True, help="Import a file that was imported before once more (unchanged "
                                             "resources stay as they are).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@with_appcontext
def import_file(file: Path, source: str, chunk: int, again: bool, quiet: bool) -> None:
    from ..db import get_database
    from .bulk import BulkImport
    from .bulk import file_digest
    from .bulk import job_id

    app = current_app
    size = file.stat().st_size
    digest = file_digest(file)
    importer = BulkImport(
        get_database(app), app.extensions["dvza.audit"], app.extensions["dvza.source.settings"], source=source,
        job=job_id(source, f"sha256:{digest}"), label=f"{file.name} (sha256 {digest[:12]})", total_bytes=size,
        chunk_lines=chunk, max_line_bytes=app.config["SOURCE_MAX_BODY_BYTES"],
        actor=f"source:{source}")
    with open(file, "rb") as handle:
        if quiet:
            summary = importer.run(handle, seek=True, again=again)
        else:
            with click.progressbar(length=max(size, 1), label=f"importing {file.name}", file=sys.stderr,
                                   show_pos=False, show_percent=True, show_eta=True) as bar:
                done = [0]

                def progress(offset: int) -> None:
                    if offset > done[0]:
                        bar.update(offset - done[0])
                        done[0] = offset

                summary = importer.run(handle, seek=True, again=again, progress=progress)
    app.extensions["dvza.audit"].write(
        event_type="source.import-run", outcome="success", actor=f"source:{source}",
        detail=f"dvza source import {file.name} by {getpass.getuser()}: {summary.text()}")
    for line, reference, reason in summary.refusals:
        click.echo(f"  refused  line {line}" + (f" ({reference})" if reference else "") + f": {reason}", err=True)
    if summary.refused > len(summary.refusals):
        click.echo(f"  … {summary.refused - len(summary.refusals)} more refused lines (dvza source jobs --refused "
                   f"{summary.job_id[:12]})", err=True)
    click.echo(summary.text())


@source_group.command("jobs", help="Bulk import jobs: how far each got.")
@click.option("--refused", "refused_job", default=None, help="List every refused line of this job (id prefix).")
@with_appcontext
def jobs(refused_job: str | None) -> None:
    from sqlalchemy import select

    from ..db import get_database
    from .models import ImportJob
    from .models import ImportRefusal

    with get_database(current_app).sessionmaker() as session:
        if refused_job:
            found = session.scalars(select(ImportJob).where(ImportJob.id.startswith(refused_job))).all()
            if len(found) != 1:
                raise click.ClickException(f"{len(found)} jobs start with {refused_job!r}")
            for refusal in session.scalars(select(ImportRefusal).where(ImportRefusal.job_id == found[0].id)
                                           .order_by(ImportRefusal.line)):
                click.echo(f"line {refusal.line}" + (f" ({refusal.reference})" if refusal.reference else "")
                           + f": {refusal.reason}")
            return
        for job in session.scalars(select(ImportJob).order_by(ImportJob.started_at)):
            done = f"{job.offset * 100 // job.total_bytes}%" if job.total_bytes else f"{job.offset} bytes"
            click.echo(f"{job.id[:12]}  {job.status:8}  {done:>5}  source={job.source}  {job.label}  "
                       f"lines={job.lines} created={job.created} updated={job.updated} unchanged={job.unchanged} "
                       f"refused={job.refused} runs={job.runs}")


@source_group.command("certificate", help="The SOURCE_CERTIFICATES entry for a source system's client certificate.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, callback=_name, help="The source's name (in audit records and ownership).")
def certificate(file: Path, name: str) -> None:
    from oauth.mtls import load_certificate

    from .auth import fingerprint

    loaded = load_certificate(file.read_text(encoding="ascii", errors="replace"))
    if loaded is None:
        raise click.ClickException(f"{file} holds no PEM certificate")
    value = fingerprint(loaded)
    click.echo(f"{name}: SHA-256 {value}  ({loaded.subject.rfc4514_string()}, valid until "
               f"{loaded.not_valid_after_utc:%Y-%m-%d})")
    click.echo(f"DVZA_SOURCE_CERTIFICATES='{json.dumps({name: value})}'  (merge with the other sources)")


@source_group.command("apikey", help="Make a development API key for a source (needs SOURCE_API_KEYS_ALLOWED=true).")
@click.argument("name", callback=_name)
def apikey(name: str) -> None:
    from .auth import hash_key

    key = secrets.token_urlsafe(32)
    click.echo(f"API key for {name} (give it to the source once; only its hash is configured): {key}")
    click.echo(f"DVZA_SOURCE_API_KEYS='{json.dumps({name: hash_key(key)})}'  DVZA_SOURCE_API_KEYS_ALLOWED=true  "
               "(development only; production sources use a client certificate)")
