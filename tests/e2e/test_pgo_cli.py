"""``dvza pgo fetch|send``: the simulator as a command line, against the running development network."""

from __future__ import annotations

import json
import typing as t

import pytest
from click.testing import CliRunner

from dvza.pgo.cli import pgo_group
from tests.e2e.conftest import person

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
