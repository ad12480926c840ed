"""Issue 15 end to end: our own PGO simulator and ``dvza pgo`` pass every Nictiz Cert client-role script
of BgZ, PDF/A, Vragenlijsten and Zelfmetingen.

A qualification session is started with the CLI the way a vendor does it (``dvza conformance client
start`` next to the running DVZA, only the demo PGO's traffic); the simulator (web app, driven like a
browser) and ``dvza pgo`` then do every scenario as the Nictiz test persons over the real network flow:
development login, consent, token over mutual TLS, certificate-bound access tokens, FHIR. The session
records that traffic and the report must say 0 failed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing as t
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from dvza.devtools.cli import DEVELOPMENT_BSNS
from dvza.devtools.testdata import placeholder_pdf
from dvza.pgo.cli import pgo_group
from tests.e2e.simulator import SimulatorBrowser

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

BSN = {"helleman": "999911120", "mesker": "999911284", "baltus": "999910796", "schulte": "999910784",
       "ellens": "999910863", "bourgonjee": "999911302", "bergzoon": "999911259",
       "vink": DEVELOPMENT_BSNS["XXXVINK"], "repscher": DEVELOPMENT_BSNS["XXXREPSCHER"],
       "boumann": DEVELOPMENT_BSNS["XXXBOUMANN"]}


def client_cli(network: t.Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``dvza conformance client …`` as a vendor runs it: a process next to the DVZA, on its database."""
    return subprocess.run([sys.executable, "-m", "dvza.cli", "conformance", "client", *args],
                          env=network.dvza_env(), capture_output=True, text=True, timeout=300)


