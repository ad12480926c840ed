"""``python -m certs`` / ``certs.cli.certs_group`` through click's CliRunner."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from certs import pki
from certs.cli import certs_group

PGO = "pgo.localhost"


def test_init_creates_then_reuses(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["init", "--out", str(tmp_path), "--server-host", "localhost", "--server-host", "dvza.localhost",
            "--client", PGO, "--client", "pgo2.localhost"]
    first = runner.invoke(certs_group, args)
    assert first.exit_code == 0, first.output
    assert "(created)" in first.output and "(reused)" not in first.output
    for name in ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "server-chain.pem",
                 f"{PGO}.pem", f"{PGO}-key.pem", f"{PGO}-chain.pem", "pgo2.localhost.pem"):
        assert (tmp_path / name).is_file(), name
    assert stat.S_IMODE((tmp_path / f"{PGO}-key.pem").stat().st_mode) == 0o600
    cert = pki.load_certificates((tmp_path / "server.pem").read_bytes())[0]
    assert pki.subject_alt_names(cert) == ["localhost", "dvza.localhost"]

    second = runner.invoke(certs_group, args)
    assert second.exit_code == 0, second.output
    assert "(created)" not in second.output and "nothing to do" in second.output


def test_init_defaults_and_intermediate(tmp_path: Path) -> None:
    result = CliRunner().invoke(certs_group, ["init", "--out", str(tmp_path), "--intermediate",
                                              "--key-type", "rsa-2048"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "intermediate.pem").is_file()
    cert = pki.load_certificates((tmp_path / "server.pem").read_bytes())[0]
    assert pki.subject_alt_names(cert) == list(pki.DEFAULT_SERVER_HOSTNAMES)
    assert pki.describe(cert)["key_type"] == "rsa-2048"


def test_client_command_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(certs_group, ["client", "--out", str(tmp_path), PGO])
    assert made.exit_code == 0, made.output
    cert_path = tmp_path / f"{PGO}.pem"
    thumbprint = pki.x5t_s256(cert_path.read_bytes())
    assert f"x5t#S256       {thumbprint}" in made.output
    assert (tmp_path / "ca.pem").is_file()

    shown = runner.invoke(certs_group, ["show", str(cert_path)])
    assert shown.exit_code == 0, shown.output
    assert f"subject:     CN={PGO}" in shown.output
    assert f"SANs:        {PGO}" in shown.output
    assert "issuer:      CN=medmij-dvza Development Root CA" in shown.output
    assert "EKU:         clientAuth" in shown.output
    assert f"x5t#S256:    {thumbprint}" in shown.output
    assert "not after:" in shown.output and "not before:" in shown.output


def test_bad_input_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_host = runner.invoke(certs_group, ["client", "--out", str(tmp_path), "*.pgo.localhost"])
    assert bad_host.exit_code == 2 and "not a valid host name" in bad_host.output
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    shown = runner.invoke(certs_group, ["show", str(junk)])
    assert shown.exit_code == 1 and "no certificate found" in shown.output


def test_python_dash_m_certs() -> None:
    result = subprocess.run([sys.executable, "-m", "certs", "--help"], capture_output=True, text=True, timeout=30,
                            cwd=Path(__file__).resolve().parents[2], check=False)
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m certs" in result.stdout
    for command in ("init", "show", "client"):
        assert command in result.stdout
