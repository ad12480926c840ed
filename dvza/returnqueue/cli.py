"""``dvza queue``: the return queue from the command line (list, show, claim, accept, reject) and the
sign-ins for it (API keys for hospital systems, passwords for the staff page)."""

from __future__ import annotations

import os
import typing as t

import click
from flask import current_app
from flask.cli import with_appcontext


# ------------------------------------------------------------------------------------- queue
@click.group("queue", help="The return queue: what patients sent from their PGO.")
def queue_group() -> None:
    pass


def _queue() -> t.Any:
    return current_app.extensions["dvza.queue"]


def _print_item(item: t.Any) -> None:
    click.echo(f"{item.id}  {item.status:8}  {item.received_at[:19]}  {item.kind:21}  patient={item.patient_id}  "
               f"pgo={item.client_id}  {item.summary}")


@queue_group.command("list", help="List queue items, newest first.")
@click.option("--status", type=click.Choice(["new", "claimed", "accepted", "rejected"]))
@click.option("--patient", default=None)
@click.option("--limit", default=50, show_default=True)
@with_appcontext
def queue_list(status: str | None, patient: str | None, limit: int) -> None:
    for item in _queue().list(status=status, patient_id=patient, limit=limit):
        _print_item(item)
    counts = _queue().counts()
    click.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))


@queue_group.command("show", help="Show one item with the resources it brought.")
@click.argument("item_id")
@click.option("--as", "actor", default=lambda: os.environ.get("USER", "cli"), help="Who is looking (audit).")
@with_appcontext
def queue_show(item_id: str, actor: str) -> None:
    from fhir_api import fhirjson

    from .queue import QueueError

    try:
        item, resources = _queue().get(item_id, actor=f"staff:{actor}")
    except QueueError as exc:
        raise click.ClickException(str(exc)) from None
    _print_item(item)
    for resource in resources:
        click.echo(fhirjson.dumps(resource, pretty=True))


@queue_group.command("claim", help="Claim items to handle (a lease that expires).")
@click.option("--consumer", required=True)
@click.option("--max", "max_items", default=10, show_default=True)
@click.option("--lease", default=300, show_default=True, help="Seconds.")
@with_appcontext
def queue_claim(consumer: str, max_items: int, lease: int) -> None:
    for item in _queue().claim(consumer, max_items=max_items, lease_seconds=lease):
        _print_item(item)


@queue_group.command("accept", help="Accept a claimed item: its data joins the patient's record.")
@click.argument("item_id")
@click.option("--consumer", required=True)
@with_appcontext
def queue_accept(item_id: str, consumer: str) -> None:
    _decide(lambda: _queue().accept(item_id, consumer))


@queue_group.command("reject", help="Reject a claimed item, with a reason.")
@click.argument("item_id")
@click.option("--consumer", required=True)
@click.option("--reason", required=True)
@with_appcontext
def queue_reject(item_id: str, consumer: str, reason: str) -> None:
    _decide(lambda: _queue().reject(item_id, consumer, reason))


def _decide(action: t.Callable[[], t.Any]) -> None:
    from .queue import QueueError

    try:
        _print_item(action())
    except QueueError as exc:
        raise click.ClickException(str(exc)) from None


@queue_group.command("apikey", help="Make an API key for a queue consumer; prints the config entry.")
@click.argument("name")
def queue_apikey(name: str) -> None:
    import secrets

    from .api import hash_key

    key = secrets.token_urlsafe(32)
    click.echo(f"API key for {name} (shown once): {key}")
    click.echo(f'configuration: DVZA_QUEUE_API_KEYS=\'{{"{name}": "{hash_key(key)}"}}\'')


@queue_group.command("user", help="Make a sign-in for the queue page (/ziekenhuis); prints the config entry.")
@click.argument("name")
@click.password_option(help="Password (asked when not given).")
def queue_user(name: str, password: str) -> None:
    from werkzeug.security import generate_password_hash

    digest = generate_password_hash(password)
    click.echo(f'configuration: DVZA_HOSPITAL_USERS=\'{{"{name}": "{digest}"}}\'')
