"""Runtime API warm hello: `provided.al2023` functions (a C client, awslambdaric, a bash curl
loop) through faasbox's gateway, against the Python hello on the same server in the same run
(wrk)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.common import FUNCTIONS, Load, faasbox_server, wrk
from bench.results import machine, update_section
from tests.functional.test_runtime_api_worker import bash_code, c_code, ric_code

SECONDS = 3
ROUNDS = 3  # interleaved; the best round of each counts (the least disturbed by other load)
CLIENTS = {
    "C client": (c_code, "hello", (1, 8)),
    "awslambdaric": (ric_code, "app.hello", (1, 8)),
    "bash + curl": (bash_code, "function.hello", (1,)),  # two curl processes per request
}


def service(folder: Path, route: str, handler: str) -> Path:
    (folder / "serverless.yml").write_text(
        f"""service: bench{route}
provider:
  name: aws
  runtime: provided.al2023
  memorySize: 128
functions:
  hello:
    handler: {handler}
    events:
      - httpApi: GET /{route}
"""
    )
    return folder


def best(loads: list[Load]) -> Load:
    return max(loads, key=lambda load: load.rps)


def row(name: str, connections: int, load: Load, python: Load) -> str:
    return (
        f"| {name} | c={connections} | {load.rps:,.0f} | {load.p50_ms:.2f} / {load.p99_ms:.2f} | "
        f"{python.rps:,.0f} | {python.p50_ms:.2f} / {python.p99_ms:.2f} | "
        f"**{load.rps / python.rps:.2f}x** |"
    )


def main() -> None:
    build = Path(tempfile.mkdtemp(prefix="faasbox-bench-rapi-"))
    routes = {}
    folders = [FUNCTIONS / "hello"]
    for index, (name, (make, handler, _)) in enumerate(CLIENTS.items()):
        route = f"rapi{index}"
        (build / route).mkdir()
        folders.append(service(make(build / route), route, handler))
        routes[name] = route
    server = faasbox_server(folders)
    start_load = f"{os.getloadavg()[0]:.1f}"
    try:
        rows = []
        for name, (_, _, loads) in CLIENTS.items():
            url = f"{server.url}/{routes[name]}"
            for connections in loads:
                wrk(url, connections, 1)  # warm the workers
                wrk(f"{server.url}/hello", connections, 1)
                ours, python = [], []
                for _ in range(ROUNDS):
                    ours.append(wrk(url, connections, SECONDS))
                    python.append(wrk(f"{server.url}/hello", connections, SECONDS))
                rows.append(row(name, connections, best(ours), best(python)))
    finally:
        server.stop()
    end_load = f"{os.getloadavg()[0]:.1f}"
    body = f"""The same hello (`{{"message": "Hello"}}` to an `httpApi` GET route) from a
`provided.al2023` function's bootstrap through faasbox's Runtime API, against the native Python
worker's, on one server in the same run.

| bootstrap | load | Runtime API req/s | p50 / p99 ms | Python req/s | p50 / p99 ms | ratio |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Runtime API path per invocation: INVOKE frame to the worker, the bootstrap's parked
`GET /next` answered, its `POST /response` read, RESULT frame back (two loopback TCP hops more
than the Python worker, and the bootstrap's own work). C client: `tests/services/provided/c/
runtime.c` (`gcc -O2`, keep-alive). awslambdaric 4.2.2, vendored. bash: the tutorial's curl
loop (a new curl process for each `/next` and each `/response`). wrk: {ROUNDS} rounds of
{SECONDS} s, Runtime API and Python interleaved, after a 1 s warm-up; the round with the most
requests/s of each is shown. Load average at the start {start_load}, at the end
{end_load}. Machine: {machine()}.
Command: `.venv/bin/python -m bench.runtime_api`"""
    update_section("Runtime API warm hello", body)
    print(body)


if __name__ == "__main__":
    main()
