"""Warm overhead: hello through faasbox's gateway and a warm worker, against a bare ASGI hello
on the same server stack and against the floor of process isolation (bench/bare_roundtrip.py:
the bare hello plus one round trip to a second Python process per request), at 1 and 8
connections (wrk), in interleaved rounds, with each server's CPU time per request; the tail's
percentiles from bench/closed_loop.c, a plain closed-loop client, after each wrk run.

    .venv/bin/python -m bench.warm                  # 3 rounds of 5 s; rewrites RESULTS.md's section
    .venv/bin/python -m bench.warm --rounds 1 --seconds 2
"""

from __future__ import annotations

import argparse
import statistics
import sys

import httpx

from bench.common import (
    FUNCTIONS,
    BareServer,
    PlainLoad,
    faasbox_server,
    plain_client,
    tail_cell,
)
from bench.peers import Load, load_average, wrk
from bench.results import machine, update_section

COMMAND = ".venv/bin/python -m bench.warm"
FUNCTION = "benchhello-dev-hello"
TARGET = 0.4  # issue 16: faasbox's req/s at least this share of the bare ASGI hello's


def _cell(runs: list[Load]) -> str:
    rps = statistics.median(r.rps for r in runs)
    p50 = statistics.median(r.p50_ms for r in runs)
    p99 = statistics.median(r.p99_ms for r in runs)
    cpu = statistics.median(r.cpu_us for r in runs)
    return f"{rps:,.0f} ({p50:.2f} / {p99:.2f} ms, {cpu:,.0f} µs)"


def _worker_pids(url: str) -> set[int]:
    """The hello function's live workers (the management API): which a run started."""
    described = httpx.get(f"{url}/_faasbox/functions/{FUNCTION}", timeout=30).json()
    return {w["pid"] for w in described["workers"]}


def _room(rps: dict[str, float], floor_cpu_us: float) -> float:
    """The CPU per request over the floor's that 0.4x the bare hello's req/s leaves a server
    whose req/s falls in proportion to its CPU per request (negative: the floor misses it)."""
    return floor_cpu_us * (rps["floor"] / (TARGET * rps["bare"]) - 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv or [])
    started_load = load_average()
    bare = BareServer()
    floor = BareServer("bare_roundtrip.py")
    server = faasbox_server([FUNCTIONS / "hello"])
    assert server.proc is not None
    sides = {
        "bare": (bare.url, bare.proc.pid),
        "floor": (floor.url, floor.proc.pid),
        "faasbox": (f"{server.url}/hello", server.proc.pid),
    }
    results: dict[tuple[int, str], list[Load]] = {}
    plains: dict[tuple[int, str], list[PlainLoad]] = {}
    started: dict[int, list[int]] = {}  # faasbox workers started during each measured run
    try:
        for _ in range(args.rounds):
            for connections in (1, 8):
                for side, (url, pid) in sides.items():
                    wrk(url, connections, 1)  # warm up (faasbox's and the floor's workers)
                    before = _worker_pids(server.url) if side == "faasbox" else set()
                    run = wrk(url, connections, args.seconds, server_pid=pid)
                    assert run.non_2xx == 0 and run.errors == 0, (side, run)
                    results.setdefault((connections, side), []).append(run)
                    # The tail from a client that times each request itself (not wrk's).
                    plain = plain_client(url, connections, args.seconds)
                    plains.setdefault((connections, side), []).append(plain)
                    note = f" plain client {plain}"
                    if side == "faasbox":
                        live = _worker_pids(server.url)
                        started.setdefault(connections, []).append(len(live - before))
                        note += f" workers {len(live)}, started in the runs {len(live - before)}"
                    print(connections, side, run, note, flush=True)
    finally:
        server.stop()
        floor.stop()
        bare.stop()
    rows = []
    tails = []
    for connections in (1, 8):
        runs = {side: results[(connections, side)] for side in sides}
        rps = {side: statistics.median(r.rps for r in runs[side]) for side in sides}
        cpu = {side: statistics.median(r.cpu_us for r in runs[side]) for side in sides}
        rows.append(
            f"| c={connections} | {_cell(runs['bare'])} | {_cell(runs['floor'])} | "
            f"{_cell(runs['faasbox'])} | **{rps['faasbox'] / rps['bare']:.2f}x** | "
            f"{rps['floor'] / rps['bare']:.2f}x | {rps['faasbox'] / rps['floor']:.2f}x | "
            f"{cpu['faasbox'] - cpu['floor']:,.0f} µs | {_room(rps, cpu['floor']):,.0f} µs |"
        )
        tail = {side: plains[(connections, side)] for side in sides}
        tails.append(
            f"| c={connections} | {tail_cell(tail['bare'])} | {tail_cell(tail['floor'])} | "
            f"{tail_cell(tail['faasbox'])} | {', '.join(map(str, started[connections]))} |"
        )
    body = f"""Target (issue 16): >= 0.4x the bare ASGI hello's throughput.

| load | bare ASGI req/s (p50 / p99, CPU/req) | floor: bare + a process round trip \
| faasbox | faasbox / bare \
| floor / bare | faasbox / floor | faasbox's CPU/req over the floor's \
| the room 0.4x leaves over the floor's CPU/req |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

The tail (issue 16's target: faasbox's p99 <= 3x its own p50 at c=8), p99/p50 per run, timed
by `bench/closed_loop.c` (a plain closed-loop client with its own clock around each request,
run right after each wrk run with the same connections and seconds; wrk's own high
percentiles add up to more time than a run has, docs/performance.md): the median of the
rounds and their range, and the median p50 / p99, for each server; and the faasbox workers
started during each server's measured runs (after its 1 s warm-up):

| load | bare ASGI p99/p50 | floor p99/p50 | faasbox p99/p50 | faasbox workers started per round |
|---|---|---|---|---|
{chr(10).join(tails)}

faasbox: `GET /hello` on `faasbox serve` (defaults: access log, persisted logs), an `httpApi`
route: route match, payload 2.0 event, a warm worker over its Unix socket, response mapping,
START/END/REPORT lines. Bare: `bench/bare_asgi.py`, uvicorn + uvloop + httptools like faasbox.
Floor: `bench/bare_roundtrip.py`, the bare hello plus one round trip per request to a second
Python process (one per concurrent request) over a Unix socket with faasbox's frames and a
`json.loads`/`json.dumps` on the far side: what process isolation costs at the least on this
machine. wrk `-t1 -c1` / `-t2 -c8`, {args.rounds} rounds of {args.seconds:g} s, the three
servers interleaved, each after a 1 s warm-up; medians of the rounds. CPU/req: the CPU time of
the server's process tree (the gateway and its workers) over the requests wrk counted. The
room: how much more CPU per request than the floor's a server may spend and still make 0.4x
the bare hello's req/s, if its req/s falls in proportion to its CPU per request (the floor's
CPU/req times floor / (0.4 x bare) - 1): all that routing, the event, the pool, the timeout,
START/END/REPORT, the persisted log, metrics and the worker's side of Lambda's contract may
cost together.
Load average (1 min) {started_load} at the start, {load_average()} at the end.
Machine: {machine()}.
Command: `{COMMAND}`"""
    update_section("Warm overhead", body)
    print(body)


if __name__ == "__main__":
    main(sys.argv[1:])
