"""`serve --scheduling batch` (the default) against `--scheduling normal`: two faasbox servers
side by side serving bench/functions/peers (the JSON hello and the 640x480 grayscale), in
interleaved rounds, wrk at 1 and 8 connections, with each server's CPU time per request.

    .venv/bin/python -m bench.scheduling            # 3 rounds of 5 s; rewrites RESULTS.md's section
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import faasbox_server
from bench.peers import HANDLERS, LOADS, Load, check_answers, load_average, sample_jpeg, wrk
from bench.results import machine, update_section

COMMAND = ".venv/bin/python -m bench.scheduling"
POLICIES = ("batch", "normal")


def _cell(runs: list[Load]) -> str:
    rps = statistics.median(r.rps for r in runs)
    p50 = statistics.median(r.p50_ms for r in runs)
    p99 = statistics.median(r.p99_ms for r in runs)
    return f"{rps:,.0f} ({p50:.2f} / {p99:.2f} ms)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv or [])
    image_file = Path(tempfile.mkstemp(suffix=".jpg")[1])
    image = sample_jpeg(image_file)
    started_load = load_average()
    servers = {p: faasbox_server([HANDLERS], "--quiet", "--scheduling", p) for p in POLICIES}
    results: dict[tuple[str, int, str], list[Load]] = {}
    try:
        for server in servers.values():
            check_answers(server.url, image)
        for _ in range(args.rounds):
            for name, connections in LOADS:
                posted = image_file if name == "gray" else None
                for policy, server in servers.items():
                    assert server.proc is not None
                    url = f"{server.url}/{name}"
                    wrk(url, connections, 1, posted)  # warm up this load's workers
                    run = wrk(url, connections, args.seconds, posted, server.proc.pid)
                    assert run.non_2xx == 0 and run.errors == 0, (policy, run)
                    results.setdefault((name, connections, policy), []).append(run)
                    print(name, connections, policy, run, flush=True)
    finally:
        for server in servers.values():
            server.stop()
        image_file.unlink()
    rows = []
    for name, connections in LOADS:
        batch, normal = (results[(name, connections, p)] for p in POLICIES)
        rps = [statistics.median(r.rps for r in runs) for runs in (batch, normal)]
        cpu = [statistics.median(r.cpu_us for r in runs) for runs in (batch, normal)]
        cpus = [sorted(round(r.cpu_us) for r in runs) for runs in (batch, normal)]
        rows.append(
            f"| {name} c={connections} | {_cell(batch)} | {_cell(normal)} | "
            f"**{rps[0] / rps[1]:.2f}x** | {cpu[0]:,.0f} {cpus[0]} / {cpu[1]:,.0f} {cpus[1]} | "
            f"**{cpu[1] / cpu[0]:.2f}x** |"
        )
    body = f"""| load | batch req/s (p50 / p99) | normal req/s (p50 / p99) | batch / normal \
| server CPU µs/req, batch / normal (each round) | normal / batch CPU |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Two `faasbox serve --quiet` servers side by side, one with `--scheduling batch` (the default:
the gateway, its zygotes and workers under SCHED_BATCH, faasbox.execution.scheduling), one
with `--scheduling normal` (SCHED_OTHER), serving bench/functions/peers (`GET /hello`, and
`POST /gray` of a 640x480 JPEG). wrk `-t1 -c1` / `-t2 -c8`, {args.rounds} rounds of
{args.seconds:g} s, the two servers alternating within each load, each after a 1 s warm-up;
req/s, p50 and p99 the medians of the rounds. Server CPU: the server's process tree over the
requests wrk counted. Load average (1 min) {started_load} at the start, {load_average()} at
the end. Machine: {machine()}.
Command: `{COMMAND}`"""
    update_section("Scheduling policy (serve --scheduling)", body)
    print(body)


if __name__ == "__main__":
    main(sys.argv[1:])
