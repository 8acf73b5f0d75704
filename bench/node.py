"""Node.js against Python in one run, on one server: warm hello through an `httpApi` route (wrk,
1 and 8 connections) and cold starts (time to first response after the function's workers
were stopped), with a fresh `node` / `python` process per call as the baseline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx

from bench.common import FUNCTIONS, Client, faasbox_server, median, percentile, wrk
from bench.density import pss_mb, rss_mb
from bench.results import machine, update_section

SECONDS = 5
SAMPLES = 30
PYTHON_FN = ("benchhello-dev-hello", "/hello")
NODE_FN = ("benchnode-dev-hello", "/node/hello")
FRESH_NODE = "require({app!r}).hello({{}}).then((r) => console.log(JSON.stringify(r)))"
WARM_HEADER = (
    "| warm hello | Python req/s | Python p50 / p99 ms | Node.js req/s | Node.js p50 / p99 ms "
    "| Node.js / Python |\n|---|---|---|---|---|---|"
)
FRESH_PYTHON = "import sys; sys.path.insert(0, {dir!r}); import app; print(app.hello({{}}, None))"


def fresh(argv: list[str]) -> list[float]:
    env = {"PATH": os.environ.get("PATH", "")}
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


def cold_starts(client: Client, name: str, path: str) -> tuple[list[float], list[float]]:
    recycle = f"/_faasbox/functions/{name}/workers"
    client.request("GET", path)  # the first cold start also starts the spare for the next
    cold, warm = [], []
    for _ in range(SAMPLES):
        client.request("DELETE", recycle)
        time.sleep(1.0)  # let the stopped worker exit and the next spare start (node: ~0.1 s)
        started = time.perf_counter()
        client.request("GET", path)
        cold.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        client.request("GET", path)
        warm.append((time.perf_counter() - started) * 1000)
    return cold, warm


def idle_memory(url: str, name: str) -> str:
    """PSS / RSS in MB of the function's idle warm worker."""
    workers = httpx.get(f"{url}/_faasbox/functions/{name}", timeout=30).json()["workers"]
    pid = next(w["pid"] for w in workers if not w["busy"])
    return f"{pss_mb(pid):.1f} / {rss_mb(pid):.1f}"


def ms(times: list[float]) -> str:
    return f"{median(times):.1f} / {percentile(times, 99):.1f}"


def main() -> None:
    node = shutil.which("node")
    if node is None:
        print("node is not installed; bench.node skipped")
        return
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    load_before = os.getloadavg()[0]
    fresh_node = fresh([node, "-e", FRESH_NODE.format(app=str(FUNCTIONS / "nodehello" / "app.js"))])
    fresh_python = fresh([sys.executable, "-c", FRESH_PYTHON.format(dir=str(FUNCTIONS / "hello"))])
    server = faasbox_server([FUNCTIONS / "hello", FUNCTIONS / "nodehello"])
    client = Client(server.url)
    try:
        warm_rows = []
        for connections in (1, 8):
            loads = {}
            for label, (_, path) in (("Python", PYTHON_FN), ("Node.js", NODE_FN)):
                wrk(f"{server.url}{path}", connections, 1)  # warm the workers
                loads[label] = wrk(f"{server.url}{path}", connections, SECONDS)
            py, js = loads["Python"], loads["Node.js"]
            warm_rows.append(
                f"| c={connections} | {py.rps:,.0f} | {py.p50_ms:.2f} / {py.p99_ms:.2f} | "
                f"{js.rps:,.0f} | {js.p50_ms:.2f} / {js.p99_ms:.2f} | "
                f"**{js.rps / py.rps:.2f}x** |"
            )
        py_cold, py_warm = cold_starts(client, *PYTHON_FN)
        js_cold, js_warm = cold_starts(client, *NODE_FN)
        time.sleep(1)  # idle, as bench.density measures
        memory = {name: idle_memory(server.url, name) for name, _ in (PYTHON_FN, NODE_FN)}
    finally:
        client.close()
        server.stop()
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    body = f"""Node.js ({version}) against Python, same server, same run.

{WARM_HEADER}
{chr(10).join(warm_rows)}

| p50 / p99 ms | Python | Node.js |
|---|---|---|
| fresh process per call (`python -c` / `node -e`) | {ms(fresh_python)} | {ms(fresh_node)} |
| faasbox cold start (`GET` after its workers were stopped) | {ms(py_cold)} | {ms(js_cold)} |
| faasbox warm: the next `GET` | {ms(py_warm)} | {ms(js_warm)} |
| idle warm worker, PSS / RSS MB | {memory[PYTHON_FN[0]]} | {memory[NODE_FN[0]]} |

Warm: `GET /hello` and `GET /node/hello` (`httpApi` routes: route match, payload 2.0 event, a
warm worker over its Unix socket, response mapping), wrk {SECONDS} s per row after a 1 s
warm-up, `-t1 -c1` and `-t2 -c8`, one after the other. Cold: {SAMPLES} samples each,
sequential, a keep-alive `http.client` connection; a Python cold start forks a worker from the
base zygote, a Node.js one takes the spare `node` process already started for its memory size
(waiting for BOOT) and runs INIT only. The functions: `bench/functions/hello` and
`bench/functions/nodehello` (128 MB). Idle memory: `/proc/PID/smaps_rollup` of the
function's warm worker a second after its last invocation (a Python worker shares the
zygote's pages; a Node.js worker is a process of its own, V8 and all). The machine's other
load (1-minute average): {load}.
Machine: {machine()}.
Command: `.venv/bin/python -m bench.node`"""
    update_section("Node.js", body)
    print(body)


if __name__ == "__main__":
    main()
