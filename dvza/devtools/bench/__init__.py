"""``make bench``: the DVZA's read path, write path and token endpoint against baselines measured in the same
run, on this machine, printed as ratios (issue 12; targets live here, never in timed tests).

Machines here are shared and noisy, so absolute times mean little: every figure is paired with a baseline
measured in the same run under the same gunicorn settings (``dvza serve``'s), alternating A/B, and the
goal is a ratio. Reads are measured after a warm-up (``WARM_UP_PASSES``) on both sides.

* **Reads** (one patient's 28 BgZ searches, fhir-content.md §2.1, XXX_Helleman, production mode with an
  ordinary access token): the baseline app (``bench.baseline``) serves the DVZA's own recorded answers —
  as bytes, and as ``json.dumps`` of the parsed bundles. Sequential: 28 searches one after another
  (goal ≤ 4× the bytes baseline). Concurrent (``wrk``, 4 connections, rotating over the 28): requests/s
  (goal ≥ 0.50 of the ``json.dumps`` baseline). JSON and XML (goal: XML ≤ 1.5× JSON).
* **Writes**: a self-measurement batch (Zelfmetingen receive scenario 2.1, one Observation, XXX_Bergzoon)
  with 4 connections, against parsing the same body and inserting one row with a durable commit
  (goal ≥ 0.50, and ≥ 200/s on PostgreSQL).
* **Token exchange** over mutual TLS, 200 in a row, against ``/healthz`` on the same listener (goal: p99
  < 50 ms).
* **Bulk import** (issue 16): ``dvza source import`` of synthetic NDJSON, as resources per second.
* **Growth** with the patient's own record (N = 0, 1 000, 10 000 extra weights): a one-match code search,
  ``$lastn`` over the N weights, an ``_include`` search and the 28 in sequence (goal: within 2× of N = 0).

SQLite always; PostgreSQL too when ``DVZA_TEST_POSTGRES_URL`` names a server (a fresh database is made
and dropped). Usage: ``python -m dvza.devtools.bench [--quick] [--only sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import requests

from ..processes import free_port
from . import growth
from . import load
from . import servers
from . import tokens
from .urls import BGZ_URLS
from .urls import GROWTH_QUERIES

ACCEPT = {"json": "application/fhir+json", "xml": "application/fhir+xml"}
WORKERS = 2
CONNECTIONS = 4
#: sequential passes over the 28 searches on each side before reads are measured: a worker compiles each
#: statement shape once (fhir_api.sqlcache) and fills its caches, as a server that has been running has done
WARM_UP_PASSES = 4


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


class Bench:
    def __init__(self, kind: str, shared: Path, *, seconds: float, rounds: int):
        self.kind, self.shared, self.seconds, self.rounds = kind, shared, seconds, rounds
        self.root = Path(tempfile.mkdtemp(prefix=f"dvza-bench-{kind}-"))
        self.database_url, self.drop = servers.fresh_database(kind, self.root)
        self.processes: list[t.Any] = []
        self.results: dict[str, t.Any] = {}

    def close(self) -> None:
        servers.stop(*self.processes)
        self.drop()
        shutil.rmtree(self.root, ignore_errors=True)

    def headers(self, fmt: str, patient: str = servers.HELLEMAN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.instance.tokens[patient]}", "Accept": ACCEPT[fmt]}

    # ------------------------------------------------------------------------------------ set-up
    def start(self) -> None:
        self.instance = servers.prepare(self.root / "instance", self.database_url, self.shared)
        self.port = free_port()
        self.dvza = servers.gunicorn("dvza:create_app()", self.instance.env, self.port, WORKERS)
        self.processes.append(self.dvza)
        self.base = f"http://127.0.0.1:{self.port}/fhir/"
        recording = {}
        for url in BGZ_URLS:
            recording["/fhir/" + url] = {fmt: self._get(url, fmt) for fmt in ACCEPT}
        self.recording = self.root / "recording.json"
        self.recording.write_text(json.dumps(recording), encoding="utf-8")
        self.baselines = {}
        for mode in ("bytes", "dumps"):
            port = free_port()
            env = dict(self.instance.env, BENCH_RECORDING=str(self.recording), BENCH_MODE=mode,
                       BENCH_DATABASE_URL=self.database_url)
            self.processes.append(servers.gunicorn("dvza.devtools.bench.baseline:create_app()", env, port, WORKERS))
            self.baselines[mode] = f"http://127.0.0.1:{port}/fhir/"

    def _get(self, url: str, fmt: str) -> str:
        response = requests.get(self.base + url, headers=self.headers(fmt), timeout=60)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code} {response.text[:300]}")
        return response.text

    # ------------------------------------------------------------------------------------ reads
    def sequential(self, base: str, fmt: str) -> float:
        return load.sequential(base, BGZ_URLS, self.headers(fmt))

    def reads(self) -> None:
        for _ in range(WARM_UP_PASSES):  # steady state: each worker has compiled its statements (both sides alike)
            for fmt in ACCEPT:
                self.sequential(self.base, fmt)
                self.sequential(self.baselines["bytes"], fmt)
        pairs: dict[str, list[tuple[float, float]]] = {"json": [], "xml": []}
        for _ in range(self.rounds):  # alternating A/B
            for fmt in ACCEPT:
                project = self.sequential(self.base, fmt)
                baseline = self.sequential(self.baselines["bytes"], fmt)
                pairs[fmt].append((project, baseline))
        for fmt, values in pairs.items():
            project = statistics.median(p for p, _ in values)
            baseline = statistics.median(b for _, b in values)
            self.results[f"seq_{fmt}"] = (project, baseline)
        loads: dict[str, list[float]] = {"json": [], "json_dumps": [], "xml": [], "xml_bytes": []}
        for _ in range(2):
            for fmt in ACCEPT:
                headers = self.headers(fmt)
                loads[fmt].append(load.concurrent(self.base, BGZ_URLS, headers, connections=CONNECTIONS,
                                                  seconds=self.seconds).rate)
                other = "dumps" if fmt == "json" else "bytes"
                loads[f"{fmt}_{other}"].append(load.concurrent(self.baselines[other], BGZ_URLS, headers,
                                                               connections=CONNECTIONS, seconds=self.seconds).rate)
        self.results["load"] = {k: statistics.median(v) for k, v in loads.items()}
        self.results["load_tool"] = "wrk" if shutil.which("wrk") else "python clients (install wrk for fair figures)"

    # ----------------------------------------------------------------------------------- writes
    def writes(self) -> None:
        from ..testdata import materialise

        fixture = (self.shared / servers.CERT / "SelfMeasurements-2-0" / "MedMij" / "Cert" / "_reference" /
                   "resources-serve-receive" / "medmij-selfmeasurements-serve-receive-scenario-2-1-bundle.json")
        body = materialise(fixture.read_text(encoding="utf-8-sig"), __import__("datetime").date.today())
        headers = {"Authorization": f"Bearer {self.instance.tokens[servers.BERGZOON]}",
                   "Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                   "Prefer": "return=minimal"}
        probe = requests.post(self.base, data=body.encode(), headers=dict(headers, **{"MedMij-Request-ID": "probe"}))
        if probe.status_code >= 300:
            raise SystemExit(f"the write benchmark's batch is refused: {probe.status_code} {probe.text[:500]}")
        baseline_base = self.baselines["bytes"].replace("/fhir/", "/")
        project, baseline = [], []
        for _ in range(2):
            project.append(load.concurrent(self.base, [""], headers, connections=CONNECTIONS, seconds=self.seconds,
                                           method="POST", body=body))
            baseline.append(load.concurrent(baseline_base, ["write"], {"Content-Type": "application/json"},
                                            connections=CONNECTIONS, seconds=self.seconds, method="POST", body=body))
        errors = sum(r.errors for r in project + baseline)
        if errors:
            raise SystemExit(f"{errors} write requests failed during the benchmark")
        self.results["writes"] = (statistics.median(r.rate for r in project),
                                  statistics.median(r.rate for r in baseline))

    # ------------------------------------------------------------------------------------ growth
    def growth(self, sizes: t.Sequence[int]) -> None:
        table = []
        added = 0
        for size in sizes:
            growth.add_weights(self.instance.env, added, size - added)
            added = size
            row = {"N": size}
            for name, url in GROWTH_QUERIES.items():
                times = []
                for _ in range(self.rounds * 2):
                    t0 = time.perf_counter()
                    self._get(url, "json")
                    times.append(time.perf_counter() - t0)
                row[name] = statistics.median(times)
            row["28 searches"] = statistics.median(self.sequential(self.base, "json") for _ in range(self.rounds))
            table.append(row)
        self.results["growth"] = table

    def token_exchange(self) -> None:
        database_url, drop = servers.fresh_database(self.kind, self.root / "tokens") if self.kind == "postgresql" \
            else (f"sqlite:///{self.root / 'tokens.sqlite3'}", lambda: None)
        (self.root / "tokens").mkdir(exist_ok=True)
        try:
            self.results["tokens"] = tokens.token_exchange(self.root / "tokens", database_url, free_port(), WORKERS)
        finally:
            drop()

    def bulk_import(self, resources: int) -> None:
        """``dvza source import`` (a real process, as an operator runs it) of synthetic NDJSON (issue 16)."""
        from ..synthetic import write_ndjson

        path = self.root / "bench-import.ndjson"
        lines = write_ndjson(path, max(1, resources // 10), per_patient=9, prefix="bench", bsn_offset=5_000_000)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dvza.cli", "source", "import", str(path), "--source", "bench",
                        "--quiet"], env=self.instance.env, check=True, capture_output=True)
        self.results["import"] = (lines, time.perf_counter() - start)

    # ------------------------------------------------------------------------------------ report
    def report(self) -> bool:
        r = self.results
        ok = True
        print(f"\n== {self.kind}: {WORKERS} gunicorn workers (dvza serve settings), {CONNECTIONS} connections "
              f"({r.get('load_tool', '-')}), median of alternating A/B rounds")
        if "seq_json" in r:
            for fmt in ACCEPT:
                project, baseline = r[f"seq_{fmt}"]
                ratio = project / baseline
                good = ratio <= 4.0 if fmt == "json" else True
                ok &= good
                print(f"  28 searches in sequence, {fmt.upper():4}: {project * 1000:7.1f} ms vs the same bytes served "
                      f"as-is {baseline * 1000:6.1f} ms: x{ratio:.2f}" + (f" (goal <= 4): {_verdict(good)}"
                                                                           if fmt == "json" else ""))
            rates = r["load"]
            ratio = rates["json"] / rates["json_dumps"]
            ok &= ratio >= 0.5
            print(f"  read throughput JSON: {rates['json']:7.1f} req/s vs json.dumps baseline "
                  f"{rates['json_dumps']:7.1f} req/s: {ratio:.2f} (goal >= 0.50): {_verdict(ratio >= 0.5)}")
            print(f"  read throughput XML:  {rates['xml']:7.1f} req/s vs the bytes baseline "
                  f"{rates['xml_bytes']:7.1f} req/s: {rates['xml'] / rates['xml_bytes']:.2f}")
            cost = max(r["seq_xml"][0] / r["seq_json"][0], rates["json"] / rates["xml"])
            ok &= cost <= 1.5
            print(f"  XML vs JSON cost: x{cost:.2f} (goal <= 1.5): {_verdict(cost <= 1.5)}")
        if "writes" in r:
            project, baseline = r["writes"]
            ratio = project / baseline
            good = ratio >= 0.5 and (self.kind != "postgresql" or project >= 200)
            ok &= good
            print(f"  self-measurement batches: {project:7.1f}/s vs parse + insert one row + commit {baseline:7.1f}/s: "
                  f"{ratio:.2f} (goal >= 0.50" + (", >= 200/s" if self.kind == "postgresql" else "") +
                  f"): {_verdict(good)}")
        if "tokens" in r:
            tk = r["tokens"]
            good = tk["token_p99"] < 50
            ok &= good
            print(f"  token exchange over mTLS ({tk['n']} in a row, new TLS connection each): "
                  f"p50 {tk['token_p50']:.1f} ms, p99 {tk['token_p99']:.1f} ms; "
                  f"/healthz on the same listener p50 {tk['health_p50']:.1f} ms, "
                  f"p99 {tk['health_p99']:.1f} ms (goal p99 < 50 ms): {_verdict(good)}")
        if "import" in r:
            lines, seconds = r["import"]
            rate = lines / seconds
            print(f"  bulk import (dvza source import, NDJSON): {lines:,} resources in {seconds:.1f} s = "
                  f"{rate:,.0f} resources/s; 100 000 resources: {100_000 / rate / 60:.1f} min")
        if "growth" in r:
            table = r["growth"]
            names = [k for k in table[0] if k != "N"]
            print("  growth with the patient's own record (extra weight Observations N; ms, and x of N = 0):")
            print("    " + "N".rjust(6) + "".join(f"{n:>24}" for n in names))
            for row in table:
                cells = []
                for name in names:
                    factor = row[name] / table[0][name]
                    if name != "28 searches":
                        ok &= factor <= 2.0 or row["N"] == 0
                    cells.append(f"{row[name] * 1000:9.1f} ms (x{factor:4.2f})".rjust(24))
                print("    " + str(row["N"]).rjust(6) + "".join(cells))
            print("    goal: within 2x of N = 0 for the single searches: "
                  + _verdict(all(row[n] / table[0][n] <= 2.0 for row in table for n in names if n != "28 searches")))
        return ok


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("DVZA_SHARED_DIR", "../shared")))
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the benchmark)")
    parser.add_argument("--sections", default="reads,writes,tokens,growth,import")
    args = parser.parse_args(argv)
    kinds = [k for k in ("sqlite", "postgresql") if (args.only in (None, k)) and
             (k == "sqlite" or os.environ.get("DVZA_TEST_POSTGRES_URL"))]
    sections = args.sections.split(",")
    seconds, rounds = (2.0, 2) if args.quick else (4.0, 5)
    sizes = (0, 200) if args.quick else (0, 1000, 10000)
    started = time.monotonic()
    ok = True
    print("medmij-dvza benchmark (issue 12): ratios against baselines measured in the same run")
    if "postgresql" not in kinds:
        print("note: DVZA_TEST_POSTGRES_URL not set: PostgreSQL is not measured")
    for kind in kinds:
        bench = Bench(kind, args.shared, seconds=seconds, rounds=rounds)
        try:
            bench.start()
            if "reads" in sections:
                bench.reads()
            if "writes" in sections:
                bench.writes()
            if "tokens" in sections:
                bench.token_exchange()
            if "growth" in sections:
                bench.growth(sizes)
            if "import" in sections:
                bench.bulk_import(2_000 if args.quick else 10_000)
        finally:
            bench.close()
        ok &= bench.report()
    print(f"\nbenchmark took {time.monotonic() - started:.0f} s; all goals met: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
