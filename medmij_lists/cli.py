"""``lists`` command group (click only; no Flask import): show, validate, refresh and write demo MedMij lists.

The application registers :data:`lists_group` on its own CLI. Exit codes: 0 ok, 1 a list was refused or a refresh
failed, 2 usage/configuration error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import typing as t
from pathlib import Path

import click

from medmij_lists.demo import write_demo_lists
from medmij_lists.errors import ListError
from medmij_lists.models import GegevensdienstNamenLijst
from medmij_lists.models import ListKind
from medmij_lists.models import MedMijList
from medmij_lists.models import OAuthClientList
from medmij_lists.models import Whitelist
from medmij_lists.models import Zorgaanbiederskoppellijst
from medmij_lists.models import Zorgaanbiederslijst
from medmij_lists.parser import parse_file
from medmij_lists.service import ListService

#: VIPP 5 gegevensdiensten for the demo GNL (protocol doc §6; names as in the MGO table where it gives one).
DEFAULT_DEMO_GEGEVENSDIENSTEN = {
    "48": "Verzamelen Basisgegevens zorg 3.0",
    "51": "Verzamelen Documenten 3.0",
    "52": "Verzamelen Meetwaarden vitale functies 2.0",
    "53": "Delen Meetwaarden vitale functies",
    "57": "Delen Documenten",
    "59": "Verzamelen Verwijzing naar vragenlijst 2.0",
    "60": "Delen Antwoorden op vragenlijst",
}

_KIND = click.Choice([k.value for k in ListKind], case_sensitive=False)


def list_to_dict(parsed: MedMijList) -> dict[str, t.Any]:
    """A JSON-ready dict of a parsed list (public fields only)."""

    def convert(value: t.Any) -> t.Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return value

    return {"kind": parsed.kind.value, **convert(parsed)}


def _summary_lines(parsed: MedMijList) -> list[str]:
    lines = [
        f"{parsed.kind.value} ({parsed.kind.title}) Volgnummer {parsed.volgnummer}, "
        f"Tijdstempel {parsed.tijdstempel.isoformat()}, {len(parsed)} entries"
    ]
    if isinstance(parsed, OAuthClientList):
        lines += [f"  {c.hostname}  {c.organisatienaam}" for c in parsed.clients]
    elif isinstance(parsed, GegevensdienstNamenLijst):
        lines += [f"  {g.id:>4}  {g.weergavenaam}" for g in parsed.gegevensdiensten]
    elif isinstance(parsed, Whitelist):
        lines += [f"  {h}" for h in parsed.hostnames]
    elif isinstance(parsed, Zorgaanbiederslijst):
        lines[0] += f", {parsed.release}"
        for z in parsed.zorgaanbieders:
            lines.append(f"  {z.naam}" + (f" ({z.aanbiedertype})" if z.aanbiedertype else ""))
            for g in z.gegevensdiensten:
                versie = f" [{g.interfaceversie}]" if g.interfaceversie else ""
                lines.append(f"    {g.id}{versie}: authorize {g.authorization_endpoint}, token {g.token_endpoint}")
                lines += [f"      {r.code}: {r.resource_endpoint}" for r in g.systeemrollen]
    elif isinstance(parsed, Zorgaanbiederskoppellijst):
        for z in parsed.zorgaanbieders:
            ids = ", ".join(f"{k}={v}" for k, v in z.kenmerken)
            lines.append(f"  {z.naam} {ids}")
            lines += [f"    {g.id}: {g.weergavenaam}" for g in z.gegevensdiensten]
    return lines


def _emit(parsed: MedMijList, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(list_to_dict(parsed), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(_summary_lines(parsed)))


@click.group("lists")
def lists_group() -> None:
    """MedMij lists (ZAL, OCL, GNL, Whitelist): show, validate, refresh, write demo lists."""


@lists_group.command("show")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=_KIND, help="Only this list (with FILE: require this kind).")
@click.option("--from-env", is_flag=True, help="Use the lists configured by DVZA_LISTS_* (cache, then refresh).")
@click.option("--development", is_flag=True, help="Development network only; not MedMij-valid.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a summary.")
def show_command(file: Path | None, kind: str | None, from_env: bool, development: bool, as_json: bool) -> None:
    """Show a list FILE, or the current lists from the environment (--from-env)."""
    wanted = ListKind(kind.upper()) if kind else None
    if (file is None) == (not from_env):
        raise click.UsageError("give either FILE or --from-env")
    if file is not None:
        try:
            parsed = parse_file(file, development=development, expected_kind=wanted)
        except ListError as exc:
            click.echo(f"INVALID {file}: {exc}", err=True)
            sys.exit(1)
        _emit(parsed, as_json)
        return
    service = _service_from_env(development)
    service.load_cache()
    service.refresh([wanted] if wanted else None)
    failed = False
    for list_kind in [wanted] if wanted else list(service.urls):
        current = service.current(list_kind)
        if current is None:
            status = service.status().get(list_kind)
            click.echo(
                f"{list_kind.value}: not available ({status.last_error if status else 'not configured'})", err=True
            )
            failed = True
            continue
        _emit(current, as_json)
    if failed:
        sys.exit(1)


@lists_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--development", is_flag=True, help="Development network only; not MedMij-valid.")
@click.option("--kind", type=_KIND, help="Require every FILE to be this kind of list.")
def validate_command(files: tuple[Path, ...], development: bool, kind: str | None) -> None:
    """Validate list FILES against the schemas and MedMij rules; exit 1 if any is refused."""
    wanted = ListKind(kind.upper()) if kind else None
    bad = 0
    for path in files:
        try:
            parsed = parse_file(path, development=development, expected_kind=wanted)
        except ListError as exc:
            click.echo(f"INVALID {path}: {exc}")
            bad += 1
        except OSError as exc:
            click.echo(f"INVALID {path}: cannot read: {exc.strerror or exc}")
            bad += 1
        else:
            click.echo(f"OK {path}: {parsed.kind.value} Volgnummer {parsed.volgnummer}, {len(parsed)} entries")
    if bad:
        sys.exit(1)


@lists_group.command("refresh")
@click.option("--development", is_flag=True, help="Development network only; not MedMij-valid.")
def refresh_command(development: bool) -> None:
    """Load the cache, fetch every DVZA_LISTS_*_URL once and print the status JSON; exit 1 if a list failed."""
    service = _service_from_env(development)
    service.load_cache()
    service.refresh()
    status = service.status_dict()
    click.echo(json.dumps(status, indent=2, ensure_ascii=False))
    if any(s["last_error"] or s["volgnummer"] is None for s in status.values()):
        sys.exit(1)


def _service_from_env(development: bool) -> ListService:
    try:
        service = ListService.from_env(os.environ, **({"development": True} if development else {}))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not service.urls:
        raise click.UsageError("no list configured: set DVZA_LISTS_{ZAL,OCL,GNL,WHL}_URL")
    return service


def _parse_dienst(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        key, sep, name = value.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise click.BadParameter(f"{value!r} is not ID=NAME")
        result[key.strip()] = name.strip()
    return result


def _url(host: str, port: int, path: str) -> str:
    netloc = host if port == 443 else f"{host}:{port}"
    return f"https://{netloc}/{path.strip('/')}"


@lists_group.command("demo")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dvza-hostname", default="dvza.localhost", show_default=True)
@click.option("--pgo-hostname", default="pgo.localhost", show_default=True)
@click.option("--pgo-name", default="Demo PGO", show_default=True)
@click.option("--aanbieder-naam", default="demoziekenhuis", show_default=True, help="ZAL name, without @medmij.")
@click.option("--aanbieder-weergavenaam", default="Demo Ziekenhuis", show_default=True)
@click.option("--frontchannel-port", type=click.IntRange(1, 65535), default=8443, show_default=True)
@click.option("--backchannel-port", type=click.IntRange(1, 65535), default=8444, show_default=True)
@click.option("--authorize-path", default="/oauth/authorize", show_default=True)
@click.option("--token-path", default="/oauth/token", show_default=True)
@click.option("--fhir-path", default="/fhir", show_default=True)
@click.option("--gegevensdienst", "gegevensdiensten", multiple=True, callback=_parse_dienst, metavar="ID=NAME")
@click.option("--volgnummer", type=click.IntRange(min=1), default=1, show_default=True)
def demo_command(
    out_dir: Path,
    dvza_hostname: str,
    pgo_hostname: str,
    pgo_name: str,
    aanbieder_naam: str,
    aanbieder_weergavenaam: str,
    frontchannel_port: int,
    backchannel_port: int,
    authorize_path: str,
    token_path: str,
    fhir_path: str,
    gegevensdiensten: dict[str, str],
    volgnummer: int,
) -> None:
    """Write a consistent set of demo lists to OUT_DIR (development network only; not MedMij-valid)."""
    try:
        paths = write_demo_lists(
            out_dir,
            dvza_hostname=dvza_hostname,
            aanbieder_naam=aanbieder_naam,
            aanbieder_weergavenaam=aanbieder_weergavenaam,
            pgo_hostname=pgo_hostname,
            pgo_name=pgo_name,
            gegevensdiensten=gegevensdiensten or DEFAULT_DEMO_GEGEVENSDIENSTEN,
            authorize_url=_url(dvza_hostname, frontchannel_port, authorize_path),
            token_url=_url(dvza_hostname, backchannel_port, token_path),
            fhir_base_url=_url(dvza_hostname, backchannel_port, fhir_path),
            volgnummer=volgnummer,
        )
    except (ListError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for kind, path in paths.items():
        click.echo(f"{kind.value}: {path}")
