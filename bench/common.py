"""What the benches share: servers on free ports, wrk, a plain closed-loop client, percentiles."""

from __future__ import annotations

import http.client
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import RunningServer

BENCH = Path(__file__).resolve().parent
FUNCTIONS = BENCH / "functions"

# wrk's Lua: POST the file named by BENCH_BODY with the content type BENCH_CONTENT_TYPE.
WRK_SCRIPT = """
wrk.method = "POST"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def faasbox_server(dirs: list[Path], *args: str) -> RunningServer:
    """A real faasbox server (authentication off: the benches stay on loopback)."""
    data = Path(tempfile.mkdtemp(prefix="faasbox-bench-"))
    return RunningServer(dirs, data, "--no-auth", *args).start()


class BareServer:
    """bench/bare_asgi.py (or another baseline beside it, e.g. bare_roundtrip.py) under the
    same uvicorn settings, in its own process."""

    def __init__(self, script: str = "bare_asgi.py") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, str(BENCH / script), str(self.port)])
        for _ in range(100):
            try:
                httpx.get(self.url, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the bare ASGI server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, connections: int, seconds: int = 5, threads: int | None = None) -> Load:
    """Run wrk with --latency and read requests/s and the 50th/99th latency percentiles."""
    threads = threads or min(connections, 2)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return Load(rps, p50, p99)


@dataclass(frozen=True)
class PlainLoad:
    """What bench/closed_loop.c measured: its own clock around each request."""

    rps: float
    p50_ms: float
    p99_ms: float
    in_flight: float  # Little's law: mean latency x requests/s (<= connections, always)


_PLAIN_CLIENT = BENCH.parent / "build" / "closed_loop"


def plain_client_program() -> Path:
    """bench/closed_loop.c, compiled into build/ when it is missing or older than its source."""
    source = BENCH / "closed_loop.c"
    if not _PLAIN_CLIENT.exists() or _PLAIN_CLIENT.stat().st_mtime < source.stat().st_mtime:
        _PLAIN_CLIENT.parent.mkdir(exist_ok=True)
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(_PLAIN_CLIENT), str(source)], check=True)
    return _PLAIN_CLIENT


def plain_client(url: str, connections: int, seconds: float) -> PlainLoad:
    """GET `url` from bench/closed_loop.c (compiled once into build/): `connections` keep-alive
    clients in a closed loop. The tail's percentiles come from it, not wrk: wrk 4.1's own
    latencies at c=8 add up to more time than the run had (docs/performance.md, "wrk's tail
    checked")."""
    host, _, rest = url.removeprefix("http://").partition(":")
    port, _, path = rest.partition("/")
    out = subprocess.run(
        [str(plain_client_program()), host, port, "/" + path, str(connections), f"{seconds:g}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(item.split("=", 1) for item in out.split())
    if int(fields["non2xx"]):
        raise RuntimeError(f"{fields['non2xx']} non-2xx answers from {url}")
    return PlainLoad(
        rps=int(fields["n"]) / float(fields["seconds"]),
        p50_ms=float(fields["p50"].removesuffix("ms")),
        p99_ms=float(fields["p99"].removesuffix("ms")),
        in_flight=float(fields["little"]),
    )


def tail_cell(runs: list[PlainLoad]) -> str:
    """p99/p50 over rounds: the median and its range (the tail is the noisy part), with the
    median p50 / p99."""
    ratios = [r.p99_ms / r.p50_ms for r in runs]
    p50 = statistics.median(r.p50_ms for r in runs)
    p99 = statistics.median(r.p99_ms for r in runs)
    return (
        f"{statistics.median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f}; "
        f"{p50:.2f} / {p99:.2f} ms)"
    )


class Client:
    """A keep-alive HTTP/1.1 client with little overhead of its own (http.client), for timing
    one request at a time."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def request(self, method: str, path: str) -> int:
        self._conn.request(method, path)
        response = self._conn.getresponse()
        response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status}")
        return response.status

    def close(self) -> None:
        self._conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)
