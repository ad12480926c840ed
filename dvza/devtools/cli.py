"""Development commands: ``dvza testdata`` (Nictiz test patients, qualification tokens, questionnaire
Tasks) and ``dvza demo`` (the development network of ``make run``)."""

from __future__ import annotations

import json
import sys
import typing as t
from datetime import date
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import identity
from ..db import get_database
from .shared import shared_dir


# ---------------------------------------------------------------------------------- testdata
@click.group("testdata", help="Load Nictiz test patients and qualification tokens.")
def testdata_group() -> None:
    pass


@testdata_group.command("load", help="Load the fixtures of Nictiz sets (or folders of FHIR resources).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), help="Value of T (default: today).")
@click.option("--external-documents", type=click.Choice(["fetch", "local", "placeholder"]), default="fetch",
              show_default=True, help="How attachments at external URLs are imported: downloaded, a document of "
                                      "the same set (offline), or a placeholder PDF.")
@click.option("--strict", is_flag=True, help="Exit 1 when any resource is refused.")
@click.option("-v", "--verbose", is_flag=True, help="List every loaded, skipped and refused file.")
@with_appcontext
def testdata_load(paths: tuple[Path, ...], today: t.Any, external_documents: str, strict: bool,
                  verbose: bool) -> None:
    from . import testdata

    database = get_database(current_app)
    with database.sessionmaker() as session:
        report = testdata.load(
            session, paths, today=today.date() if today else date.today(),
            local_bases=_local_bases(), bsn_key=current_app.config["BSN_HMAC_KEY"],
            bsn_cipher=identity.cipher_from_config(current_app.config),
            external_documents=external_documents,
        )
    if verbose:
        for label in report.loaded:
            click.echo(f"  loaded   {label}")
        for path, reason in report.skipped:
            click.echo(f"  skipped  {path}: {reason}")
    for url, how in report.imported_documents:
        click.echo(f"  document {url}: {how}")
    for label, reason in report.refused:
        click.echo(f"  refused  {label}: {reason}", err=True)
    click.echo(report.summary())
    if strict and report.refused:
        sys.exit(1)


@testdata_group.command("tokens", help="Import QualificationTokens.json as qualification-mode access tokens.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gegevensdiensten", default=None,
              help="Comma-separated gegevensdienst ids the tokens cover (default: all configured).")
@click.option("--script", "scripts", multiple=True, help="Only entries of this qualificationScript.")
@with_appcontext
def testdata_tokens(file: Path, gegevensdiensten: str | None, scripts: tuple[str, ...]) -> None:
    from . import testdata

    entries = json.loads(file.read_text(encoding="utf-8"))
    diensten = gegevensdiensten.split(",") if gegevensdiensten else list(current_app.config["GEGEVENSDIENSTEN"])
    database = get_database(current_app)
    with database.sessionmaker() as session:
        result = testdata.import_tokens(session, entries, gegevensdiensten=diensten,
                                        bsn_key=current_app.config["BSN_HMAC_KEY"], scripts=scripts,
                                        bsn_cipher=identity.cipher_from_config(current_app.config))
    click.echo(f"{len(result.imported)} qualification tokens imported for gegevensdiensten {','.join(diensten)}")
    if not current_app.config["QUALIFICATION_MODE"]:
        click.echo("note: they are only accepted with DVZA_QUALIFICATION_MODE=true", err=True)


@testdata_group.command("task", help="Create questionnaire Tasks from *-REQUESTED templates (fresh ids).")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--keep-open", is_flag=True, help="Leave the patient's other requested Tasks open.")
@with_appcontext
def testdata_task(files: tuple[Path, ...], keep_open: bool) -> None:
    from . import testdata

    database = get_database(current_app)
    with database.sessionmaker() as session:
        for reference in testdata.create_tasks(session, files, today=date.today(), close_open=not keep_open,
                                               local_bases=_local_bases()):
            click.echo(reference)


def _local_bases() -> tuple[str, ...]:
    base = current_app.config.get("PUBLIC_BASE_URL")
    return (base.rstrip("/"),) if base else ()


# -------------------------------------------------------------------------------------- demo
@click.group("demo", help="Demo data for `make run`.")
def demo_group() -> None:
    pass


@demo_group.command("prepare", help="Load the Nictiz Cert sets and tokens (idempotent).")
@click.option("--shared", type=click.Path(path_type=Path), default=None, help="Default: $DVZA_SHARED_DIR.")
@click.pass_context
def demo_prepare(ctx: click.Context, shared: Path | None) -> None:
    root = (shared or shared_dir()) / "conformance" / "nictiz-testscripts"
    sets = [root / "output" / "STU3" / name / "MedMij" / "Cert"
            for name in ("BgZ-3-0", "PDFA-3-0", "Questionnaires-2-0", "SelfMeasurements-2-0")]
    missing = [s for s in sets if not s.is_dir()]
    if missing:
        raise click.ClickException(f"test data not found: {missing[0]} (set DVZA_SHARED_DIR)")
    # the app (created for this command) has brought the database to the newest migration already
    # offline: a document at an external URL gets one of the set's own PDF/A files (issue 17)
    ctx.invoke(testdata_load, paths=tuple(sets), today=None, external_documents="local", strict=False,
               verbose=False)
    ctx.invoke(testdata_tokens, file=root / "Configuration" / "QualificationTokens.json", gegevensdiensten=None,
               scripts=())
    _link_development_bsns()
    _demo_questionnaire_tasks(root / "output" / "STU3" / "Questionnaires-2-0" / "MedMij" / "Cert")
    _write_dev_login_persons(root / "Configuration" / "QualificationTokens.json")


#: BSNs for the development login of Nictiz test persons that have none on the Nictiz list (the
#: Vragenlijsten persons): made up, valid by the elfproef, from the 99999xxxx test range and not used
#: by any Nictiz test person. Development only: a real DVZA learns the BSN from DigiD.
DEVELOPMENT_BSNS = {"XXXVINK": "999998006", "XXXREPSCHER": "999998018", "XXXBOUMANN": "999998031"}
#: the questionnaires the demo puts ready for XXX_Vink (Nictiz Cert templates, fresh Task ids)
DEMO_TASKS = ("XXX_Vink-Intake", "XXX_Vink-PHQ9")


def _link_development_bsns() -> None:
    """Link :data:`DEVELOPMENT_BSNS` to their loaded patients, so the development login can log in as them."""
    from ..source.writer import TESTDATA
    from ..source.writer import SourceSettings
    from ..source.writer import SourceWriter

    app = current_app
    with get_database(app).sessionmaker() as session:
        writer = SourceWriter(session, TESTDATA, SourceSettings.from_config(app.config))
        for patient_id, bsn in DEVELOPMENT_BSNS.items():
            if writer.store.get("Patient", patient_id) is not None:
                writer.register_bsn(patient_id, bsn)
        session.commit()


def _demo_questionnaire_tasks(cert: Path) -> None:
    """Questionnaires ready to fill in for XXX_Vink (unless some are open already): what a hospital
    would send, so the PGO simulator's questionnaire path can be tried right after ``make run``."""
    from sqlalchemy import select

    from fhir_api import fhirjson
    from fhir_api.models import ResourceRow

    from . import testdata

    database = get_database(current_app)
    with database.sessionmaker() as session:
        rows = session.scalars(select(ResourceRow.json_text).where(ResourceRow.resource_type == "Task",
                                                                   ResourceRow.patient_id == "XXXVINK"))
        if any(fhirjson.loads(text).get("status") == "requested" for text in rows):
            return
        folder = cert / "_reference" / "resources" / "resources-specific"
        templates = [folder / f"medmij-questionnaires-vl-QuestionnaireProvisioningTask-{name}-REQUESTED.xml"
                     for name in DEMO_TASKS]
        created = testdata.create_tasks(session, [t for t in templates if t.is_file()], today=date.today(),
                                        close_open=False, local_bases=_local_bases())
    click.echo(f"{len(created)} questionnaires ready for XXX_Vink")


def _write_dev_login_persons(tokens_file: Path) -> None:
    """The test persons the development login offers as buttons (``dev-login-persons.json`` in the
    instance folder): every person of the tokens file whose patient is loaded and whose BSN is
    linked, named by family name and test script."""
    from fhir_api.store import ResourceStore

    app = current_app
    session = get_database(app).session()
    persons, seen = [], set()
    for entry in json.loads(tokens_file.read_text(encoding="utf-8")):
        patient_id = str(entry.get("resourceId") or "")
        bsn = str(entry.get("bsn") or DEVELOPMENT_BSNS.get(patient_id) or "")
        if not bsn or bsn in seen or ResourceStore(session).load("Patient", patient_id) is None:
            continue
        if identity.patient_for(session, app.config["BSN_HMAC_KEY"], bsn) != patient_id:
            continue
        seen.add(bsn)
        persons.append({"name": f"{entry.get('familyName', '')} ({entry.get('qualificationScript', '')})".strip(),
                        "bsn": bsn})
    target = Path(app.instance_path) / "dev-login-persons.json"
    target.write_text(json.dumps(persons, indent=1, ensure_ascii=False), encoding="utf-8")
    click.echo(f"{len(persons)} test persons for the development login in {target}")


@demo_group.command("run", help="Start the whole development network: DVZA front- and backchannel, PGO simulator.")
@click.option("--front-port", type=int, default=8443, show_default=True)
@click.option("--back-port", type=int, default=9443, show_default=True)
@click.option("--pgo-port", type=int, default=8444, show_default=True)
@click.option("--digid-port", type=int, default=8445, show_default=True, help="Local DigiD-like SAML IdP: login page.")
@click.option("--digid-back-port", type=int, default=9445, show_default=True,
              help="Local DigiD-like SAML IdP: SOAP backchannel (mutual TLS).")
@click.option("--shared", type=click.Path(path_type=Path), default=None, help="Default: $DVZA_SHARED_DIR.")
def demo_run(front_port: int, back_port: int, pgo_port: int, digid_port: int, digid_back_port: int,
             shared: Path | None) -> None:
    from .devnet import DevNetwork

    network = DevNetwork(Path(current_app.instance_path), front_port=front_port, back_port=back_port,
                         pgo_port=pgo_port, digid_port=digid_port, digid_back_port=digid_back_port)
    network.prepare(shared=shared or shared_dir())
    network.start()
    click.echo(network.banner())
    sys.exit(network.wait())
