"""``dvza pgo fetch|send|authorize-url``: the PGO simulator from the command line.

Settings as the web app (``PGO_HOSTNAME``, ``PGO_CLIENT_CERT``/``PGO_CLIENT_KEY``, ``PGO_CA_BUNDLE``,
``PGO_LISTS_DIR``, ``PGO_REDIRECT_URI``) or options. ``fetch`` and ``send`` log in through the DVZA's
development login with ``--bsn`` (test environments only); against any other DVZA, print the URL
with ``authorize-url``, log in in a browser and pass the ``code`` from the redirect with ``--code``.
"""

from __future__ import annotations

import json
import os
import typing as t

import click

from .catalog import Catalog
from .catalog import find
from .client import Aanbieder
from .client import PgoClient
from .client import PgoError
from .content import batch_outcome
from .content import blood_pressure_bundle
from .content import fetch_bgz
from .content import fetch_documents


def _env(name: str) -> t.Callable[[], str | None]:
    return lambda: os.environ.get(name)


def _options(function: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    for option in reversed([
        click.option("--hostname", default=_env("PGO_HOSTNAME"), required=True, help="The PGO's hostname (client_id)."),
        click.option("--cert", default=_env("PGO_CLIENT_CERT"), help="Client certificate (PEM)."),
        click.option("--key", default=_env("PGO_CLIENT_KEY"), help="Its private key (PEM)."),
        click.option("--ca", default=_env("PGO_CA_BUNDLE"), help="CA bundle for the DVZA's certificates."),
        click.option("--lists", "lists_dir", default=_env("PGO_LISTS_DIR"), required=True,
                     help="Folder with the ZAL and GNL."),
        click.option("--redirect-uri", default=_env("PGO_REDIRECT_URI")),
        click.option("--aanbieder", "aanbieder_naam", help="Zorgaanbiedernaam (default: the only/first one)."),
    ]):
        function = option(function)
    return function


def _setup(hostname: str, cert: str | None, key: str | None, ca: str | None, lists_dir: str,
           redirect_uri: str | None, aanbieder_naam: str | None) -> tuple[PgoClient, Catalog, Aanbieder]:
    from .lists import catalog_from_lists

    catalog = catalog_from_lists(lists_dir)
    aanbieders = catalog.aanbieders()
    aanbieder = find(catalog, aanbieder_naam) if aanbieder_naam else (aanbieders[0] if aanbieders else None)
    if aanbieder is None:
        raise click.ClickException(f"aanbieder {aanbieder_naam or '(any)'} is not on the ZAL in {lists_dir}")
    client = PgoClient.configured(hostname, cert=cert, key=key, ca=ca, redirect_uri=redirect_uri)
    return client, catalog, aanbieder


def _code(client: PgoClient, aanbieder: Aanbieder, diensten: list[str], bsn: str | None, code: str | None,
          refuse: bool = False) -> str:
    if code:
        return code
    if not bsn:
        raise click.ClickException("give --bsn (development login) or --code")
    from .frontchannel import authorize_with_dev_login

    answer = authorize_with_dev_login(client.authorize_url(aanbieder, diensten), bsn=bsn, grant=not refuse,
                                      verify=client.ca_bundle, redirect_prefix=client.redirect_uri)
    if "error" in answer:
        raise click.ClickException(f"authorization refused: {answer['error']} {answer.get('error_description', '')}")
    return answer["code"]


@click.group("pgo", help="A PGO simulator: fetch data from and send measurements to a DVZA.")
def pgo_group() -> None:
    pass


@pgo_group.command("authorize-url", help="Print the URL that starts the flow in a browser.")
@_options
@click.option("--dienst", "diensten", multiple=True, default=["48"], show_default=True)
def authorize_url(diensten: tuple[str, ...], **settings: t.Any) -> None:
    client, _, aanbieder = _setup(**settings)
    click.echo(client.authorize_url(aanbieder, list(diensten)))


@pgo_group.command("fetch", help="Get a token and fetch BgZ (48) and/or documents (51).")
@_options
@click.option("--dienst", "diensten", multiple=True, default=["48"], show_default=True)
@click.option("--bsn", help="Log in through the development login as this person.")
@click.option("--code", help="An authorization code obtained in a browser.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (counts and resources).")
def fetch(diensten: tuple[str, ...], bsn: str | None, code: str | None, as_json: bool, **settings: t.Any) -> None:
    client, _, aanbieder = _setup(**settings)
    try:
        grant = client.exchange_code(aanbieder, _code(client, aanbieder, list(diensten), bsn, code))
        sections = fetch_bgz(client, aanbieder, grant.access_token) if "48" in diensten else []
        documents = fetch_documents(client, aanbieder, grant.access_token) if "51" in diensten else []
    except PgoError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"sections": [{"title": s.title, "count": len(s.resources), "lines": s.lines,
                                             "problems": s.problems} for s in sections],
                               "documents": documents}, indent=1, ensure_ascii=False))
        return
    for section in sections:
        click.echo(f"== {section.title} ({len(section.resources)})")
        for line in section.lines:
            click.echo(f"   {line}")
        for problem in section.problems:
            click.echo(f"   ! {problem}")
    for document in documents:
        click.echo(f"document: {document['title']} {document['date']} {document['url']}")


@pgo_group.command("send", help="Get a token for 53 and send a blood-pressure measurement.")
@_options
@click.option("--systolic", type=int, required=True)
@click.option("--diastolic", type=int, required=True)
@click.option("--dienst", default="53", show_default=True)
@click.option("--bsn", help="Log in through the development login as this person.")
@click.option("--code", help="An authorization code obtained in a browser.")
def send(systolic: int, diastolic: int, dienst: str, bsn: str | None, code: str | None, **settings: t.Any) -> None:
    client, _, aanbieder = _setup(**settings)
    try:
        grant = client.exchange_code(aanbieder, _code(client, aanbieder, [dienst], bsn, code))
        answer = client.post_bundle(aanbieder, grant.access_token, blood_pressure_bundle(systolic, diastolic))
    except (PgoError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line in batch_outcome(answer):
        click.echo(line)
