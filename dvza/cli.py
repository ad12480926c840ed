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

    return create_app()


main = FlaskGroup(create_app=_create_app, add_default_commands=True, help="medmij-dvza: a MedMij DVZA.")


# ---------------------------------------------------------------------------------------- db
@click.group("db", help="Database set-up.")
def db_group() -> None:
    pass


@db_group.command("init", help="Create all tables (idempotent).")
@with_appcontext
def db_init() -> None:
    get_database(current_app).create_all()
    click.echo("database ready")


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
    # ``jobs`` load it when they run
    for group in (certs_group, conformance_group, lists_group, pgo_group, source_group):
        main.add_command(group)


_register_standalone_commands()

if __name__ == "__main__":
    main()
