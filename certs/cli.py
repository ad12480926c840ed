"""``python -m certs`` / ``dvza certs``: make and inspect the development PKI (see :mod:`certs.pki`).

``certs_group`` is a plain click group so the application CLI can mount it with ``add_command``.
"""

from __future__ import annotations

from pathlib import Path

import click

from certs import pki

DEFAULT_OUT = "var/certs"

_out_option = click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT,
                           show_default=True, help="Directory of the PKI files (keys are written mode 0600).")
_key_type_option = click.option("--key-type", type=click.Choice(pki.KEY_TYPES), default="ec-p256", show_default=True,
                                help="Key algorithm of newly issued certificates.")


def _report(directory: Path, written: tuple[Path, ...], shown: list[tuple[str, Path]]) -> None:
    for label, path in shown:
        state = "created" if path in written else "reused"
        click.echo(f"{label:<14} {path}  ({state})")
    if not written:
        click.echo(f"nothing to do: every certificate in {directory} is valid for more than "
                   f"{pki.RENEW_WITHIN.days} days")


@click.group("certs")
def certs_group() -> None:
    """Development PKI: root CA, DVZA server certificate and PGO client certificates (not for production:
    MedMij's backchannel needs PKIoverheid Private Root CA - G1 certificates)."""


@certs_group.command("init")
@_out_option
@click.option("--server-host", "server_hosts", multiple=True, metavar="NAME",
              help="Host name or IP address for the server certificate's SAN (repeatable). "
                   f"Default: {', '.join(pki.DEFAULT_SERVER_HOSTNAMES)}.")
@click.option("--client", "clients", multiple=True, metavar="HOSTNAME",
              help="PGO node host name (= its OAuth client_id) to issue a client certificate for (repeatable).")
@click.option("--intermediate/--no-intermediate", default=False, show_default=True,
              help="Sign the server and client certificates with an intermediate CA.")
@_key_type_option
def init_command(out: Path, server_hosts: tuple[str, ...], clients: tuple[str, ...], intermediate: bool,
                 key_type: str) -> None:
    """Create the PKI in --out, or reuse what is there and still valid."""
    try:
        result = pki.ensure_dev_pki(out, server_hosts or pki.DEFAULT_SERVER_HOSTNAMES, clients,
                                    intermediate=intermediate, key_type=key_type)
    except pki.PkiError as exc:
        raise click.BadParameter(str(exc)) from exc
    shown = [("ca", result.ca_cert), ("ca key", result.ca_key)]
    if result.intermediate_cert:
        shown += [("intermediate", result.intermediate_cert)]
    shown += [("server", result.server_cert), ("server key", result.server_key), ("server chain", result.server_chain)]
    for host, files in result.clients.items():
        shown += [(f"client {host}", files.cert), ("  key", files.key), ("  chain", files.chain)]
    _report(result.directory, result.written, shown)


@certs_group.command("client")
@_out_option
@_key_type_option
@click.argument("hostname")
def client_command(out: Path, key_type: str, hostname: str) -> None:
    """Issue a client certificate for the PGO node HOSTNAME (CN = SAN = HOSTNAME) with the CA in --out."""
    try:
        files, written = pki.ensure_client_certificate(out, hostname, key_type=key_type)
    except pki.PkiError as exc:
        raise click.BadParameter(str(exc), param_hint="HOSTNAME") from exc
    _report(out, written, [("cert", files.cert), ("key", files.key), ("chain", files.chain)])
    click.echo(f"x5t#S256       {pki.x5t_s256(files.cert.read_bytes())}")


@certs_group.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def show_command(file: Path) -> None:
    """Print subject, issuer, SANs, validity and x5t#S256 of every certificate in FILE (PEM or DER)."""
    try:
        certificates = pki.load_certificates(file.read_bytes())
    except ValueError as exc:
        raise click.ClickException(f"{file}: no certificate found ({exc})") from exc
    for index, certificate in enumerate(certificates):
        if index:
            click.echo()
        info = pki.describe(certificate)
        click.echo(f"subject:     {info['subject']}")
        click.echo(f"issuer:      {info['issuer']}")
        click.echo(f"serial:      {info['serial']}")
        click.echo(f"SANs:        {', '.join(info['subject_alt_names']) or '-'}")
        click.echo(f"not before:  {info['not_before']}")
        click.echo(f"not after:   {info['not_after']}")
        click.echo(f"CA:          {'yes' if info['ca'] else 'no'}")
        click.echo(f"EKU:         {', '.join(info['extended_key_usage']) or '-'}")
        click.echo(f"key:         {info['key_type']}")
        click.echo(f"x5t#S256:    {info['x5t#S256']}")