def pgo(network: t.Any, *args: str) -> str:
    client = network.pki.clients[network.pgo_hostname]
    settings = ["--hostname", network.pgo_hostname, "--cert", str(client.cert), "--key", str(client.key),
                "--ca", str(network.pki.ca_cert), "--lists", str(network.lists_dir)]
    result = CliRunner().invoke(pgo_group, [args[0], *settings, *args[1:]])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_simulator_and_the_cli_pass_every_cert_client_script(network: t.Any, tmp_path: Path) -> None:
    started = client_cli(network, "start", "--set", "bgz", "--set", "pdfa", "--set", "questionnaires",
                         "--set", "selfmeasurements", "--pgo", network.pgo_hostname)
    assert started.returncode == 0, started.stdout + started.stderr
    session_id = started.stdout.split()[1]
    assert "step 1 of 3" in started.stdout
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    sim = SimulatorBrowser(network)
    aanbieder = network.aanbieder().naam

    # ---- BgZ 1.1 and 1.2: the whole BgZ of XXX_Helleman and of XXX_Mesker (only his Patient)
    for person in ("helleman", "mesker"):
        page = sim.post("/start", {"action": "fetch", "aanbieder": aanbieder, "dienst": "48"}, bsn=BSN[person])
        assert page.status_code == 200 and "Patiënt en huisarts" in page.text, page.text[:500]

    # ---- PDF/A 1.1–1.4 (XXX_Baltus): the documents, one period, and opening each one (the third is broken)
    page = sim.post("/start", {"action": "fetch", "aanbieder": aanbieder, "dienst": "51"}, bsn=BSN["baltus"])
    result = sim.result_of(page)
    documents = re.findall(rf'href="(/document/{result}/\d+)"', page.text)
    assert len(documents) == 3, page.text
    opened = [sim.get(link) for link in documents]
    assert sorted(r.headers["Content-Type"].split(";")[0] for r in opened) == ["application/pdf", "application/pdf",
                                                                                  "text/html"]
    assert "Het document kon niet worden geopend" in next(r.text for r in opened if r.status_code != 200)
    period = sim.post(f"/gegevens/{result}/documenten", {"since": day(-730), "until": day(-365)})
    assert "Geen documenten in deze periode" in period.text
    # ---- PDF/A 2.1–2.2 (XXX_Schulte): document sets, their documents read one by one
    page = sim.post("/start", {"action": "fetch", "aanbieder": aanbieder, "dienst": "51"}, bsn=BSN["schulte"])
    assert page.text.count("Documentenset:") == 2, page.text
    # ---- PDF/A 3.1 (XXX_Ellens, simulator) and 3.2 (dvza pgo): one document, then a set of two
    pdf = placeholder_pdf("Mijn meetverslag", "urn:test")
    sent = sim.post("/start", {"action": "documents", "aanbieder": aanbieder, "title": "Mijn meetverslag"},
                    files={"document": ("verslag.pdf", pdf, "application/pdf")}, bsn=BSN["ellens"])
    assert "Het is gestuurd" in sent.text and "Mijn meetverslag" in sent.text, sent.text
    for name in ("brief-a", "brief-b"):
        (tmp_path / f"{name}.pdf").write_bytes(placeholder_pdf(name, "urn:test"))
    output = pgo(network, "send-documents", str(tmp_path / "brief-a.pdf"), str(tmp_path / "brief-b.pdf"),
                 "--title", "Twee brieven", "--bsn", BSN["ellens"])
    assert output.count("201 Created") == 5 and "200 OK Patient/" in output, output

    # ---- Zelfmetingen 1.1–1.7 (XXX_Bourgonjee): every vital sign, then per kind, the latest, periods
    page = sim.post("/start", {"action": "fetch", "aanbieder": aanbieder, "dienst": "52"}, bsn=BSN["bourgonjee"])
    result = sim.result_of(page)
    for choice in ({"kind": "bloeddruk"}, {"kind": "gewicht", "latest": "yes"}, {"kind": "glucose"},
                   {"kind": "hartslag"}, {"kind": "bloeddruk", "since": day(-100), "until": day(-50)},
                   {"kind": "hoofdmetingen", "since": day(-30), "until": day(0)}):
        shown = sim.post(f"/gegevens/{result}/meetwaarden", choice)
        assert shown.status_code == 200 and "Meetwaarden" in shown.text
    # ---- Zelfmetingen 2.1 (XXX_Bergzoon, simulator): the latest body weight; 2.2 and 2.3 with dvza pgo
    sent = sim.post("/start", {"action": "send", "aanbieder": aanbieder, "kind": "gewicht", "value": "81,5",
                               "when": f"{day(-1)}T08:00"}, bsn=BSN["bergzoon"])
    assert "Lichaamsgewicht 81.5 kg" in sent.text, sent.text
    pressures = [f"bloeddruk={120 + i}/{80 + i}@{day(-i * 5)}T08:00" for i in range(4)]
    output = pgo(network, "send", *[f"--measurement={m}" for m in pressures], "--bsn", BSN["bergzoon"])
    assert output.count("201 Created Observation/") == 4, output
    mixed = pressures + [f"glucose=5.{i}@{day(-i)}T07:00" for i in range(4)] + \
        [f"gewicht=8{i}.5@{day(-i)}T07:05" for i in range(4)] + [f"hartslag=64@{day(-2)}T07:10"]
    output = pgo(network, "send", *[f"--measurement={m}" for m in mixed], "--bsn", BSN["bergzoon"])
    assert output.count("201 Created Observation/") == 13, output

    # ---- Vragenlijsten 1.1/2.1/3.1 (XXX_Vink): the session's Task, its questionnaire, accept, answer
    answer_questionnaire(sim, aanbieder, "vink", {
        "q:gewicht": "82,5", "q:lengte": "181", "q:roken": "nee", "q:ooitgerookt": "ja", "q:onderbehandeling": "nee",
        "q:geneesmiddelen": "ja", "q:facebook": "nee", "q:mobiel": "0612345678", "q:toestemmingbelafspraak": "ja"})

    stepped = client_cli(network, "next", session_id)
    assert stepped.returncode == 0 and "step 2 of 3" in stepped.stdout, stepped.stdout + stepped.stderr
    # ---- 1.2/2.2/3.2 (XXX_Vink, PHQ-9, simulator); 1.3/2.3/3.3 (XXX_Repscher, dvza pgo); 1.5/2.5 (XXX_Boumann)
    answer_questionnaire(sim, aanbieder, "vink", None)
    listing = json.loads(pgo(network, "questionnaires", "--bsn", BSN["repscher"], "--json"))
    assert len(listing) == 1 and listing[0]["available"], listing
    (tmp_path / "answers.json").write_text(json.dumps({
        "gewicht": "70", "lengte": 170, "roken": "nee", "onderbehandeling": "nee", "geneesmiddelen": "nee",
        "facebook": "nee", "mobiel": "0611111111", "toestemmingbelafspraak": "nee"}))
    output = pgo(network, "answer", "--task", listing[0]["task"], "--answers", str(tmp_path / "answers.json"),
                 "--bsn", BSN["repscher"])
    assert "200 OK Task/" in output and "201 Created QuestionnaireResponse/" in output, output
    tasks = sim.post("/start", {"action": "questionnaires", "aanbieder": aanbieder}, bsn=BSN["boumann"])
    task_form = re.search(r'action="(/vragenlijsten/[^"]+)"', tasks.text)
    assert task_form, tasks.text
    failed = sim.post(task_form.group(1), {"action": "invullen"})
    assert "Vragenlijst niet beschikbaar" in failed.text, failed.text

    stepped = client_cli(network, "next", session_id)
    assert stepped.returncode == 0 and "step 3 of 3" in stepped.stdout, stepped.stdout + stepped.stderr
    # ---- 1.6/2.6 (XXX_Boumann, PHQ-9 extended): the person declines
    listing = json.loads(pgo(network, "questionnaires", "--bsn", BSN["boumann"], "--json"))
    assert len(listing) == 1, listing
    assert "rejected" in pgo(network, "answer", "--task", listing[0]["task"], "--decline", "--bsn", BSN["boumann"])

    junit = tmp_path / "client-qualification.xml"
    ended = client_cli(network, "end", session_id, "--junit", str(junit))
    report = ended.stdout
    assert ended.returncode == 0, report[-8000:] + ended.stderr[-2000:]
    assert re.search(r"^\d{3,} passed, 0 failed$", report.rstrip().splitlines()[-1]), report[-3000:]
    assert report.count("PASS ") == 25 and b'failures="0"' in junit.read_bytes()


def answer_questionnaire(sim: SimulatorBrowser, aanbieder: str, person: str, answers: dict[str, str] | None) -> None:
    """In the simulator: the person's open questionnaire → fill in → send (59, then 60). ``None``: pick the
    first option of every question (PHQ-9)."""
    tasks = sim.post("/start", {"action": "questionnaires", "aanbieder": aanbieder}, bsn=BSN[person])
    forms = re.findall(r'action="(/vragenlijsten/[^"]+)"', tasks.text)
    assert len(forms) == 1, tasks.text
    form = sim.post(forms[0], {"action": "invullen"})
    assert form.status_code == 200 and "Versturen" in form.text, form.text[:1000]
    if answers is None:
        answers = {}
        for name, value in re.findall(r'type="radio" id="[^"]+" name="(q:[^"]+)" value="([^"]+)"', form.text):
            answers.setdefault(name, value)
    sent = sim.post(form.url, answers, bsn=BSN[person])
    assert "Het is gestuurd" in sent.text and "Antwoorden op" in sent.text, sent.text[:2000]
