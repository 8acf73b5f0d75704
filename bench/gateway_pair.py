"""Throughput with one gateway against two, both on one PostgreSQL (issue 19's Done-when).

Two `faasbox serve` processes of bench/functions/hello share a real PostgreSQL database
(tests/postgres.py), each with a data dir of its own and the local process executor. Rounds
alternate: the whole load through gateway A alone (one wrk, -t2, c connections; B idle), and
the same load split evenly (two wrk at once, -t1 and c/2 connections each, one per gateway:
the trivial load balancer). Requests per second are summed; medians of the rounds.

On one 2-core machine both gateways, their workers, PostgreSQL and wrk share the same two
cores, so this measures what a second gateway costs or gains here, not what a second machine
would: a gateway saturates a core of its own on the hot path (docs/performance.md).
"""

from __future__ import annotations

import base64
import os
import shutil
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import FUNCTIONS, Load, wrk
from bench.results import machine, update_section
from tests.postgres import start_postgres, stop_postgres
from tests.support import RunningServer

SECONDS = 5
ROUNDS = 3
CONNECTIONS = (2, 8)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="faasbox-bench-pair-"))
    postgres = start_postgres()
    env = {"FAASBOX_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    servers: list[RunningServer] = []
    results: dict[tuple[int, str], list[float]] = {}
    try:
        postgres.database("bench_pair")
        for name in ("a", "b"):
            server = RunningServer(
                [FUNCTIONS / "hello"], work / name, "--no-auth", "--quiet",
                "--database", postgres.url("bench_pair"),
            )  # fmt: skip
            servers.append(server.start(120, env))
        a = servers[0]
        for server in servers:  # warm: workers for the heaviest load
            wrk(f"{server.url}/hello", max(CONNECTIONS), 2)
        for _ in range(ROUNDS):
            for c in CONNECTIONS:
                one = wrk(f"{a.url}/hello", c, SECONDS, threads=2)
                results.setdefault((c, "one"), []).append(one.rps)
                with ThreadPoolExecutor(2) as pool:
                    split = [
                        pool.submit(wrk, f"{s.url}/hello", c // 2, SECONDS, 1) for s in servers
                    ]
                    halves: list[Load] = [f.result() for f in split]
                results.setdefault((c, "two"), []).append(sum(h.rps for h in halves))
    finally:
        for server in servers:
            server.stop()
        stop_postgres(postgres)
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def report(results: dict[tuple[int, str], list[float]]) -> None:
    rows = []
    for c in CONNECTIONS:
        one = statistics.median(results[(c, "one")])
        two = statistics.median(results[(c, "two")])
        rows.append(f"| hello, c={c} | {one:,.0f} | {two:,.0f} | **{two / one:.2f}x** |")
    body = f"""Warm hello through a route (GET /hello), the whole load through one gateway against
the same load split over two gateways (half the connections each), both on one PostgreSQL.

| load | 1 gateway req/s | 2 gateways req/s (sum) | ratio |
|---|---|---|---|
{chr(10).join(rows)}

Two `faasbox serve --database postgresql://... --no-auth` (logs persisted) of
bench/functions/hello, a data dir each, the local process executor; PostgreSQL local
(tests/postgres.py, fsync off). Each round: wrk -t2 -cN against A alone, then two wrk -t1
-cN/2 at once, one against each gateway; {SECONDS} s each, {ROUNDS} rounds, medians.
**On this 2-core machine the two gateways share the same two cores** with their workers and
wrk: a second gateway adds no cores, so the ratio says what splitting the load costs or
gains on one machine (one event loop's ceiling against a second process's competition), not
what a second machine would add; there each gateway brings its own cores, and the database
is the shared part (docs/scale-out.md, "A plan for 100 nodes").
Machine: {machine()}.
Command: `.venv/bin/python -m bench.gateway_pair`"""
    update_section("Throughput: 1 gateway vs 2", body)
    print(body)


if __name__ == "__main__":
    main()
