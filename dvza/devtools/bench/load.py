"""Load generators for the benchmark: one client in sequence, and ``wrk`` for concurrency.

``wrk`` (Debian package) is a C load generator: it takes far less CPU than the server it measures, so
on a two-core machine the figure is the server's, not the client's. Without it a Python fallback (one
process per connection, plain ``http.client``) is used and the output says so.
"""

from __future__ import annotations

import http.client
import multiprocessing
import re
import shutil
import subprocess
import tempfile
import time
import typing as t
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Load:
    rate: float  # requests per second
    p50: float  # ms
    p99: float  # ms
    errors: int
    tool: str


def pct(values: t.Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def sequential(base: str, paths: t.Sequence[str], headers: dict[str, str]) -> float:
    """Seconds for one pass over ``paths`` with one client, a new connection per request (gunicorn's
    sync workers close it after each answer)."""
    parsed = urlsplit(base)
    start = time.perf_counter()
    for path in paths:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        connection.request("GET", parsed.path + path, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
    return time.perf_counter() - start


_LUA = """
local paths = {%(paths)s}
local method = "%(method)s"
local body = %(body)s
local counter = 0
local prefix = ""
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", "%(nonce)s-" .. threads)
end
init = function(args) prefix = tid end
request = function()
  counter = counter + 1
  local path = paths[(counter - 1) %% #paths + 1]
  local headers = {}
  %(headers)s
  headers["MedMij-Request-ID"] = prefix .. "-" .. counter
  return wrk.format(method, path, headers, body)
end
"""


def _lua_string(value: str) -> str:
    """A Lua string literal: printable ASCII as is, every other byte of the UTF-8 as a ``\\ddd`` escape."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def wrk(base: str, paths: t.Sequence[str], headers: dict[str, str], *, connections: int, seconds: float,
        method: str = "GET", body: str | None = None) -> Load:
    parsed = urlsplit(base)
    script = _LUA % {
        "paths": ", ".join(_lua_string(parsed.path + p) for p in paths), "method": method, "nonce": uuid.uuid4().hex,
        "body": _lua_string(body) if body is not None else "nil",
        "headers": "\n  ".join(f"headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    duration = f"{max(1, round(seconds))}s"
    done = subprocess.run(["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", duration,
                           "--latency", "-s", handle.name, f"{parsed.scheme}://{parsed.netloc}/"],
                          capture_output=True, text=True, check=True)
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"Socket errors:.*?read (\d+)", out))
    latencies = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, flags=re.M))

    def ms(text: str | None) -> float:
        if not text:
            return float("nan")
        number, unit = float(re.match(r"[\d.]+", text).group(0)), re.sub(r"[\d.]+", "", text)  # type: ignore[union-attr]
        return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}.get(unit, 1.0)

    return Load(rate, ms(latencies.get("50")), ms(latencies.get("99")), errors, "wrk")


def _python_client(args: tuple[str, list[str], dict[str, str], float, str, str | None]) -> tuple[list[float], int]:
    base, paths, headers, seconds, method, body = args
    parsed = urlsplit(base)
    latencies, errors, index = [], 0, 0
    nonce = uuid.uuid4().hex
    end = time.perf_counter() + seconds
    payload = body.encode("utf-8") if body is not None else None
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        request_headers = dict(headers, **{"MedMij-Request-ID": f"{nonce}-{index}"})
        connection.request(method, parsed.path + paths[index % len(paths)], body=payload, headers=request_headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        latencies.append(time.perf_counter() - t0)
        errors += response.status >= 300
        index += 1
    return latencies, errors


def python_load(base: str, paths: t.Sequence[str], headers: dict[str, str], *, connections: int, seconds: float,
                method: str = "GET", body: str | None = None) -> Load:
    with multiprocessing.Pool(connections) as pool:
        start = time.perf_counter()
        results = pool.map(_python_client, [(base, list(paths), headers, seconds, method, body)] * connections)
        elapsed = time.perf_counter() - start
    latencies = [x for r in results for x in r[0]]
    return Load(len(latencies) / elapsed, pct(latencies, .5), pct(latencies, .99), sum(r[1] for r in results),
                "python")


def concurrent(base: str, paths: t.Sequence[str], headers: dict[str, str], *, connections: int, seconds: float,
               method: str = "GET", body: str | None = None) -> Load:
    runner = wrk if shutil.which("wrk") else python_load
    return runner(base, paths, headers, connections=connections, seconds=seconds, method=method, body=body)
