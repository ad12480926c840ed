"""The ``dvza`` command line (Flask's CLI with the app factory; ``dvza --help``)."""

from __future__ import annotations

import click
from flask import Flask
from flask import current_app
from flask.cli import FlaskGroup
from flask.cli import with_appcontext

from .db import get_database


def _create_app() -> Flask:
    from . import create_app

    # `dvza db …` is how a database gets to the code's schema: it must not be refused for not being there yet
    context = click.get_current_context(silent=True)
    in_db_group = False
    while context is not None:
        in_db_group = in_db_group or context.info_name == "db"
        context = context.parent
    return create_app(check_schema=not in_db_group)


main = FlaskGroup(create_app=_create_app, add_default_commands=True, help="medmij-dvza: a MedMij DVZA.")


# ---------------------------------------------------------------------------------------- db
@click.group("db", help="Database schema: migrations (Alembic).")
def db_group() -> None:
    pass


def _upgrade_database() -> None:
    from .migrate import upgrade

    before, after = upgrade(get_database(current_app).engine)
    if before == after:
        click.echo(f"database at revision {after}: nothing to do")
    else:
        click.echo(f"database upgraded from revision {before or 'empty'} to {after}")


@db_group.command("upgrade", help="Bring the schema to this version's newest migration (safe to repeat, and to run "
                  "from several hosts at once).")
@with_appcontext
def db_upgrade() -> None:
    _upgrade_database()


@db_group.command("init", help="Same as `dvza db upgrade`: create the tables on an empty database.")
@with_appcontext
def db_init() -> None:
    _upgrade_database()


@db_group.command("current", help="The revision the database is at, and the newest this version knows.")
@with_appcontext
def db_current() -> None:
    from .migrate import current
    from .migrate import head

    click.echo(f"database: {current(get_database(current_app).engine) or 'none'}; this version: {head()}")


@db_group.command("check", help="Exit 1 if the database's schema differs from the models (Alembic autogenerate).")
@with_appcontext
def db_check() -> None:
    from .migrate import differences

    found = differences(get_database(current_app).engine)
    for difference in found:
        click.echo(f"  {difference}")
    if found:
        raise click.ClickException(f"{len(found)} difference(s) between the database and the models")
    click.echo("database schema matches the models")


@db_group.command("check-xml", help="Exit 1 if a stored resource's XML rendering is not well-formed XML (possible "
                  "for data stored before control characters and unchecked narratives were refused); lists type/id "
                  "only, never content.")
@with_appcontext
def db_check_xml() -> None:
    from fhir_api.store import unwritable_xml

    found = 0
    with get_database(current_app).sessionmaker() as session:
        for resource_type, logical_id, why in unwritable_xml(session):
            found += 1
            click.echo(f"  {resource_type}/{logical_id}: {why}")
    if found:
        raise click.ClickException(f"{found} stored resource(s) cannot be served as XML: correct them through the "
                                   "source API, or reject them in the return queue if they await review")
    click.echo("every stored resource renders as well-formed XML")


@db_group.command("revision", help="Development: write the next migration from the differences between the models "
                  "and this database (at the newest revision); read and complete the draft before committing it.")
@click.option("-m", "--message", required=True, help="What the change is, e.g. 'index of appointments by date'.")
@with_appcontext
def db_revision(message: str) -> None:
    from .migrate import new_revision

    click.echo(f"wrote {new_revision(get_database(current_app).engine, message)}")


@db_group.command("downgrade", help="Take the schema back to REVISION (e.g. before rolling back a release).")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    from .migrate import downgrade

    downgrade(get_database(current_app).engine, revision)
    click.echo(f"database at revision {revision}")


def init_app(app: Flask) -> None:
    from .devtools.cli import demo_group
    from .devtools.cli import testdata_group
    from .returnqueue.cli import queue_group
    from .serving import serve
    from .source.cli import source_group

    for group in (db_group, testdata_group, demo_group, queue_group, source_group, serve):
        app.cli.add_command(group)


def _register_standalone_commands() -> None:
    """Command groups that need no application: dev PKI, PGO simulator (and the lists library and
    conformance runner, which are clients of a DVZA)."""
    from certs.cli import certs_group
    from medmij_lists.cli import lists_group

    from .conformance.cli import conformance_group
    from .pgo.cli import pgo_group
    from .qualification.cli import client_group
    from .source.cli import source_group

    # ``dvza conformance client …`` runs inside the DVZA (its database): the rest of the group does not
    conformance_group.add_command(client_group)
    # ``dvza source certificate|apikey`` need no application (they only print configuration); ``import`` and
    # ``jobs`` load it when they run. ``dvza db`` is found without loading the app, so that loading it later
    # knows it serves a ``db`` command (:func:`_create_app`)
    for group in (certs_group, conformance_group, lists_group, pgo_group, source_group, db_group):
        main.add_command(group)


_register_standalone_commands()

if __name__ == "__main__":
    main()
