"""The ``lists`` click group, driven with CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from medmij_lists import parse_file
from medmij_lists.cli import lists_group
from tests.medmij_lists.samples import REPO
from tests.medmij_lists.samples import gnl_xml
from tests.medmij_lists.samples import needs_lists
from tests.medmij_lists.samples import ocl_xml
from tests.medmij_lists.samples import whl_xml


def test_group_name_and_commands() -> None:
    assert lists_group.name == "lists"
    assert set(lists_group.commands) == {"show", "validate", "refresh", "demo"}


def test_importing_the_group_does_not_import_flask() -> None:
    code = "import sys, medmij_lists.cli, medmij_lists; assert 'flask' not in sys.modules, 'flask'; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_validate_ok_and_invalid(tmp_path) -> None:
    good = tmp_path / "ocl.xml"
    good.write_bytes(ocl_xml())
    bad = tmp_path / "whl.xml"
    bad.write_bytes(whl_xml(hosts=["nodot"]))
    runner = CliRunner()
    result = runner.invoke(lists_group, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "OCL Volgnummer 1" in result.output
    result = runner.invoke(lists_group, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"INVALID {bad}" in result.output and "nodot" in result.output and "rule: xsd" in result.output
    result = runner.invoke(lists_group, ["validate", str(tmp_path / "missing.xml")])
    assert result.exit_code == 1 and "cannot read" in result.output


def test_validate_development_flag(tmp_path) -> None:
    path = tmp_path / "ocl.xml"
    path.write_bytes(ocl_xml(clients=[("pgo.localhost", "Demo PGO")]))
    runner = CliRunner()
    strict = runner.invoke(lists_group, ["validate", str(path)])
    assert strict.exit_code == 1 and "special-use" in strict.output
    assert runner.invoke(lists_group, ["validate", "--development", str(path)]).exit_code == 0


def test_validate_official_examples() -> None:
    files = sorted(str(p) for p in needs_lists().glob("*/examples/*.xml"))
    result = CliRunner().invoke(lists_group, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("OK ") == len(files)


def test_show_file_summary_and_json(tmp_path) -> None:
    path = tmp_path / "gnl.xml"
    path.write_bytes(gnl_xml(diensten=[("48", "Basisgegevens zorg"), ("51", "Documenten")]))
    runner = CliRunner()
    result = runner.invoke(lists_group, ["show", str(path)])
    assert result.exit_code == 0, result.output
    assert "GNL (Gegevensdienstnamenlijst) Volgnummer 1" in result.output and "Documenten" in result.output
    result = runner.invoke(lists_group, ["show", "--json", str(path)])
    data = json.loads(result.output)
    assert data["kind"] == "GNL"
    assert data["gegevensdiensten"][1] == {"id": "51", "weergavenaam": "Documenten"}
    result = runner.invoke(lists_group, ["show", "--kind", "ocl", str(path)])
    assert result.exit_code == 1 and "expected a OCL" in result.output


def test_show_needs_file_or_env() -> None:
    result = CliRunner().invoke(lists_group, ["show"])
    assert result.exit_code == 2


def test_show_from_env(tmp_path) -> None:
    (tmp_path / "ocl.xml").write_bytes(ocl_xml())
    env = {"DVZA_LISTS_OCL_URL": str(tmp_path / "ocl.xml"), "DVZA_LISTS_CACHE_DIR": str(tmp_path / "cache")}
    result = CliRunner().invoke(lists_group, ["show", "--from-env", "--kind", "OCL"], env=env)
    assert result.exit_code == 0, result.output
    assert "pgo.example.nl  Voorbeeld PGO" in result.output


def test_refresh_prints_status_json(tmp_path) -> None:
    (tmp_path / "ocl.xml").write_bytes(ocl_xml(4))
    env = {
        "DVZA_LISTS_OCL_URL": str(tmp_path / "ocl.xml"),
        "DVZA_LISTS_GNL_URL": str(tmp_path / "missing.xml"),
        "DVZA_LISTS_CACHE_DIR": str(tmp_path / "cache"),
    }
    runner = CliRunner()
    result = runner.invoke(lists_group, ["refresh"], env=env)
    assert result.exit_code == 1  # the GNL failed
    status = json.loads(result.output)
    assert status["OCL"]["volgnummer"] == 4 and status["OCL"]["last_error"] is None
    assert status["GNL"]["volgnummer"] is None and "cannot read" in status["GNL"]["last_error"]
    assert (tmp_path / "cache" / "MedMij_OAuthclientlist.xml").read_bytes() == ocl_xml(4)

    env.pop("DVZA_LISTS_GNL_URL")
    result = runner.invoke(lists_group, ["refresh"], env=env)
    assert result.exit_code == 0, result.output


def test_refresh_without_configuration(monkeypatch) -> None:
    for name in ("ZAL", "OCL", "GNL", "WHL", "ZAKL"):
        monkeypatch.delenv(f"DVZA_LISTS_{name}_URL", raising=False)
    result = CliRunner().invoke(lists_group, ["refresh"])
    assert result.exit_code == 2 and "DVZA_LISTS_" in result.output


def test_demo_command(tmp_path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        lists_group,
        ["demo", str(out), "--frontchannel-port", "9443", "--backchannel-port", "9444", "--gegevensdienst", "48=BgZ"],
    )
    assert result.exit_code == 0, result.output
    zal = parse_file(out / "MedMij_Zorgaanbiederslijst.xml", development=True)
    dienst = zal.aanbieder("demoziekenhuis").gegevensdienst("48")
    assert dienst.authorization_endpoint == "https://dvza.localhost:9443/oauth/authorize"
    assert dienst.token_endpoint == "https://dvza.localhost:9444/oauth/token"
    assert dienst.resource_endpoints == ("https://dvza.localhost:9444/fhir",)
    whl = parse_file(out / "MedMij_Whitelist.xml", development=True)
    assert whl.hostnames == ("pgo.localhost", "dvza.localhost")
    assert parse_file(out / "MedMij_Gegevensdienstnamenlijst.xml", development=True).ids == ("48",)
    result = CliRunner().invoke(lists_group, ["validate", "--development", *map(str, sorted(out.glob("*.xml")))])
    assert result.exit_code == 0, result.output


def test_demo_command_defaults_and_errors(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(lists_group, ["demo", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    gnl = parse_file(tmp_path / "d" / "MedMij_Gegevensdienstnamenlijst.xml", development=True)
    assert {"48", "51", "52", "53", "57", "59", "60"} == set(gnl.ids)
    assert runner.invoke(lists_group, ["demo", str(tmp_path / "e"), "--gegevensdienst", "48"]).exit_code == 2
    bad = runner.invoke(lists_group, ["demo", str(tmp_path / "f"), "--pgo-hostname", "pgo"])
    assert bad.exit_code == 1 and "pgo" in bad.output
