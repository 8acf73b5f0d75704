"""The tail at c=8, from a cold start: a fresh `faasbox serve` of the hello function, then
consecutive wrk runs at 8 connections with no warm-up, each with its latency distribution,
the server's CPU per request and the hello workers it started. With `--before DIR` a second
server runs the tree checked out in DIR (same venv) and the runs alternate between the two:
an A/B of a change, side by side in one run.

    .venv/bin/python -m bench.tail                          # 4 consecutive runs of 5 s
    .venv/bin/python -m bench.tail --before /tmp/old-tree --runs 4 --seconds 3
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.common import FUNCTIONS
from bench.image import tree_cpu
from bench.peers import load_average
from tests.support import RunningServer

FUNCTION = "benchhello-dev-hello"


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _workers(url: str) -> set[int]:
    described = httpx.get(f"{url}/_faasbox/functions/{FUNCTION}", timeout=30).json()
    return {w["pid"] for w in described["workers"]}


def run(url: str, pid: int, seconds: float) -> str:
    before = _workers(url)
    cpu = tree_cpu(pid)[1]
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds:g}s", "--latency", f"{url}/hello"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = tree_cpu(pid)[1] - cpu
    live = _workers(url)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    pct = {p: _ms(v) for p, v in re.findall(r"\s(\d+)%\s+(\S+)", out)}
    top = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(out)
    return (
        f"{requests / seconds:7,.0f} req/s  p50 {pct['50']:6.2f}  p75 {pct['75']:6.2f}  "
        f"p90 {pct['90']:6.2f}  p99 {pct['99']:7.2f}  max {_ms(top):7.2f} ms  "
        f"p99/p50 {pct['99'] / pct['50']:5.1f}x  CPU {cpu / requests * 1e6:4.0f} µs/req  "
        f"workers {len(live)} (+{len(live - before)})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--before", type=Path, help="a checkout of the tree to compare with")
    parser.add_argument("serve_args", nargs="*", help="extra `faasbox serve` arguments")
    args = parser.parse_args(argv or [])
    trees: dict[str, list[str]] = {"this tree": []}
    if args.before is not None:  # `python -m faasbox` imports the package from its cwd
        trees["before"] = ["env", "-C", str(args.before.resolve())]
    servers = {
        name: RunningServer(
            [FUNCTIONS / "hello"],
            Path(tempfile.mkdtemp(prefix="faasbox-bench-")),
            "--no-auth",
            *args.serve_args,
            wrapper=wrapper,
        ).start()
        for name, wrapper in trees.items()
    }
    print(f"load average {load_average()}", flush=True)
    try:
        for n in range(args.runs):
            for name, server in servers.items():
                assert server.proc is not None
                print(f"run {n + 1} {name:9}", run(server.url, server.proc.pid, args.seconds))
    finally:
        for server in servers.values():
            server.stop()
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main(sys.argv[1:])
