"""A warm hello served by two trees side by side: this checkout against an earlier commit, to
tell a regression of the code from a difference of the machine (a CPU per request measured
on another machine is not comparable).

Two `faasbox serve` of bench/functions/hello (defaults: access log, persisted logs), one
importing from this checkout and one from `git archive <before>`, alternate run by run: wrk
`-t1 -c1` and `-t2 -c8` for `--seconds` each, after a 1 s warm-up, `--rounds` rounds; each
run's requests per second and the CPU time of the server's process tree per request.

    .venv/bin/python -m bench.tree_ab --before da2adc0
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.binary_path import before_tree
from bench.peers import Load, load_average, wrk
from bench.results import machine, update_section
from tests.support import ROOT, RunningServer

COMMAND = ".venv/bin/python -m bench.tree_ab"
SECTION = "Warm hello: this tree against an earlier one"


def serve_from(tree: Path, data: Path) -> RunningServer:
    # `env --chdir`: the server, its zygotes and workers import from `tree`.
    return RunningServer(
        [tree / "bench" / "functions" / "hello"],
        data,
        "--no-auth",
        wrapper=["env", f"--chdir={tree}"],
    ).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-tree-ab-", dir=ROOT / "build"))
    started_load = load_average()
    servers = {
        args.before: serve_from(before_tree(args.before, work / "before"), work / "data-before"),
        "this tree": serve_from(ROOT, work / "data-after"),
    }
    runs: dict[tuple[int, str], list[Load]] = {}
    try:
        for _ in range(args.rounds):
            for connections in (1, 8):
                for name, server in servers.items():
                    assert server.proc is not None
                    url = f"{server.url}/hello"
                    wrk(url, connections, 1)  # warm up: the workers of this concurrency
                    run = wrk(url, connections, args.seconds, server_pid=server.proc.pid)
                    assert run.non_2xx == 0 and run.errors == 0, (name, run)
                    runs.setdefault((connections, name), []).append(run)
                    print(connections, name, run, flush=True)
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    for connections in (1, 8):
        for name in servers:
            rps = [r.rps for r in runs[(connections, name)]]
            cpu = [r.cpu_us for r in runs[(connections, name)]]
            rows.append(
                f"| c={connections} | {name} | {statistics.median(rps):,.0f} "
                f"({min(rps):,.0f}-{max(rps):,.0f}) | {statistics.median(cpu):,.0f} µs "
                f"({min(cpu):,.0f}-{max(cpu):,.0f}) |"
            )
    body = f"""The warm hello (`GET /hello`, bench/functions/hello, `faasbox serve` defaults) served
by this tree and by `{args.before}` side by side, run by run: wrk `-t1 -c1` / `-t2 -c8`,
{args.rounds} rounds of {args.seconds:g} s, each after a 1 s warm-up; the median of the rounds and
their range. CPU/req: the CPU time of the server's process tree over the requests wrk counted.

| load | tree | req/s | CPU/req |
|---|---|---|---|
{chr(10).join(rows)}

Load average (1 min) {started_load} at the start, {load_average()} at the end.
Machine: {machine()}.
Command: `{COMMAND} --before {args.before} --rounds {args.rounds} --seconds {args.seconds:g}`"""
    update_section(SECTION, body)
    print(body)


if __name__ == "__main__":
    main()
