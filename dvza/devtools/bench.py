"""``make bench``: speed of the BgZ read path, measured through gunicorn over HTTP.

Prints (targets live here, not in timed tests):

* sequential time for one patient's 28 BgZ searches, JSON and XML (fhir-content.md §2.1);
* searches per second with N concurrent clients (separate processes) against W gunicorn workers;
* the XML/JSON cost ratio for the same bundles (target: XML at most twice JSON);
* the bulk import rate (``dvza source import`` of synthetic NDJSON, :mod:`dvza.devtools.synthetic`, into the
  same database): resources per second and what 100 000 resources take (target: minutes, not hours).

Usage: ``python -m dvza.devtools.bench [--workers 2] [--clients 4] [--duration 10] [--database-url URL]
[--import-resources 10000]``.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path
from urllib.parse import quote
from urllib.parse import urlsplit

import requests

HELLEMAN_TOKEN = "93cde269-ce35-4077-a39d-19296670e949"
BGZ_SEARCHES = [
    "Patient?_include=Patient:general-practitioner",
    "Coverage?_include=Coverage:payor:Patient&_include=Coverage:payor:Organization",
    "Consent?category=http://snomed.info/sct|11291000146105",
    "Consent?category=http://snomed.info/sct|11341000146107",
    "Observation/$lastn?category=http://snomed.info/sct|118228005,http://snomed.info/sct|384821006",
    "Condition",
    "Observation/$lastn?code=http://snomed.info/sct|365508006",
    "Observation?code=http://snomed.info/sct|228366006",
    "Observation?code=http://snomed.info/sct|228273003",
    "Observation?code=http://snomed.info/sct|365980008",
    "NutritionOrder",
    "Flag",
    "AllergyIntolerance",
    "MedicationStatement?category=urn:oid:2.16.840.1.113883.2.4.3.11.60.20.77.5.3|6"
    "&_include=MedicationStatement:medication",
    "MedicationRequest?category=http://snomed.info/sct|16076005&_include=MedicationRequest:medication",
    "MedicationDispense?category=http://snomed.info/sct|422037009&_include=MedicationDispense:medication",
    "DeviceUseStatement?_include=DeviceUseStatement:device",
    "Immunization?status=completed",
    "Observation/$lastn?code=http://loinc.org|85354-9",
    "Observation/$lastn?code=http://loinc.org|29463-7",
    "Observation/$lastn?code=http://loinc.org|8302-2,http://loinc.org|8306-3,http://loinc.org|8308-9",
    "Observation/$lastn?category=http://snomed.info/sct|275711006&_include=Observation:related-target"
    "&_include=Observation:specimen",
    "Procedure?category=http://snomed.info/sct|387713003",
    "Encounter?class=http://hl7.org/fhir/v3/ActCode|IMP,http://hl7.org/fhir/v3/ActCode|ACUTE,"
    "http://hl7.org/fhir/v3/ActCode|NONAC",
    "ProcedureRequest?status=active",
    "ImmunizationRecommendation",
    "Appointment?status=booked,pending,proposed",
    "DeviceRequest?status=active&_include=DeviceRequest:device",
]
ACCEPT = {"json": "application/fhir+json", "xml": "application/fhir+xml"}


def encode(request: str) -> str:
    path, _, query = request.partition("?")
    if not query:
        return path
    return path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in (p.split("=", 1) for p in query.split("&")))


URLS = [encode(r) for r in BGZ_SEARCHES]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(instance: Path, database_url: str, shared: Path) -> dict[str, str]:
    env = dict(os.environ, DVZA_INSTANCE_PATH=str(instance), DVZA_DATABASE_URL=database_url,
               DVZA_QUALIFICATION_MODE="true", DVZA_LOG_LEVEL="WARNING", DVZA_LOG_FORMAT="console")
    cert = shared / "conformance" / "nictiz-testscripts" / "output" / "STU3" / "BgZ-3-0" / "MedMij" / "Cert"
    tokens = shared / "conformance" / "nictiz-testscripts" / "Configuration" / "QualificationTokens.json"
    dvza = [sys.executable, "-m", "flask", "--app", "dvza"]
    subprocess.run([*dvza, "testdata", "load", str(cert)], env=env, check=True, capture_output=True)
    subprocess.run([*dvza, "testdata", "tokens", str(tokens)], env=env, check=True, capture_output=True)
    return env


def start_gunicorn(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    from ..serving import gunicorn_args

    args = gunicorn_args(bind=f"127.0.0.1:{port}", workers=workers, certfile=None, keyfile=None, ca_certs=None,
                         client_cert="none")
    process = subprocess.Popen([*args[:-1], "--log-level", "warning", "--access-logfile", "/dev/null", args[-1]],
                               env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not become ready")


def sequential(base: str, fmt: str, rounds: int = 5) -> tuple[float, list[float]]:
    """Best wall time over ``rounds`` for the 28 searches in sequence, and per-search latencies."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {HELLEMAN_TOKEN}", "Accept": ACCEPT[fmt]}
    best, latencies = float("inf"), []
    for _ in range(rounds):
        start = time.perf_counter()
        for url in URLS:
            t0 = time.perf_counter()
            response = session.get(base + url, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
        best = min(best, time.perf_counter() - start)
    return best, latencies


def _client(args: tuple[str, str, float]) -> list[float]:
    """One load client: plain ``http.client`` (cheap, so the clients steal little CPU from the server)."""
    base, fmt, duration = args
    parsed = urlsplit(base)
    headers = {"Authorization": f"Bearer {HELLEMAN_TOKEN}", "Accept": ACCEPT[fmt]}
    latencies: list[float] = []
    end = time.perf_counter() + duration
    index = 0
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        connection.request("GET", parsed.path + URLS[index % len(URLS)], headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - t0)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        if response.will_close:
            connection.close()
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        index += 1
    return latencies


def concurrent(base: str, fmt: str, clients: int, duration: float) -> tuple[float, list[float]]:
    with multiprocessing.Pool(clients) as pool:
        start = time.perf_counter()
        results = pool.map(_client, [(base, fmt, duration)] * clients)
        elapsed = time.perf_counter() - start
    latencies = [x for r in results for x in r]
    return len(latencies) / elapsed, latencies


def import_rate(env: dict[str, str], instance: Path, resources: int) -> tuple[int, float]:
    """Time ``dvza source import`` (a real process, as an operator runs it) of ``resources`` synthetic lines."""
    from .synthetic import write_ndjson

    path = instance / "bench-import.ndjson"
    lines = write_ndjson(path, max(1, resources // 10), per_patient=9, prefix="bench", bsn_offset=5_000_000)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvza.cli", "source", "import", str(path), "--source", "bench", "--quiet"],
                   env=env, check=True, capture_output=True)
    return lines, time.perf_counter() - start


def pct(values: t.Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("DVZA_SHARED_DIR", "../shared")))
    parser.add_argument("--import-resources", type=int, default=10_000,
                        help="synthetic resources for the bulk import figure (0: skip it)")
    args = parser.parse_args(argv)

    instance = Path(tempfile.mkdtemp(prefix="dvza-bench-"))
    database_url = args.database_url or f"sqlite:///{instance / 'bench.sqlite3'}"
    env = prepare(instance, database_url, args.shared)
    port = free_port()
    server = start_gunicorn(env, port, args.workers)
    base = f"http://127.0.0.1:{port}/fhir/"
    try:
        sizes = {fmt: sum(len(requests.get(base + u, headers={"Authorization": f"Bearer {HELLEMAN_TOKEN}",
                                                               "Accept": ACCEPT[fmt]}).content) for u in URLS)
                 for fmt in ACCEPT}
        print(f"medmij-dvza benchmark: {database_url.split(':')[0]}, {args.workers} gunicorn workers, "
              f"{args.clients} clients, one patient's 28 BgZ searches (XXX_Helleman)")
        print(f"  bundle bytes for the 28 searches: JSON {sizes['json']:,}, XML {sizes['xml']:,}")
        seq = {fmt: sequential(base, fmt) for fmt in ACCEPT}
        for fmt, (best, lat) in seq.items():
            print(f"  sequential {fmt.upper():4}: {best * 1000:7.1f} ms for 28 searches "
                  f"({best / len(URLS) * 1000:.1f} ms/search; p50 {pct(lat, .5):.1f} ms, p95 {pct(lat, .95):.1f} ms)")
        conc = {fmt: concurrent(base, fmt, args.clients, args.duration) for fmt in ACCEPT}
        for fmt, (rate, lat) in conc.items():
            print(f"  concurrent {fmt.upper():4}: {rate:7.1f} searches/s "
                  f"(p50 {pct(lat, .5):.1f} ms, p95 {pct(lat, .95):.1f} ms, p99 {pct(lat, .99):.1f} ms)")
        ratio_seq = seq["xml"][0] / seq["json"][0]
        ratio_conc = conc["json"][0] / conc["xml"][0]
        verdict = "OK" if max(ratio_seq, ratio_conc) <= 2.0 else "TOO SLOW"
        print(f"  XML/JSON cost: sequential x{ratio_seq:.2f}, under load x{ratio_conc:.2f} (target <= 2.0): {verdict}")
        print(f"  mean latency per search under load: JSON {statistics.mean(conc['json'][1]) * 1000:.1f} ms, "
              f"XML {statistics.mean(conc['xml'][1]) * 1000:.1f} ms")
        if args.import_resources > 0:
            lines, seconds = import_rate(env, instance, args.import_resources)
            rate = lines / seconds
            print(f"  bulk import (dvza source import, NDJSON): {lines:,} resources in {seconds:.1f} s = "
                  f"{rate:,.0f} resources/s; 100 000 resources: {100_000 / rate / 60:.1f} min")
        return 0 if verdict == "OK" else 1
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
