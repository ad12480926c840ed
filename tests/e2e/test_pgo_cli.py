"""``dvza pgo fetch|send``: the simulator as a command line, against the running development network."""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t

import pytest
from click.testing import CliRunner

from dvza.pgo.cli import pgo_group
from tests.e2e.conftest import person
from tests.support import CERT_SETS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def settings(network: t.Any) -> list[str]:
    client = network.pki.clients[network.pgo_hostname]
    return ["--hostname", network.pgo_hostname, "--cert", str(client.cert), "--key", str(client.key),
            "--ca", str(network.pki.ca_cert), "--lists", str(network.lists_dir),
            "--redirect-uri", f"{network.pgo_url}/callback"]


def test_fetch_prints_the_bgz_per_section(network: t.Any) -> None:
    result = CliRunner().invoke(pgo_group, ["fetch", *settings(network), "--bsn", person(network), "--json"])
    assert result.exit_code == 0, result.output
    sections = {s["title"]: s for s in json.loads(result.output)["sections"]}
    assert sections["Patiënt en huisarts"]["count"] == 1
    assert sum(s["count"] for s in sections.values()) > 10
    assert not any(s["problems"] for s in sections.values())


def test_fetch_for_a_person_without_data_says_so(network: t.Any) -> None:
    result = CliRunner().invoke(pgo_group, ["fetch", *settings(network), "--dienst", "51", "--bsn", person(network)])
    assert result.exit_code != 0 and "No such resources." in result.output


def test_send_posts_a_blood_pressure(network: t.Any) -> None:
    result = CliRunner().invoke(pgo_group, ["send", *settings(network), "--bsn", person(network),
                                            "--systolic", "141", "--diastolic", "92"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # the Patient entry is matched to the token's patient (never created), the Observation is created
    assert lines[0].startswith("200 OK Patient/") and lines[1].startswith("201 Created Observation/"), lines


def test_authorize_url_names_the_pgo_and_the_scope(network: t.Any) -> None:
    result = CliRunner().invoke(pgo_group, ["authorize-url", *settings(network), "--dienst", "51"])
    assert result.exit_code == 0
    assert "client_id=pgo.localhost" in result.output and "scope=umcdemo~51" in result.output


def bare_settings(network: t.Any) -> list[str]:
    """The settings a vendor types after ``make run``: no --redirect-uri (it comes from the lists folder)."""
    return [a for a in settings(network) if not a.startswith("--redirect-uri") and "/callback" not in a]


def test_authorize_url_uses_the_simulator_callback_and_says_what_next(network: t.Any) -> None:
    from urllib.parse import parse_qs
    from urllib.parse import urlsplit

    result = CliRunner().invoke(pgo_group, ["authorize-url", *bare_settings(network), "--dienst", "48"])
    assert result.exit_code == 0
    url = result.stdout.strip()
    assert parse_qs(urlsplit(url).query)["redirect_uri"] == [f"{network.pgo_url}/callback"]  # with its port
    assert "dvza pgo fetch --code CODE --dienst 48" in result.stderr


def test_fetch_narrowed_to_what_the_dvza_granted(network: t.Any) -> None:
    """BgZ and documents asked, only BgZ available: the BgZ is shown, documents are not asked for."""
    result = CliRunner().invoke(pgo_group, ["fetch", *bare_settings(network), "--dienst", "48", "--dienst", "51",
                                            "--bsn", person(network), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["granted"] == ["48"] and out["documents"] == [] and len(out["sections"]) > 10
    assert "granted 48 of 48 51; not fetched: 51" in result.stderr


def test_fetch_refuses_what_it_cannot_fetch_and_explains_tls(network: t.Any) -> None:
    for dienst, command in (("60", "answer"), ("53", "send"), ("59", "questionnaires")):
        result = CliRunner().invoke(pgo_group, ["fetch", *settings(network), "--dienst", dienst, "--bsn", "1"])
        assert result.exit_code != 0 and f"dvza pgo {command}" in result.output
    without_ca = [a for a in bare_settings(network)]
    del without_ca[without_ca.index("--ca"):without_ca.index("--ca") + 2]
    result = CliRunner().invoke(pgo_group, ["fetch", *without_ca, "--bsn", person(network)])
    # the development CA is not in the system's trust store: a clear message, no traceback
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "--ca" in result.output and "var/pki/ca.pem" in result.output


def test_fetch_with_long_term_consent_fetches_again_with_the_refresh_token(network: t.Any) -> None:
    result = CliRunner().invoke(pgo_group, ["fetch", *settings(network), "--bsn", person(network), "--long-term",
                                            "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["long_term"] == {"refreshed": True, "granted": ["48"]}


def test_measurements_documents_and_questionnaires_from_the_command_line(network: t.Any) -> None:
    bourgonjee = person(network, "Zelfmetingen")
    result = CliRunner().invoke(pgo_group, ["fetch", *settings(network), "--dienst", "52", "--kind", "gewicht",
                                            "--latest", "--bsn", bourgonjee, "--json"])
    assert result.exit_code == 0, result.output
    measured = json.loads(result.stdout)["measurements"]
    assert measured["query"] == "Observation/$lastn?code=http://loinc.org|29463-7" and len(measured["lines"]) == 1
    baltus = person(network, "PDF/A")
    result = CliRunner().invoke(pgo_group, ["fetch", *settings(network), "--dienst", "51", "--open", "1",
                                            "--bsn", baltus, "--json"])
    assert result.exit_code == 0, result.output
    opened = json.loads(result.stdout)["opened"]
    assert opened[0]["type"] == "application/pdf" and opened[0]["bytes"] > 100
    template = (CERT_SETS["questionnaires"] / "_reference/resources/resources-specific" /
                "medmij-questionnaires-vl-QuestionnaireProvisioningTask-XXX_Vink-Intake-REQUESTED.xml")
    subprocess.run([sys.executable, "-m", "dvza.cli", "testdata", "task", str(template)],
                   env=network.dvza_env(), check=True, capture_output=True)
    vink = next(p["bsn"] for p in network.dev_persons() if p["name"].startswith("XXX_Vink"))
    result = CliRunner().invoke(pgo_group, ["questionnaires", *settings(network), "--bsn", vink])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("task ") and "Intake nieuwe patiënt" in result.output
    assert "gewicht (decimal, required): Wat is uw gewicht in kg?" in result.output
