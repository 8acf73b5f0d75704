"""The tail at c=8, run by run: one fresh `faasbox serve` with the hello, consecutive wrk runs
(`-t2 -c8`, no warm-up but one request, so the first run includes the scale-up), and per run
wrk's percentiles to p99.9, the workers started (the management API's live pids), the CPU of
each gateway thread and of the workers, and the gateway's context switches (/proc). With
--gc, a sitecustomize on the server's PYTHONPATH hooks gc.callbacks and writes the gateway's
collections and pauses to the data dir when it exits. Prints; writes no RESULTS section
(docs/performance.md, "The tail at c=8", records its figures).

    .venv/bin/python -m bench.tail_stalls --runs 4 [--gc]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.common import FUNCTIONS
from bench.peers import load_average
from tests.support import ROOT, RunningServer

FUNCTION = "benchhello-dev-hello"
TICK = os.sysconf("SC_CLK_TCK")

# wrk's Lua: print the percentiles wrk keeps, finer than --latency's four.
PERCENTILES_LUA = """
done = function(summary, latency, requests)
  for _, p in ipairs({50, 90, 95, 98, 99, 99.5, 99.9}) do
    io.write(string.format("p%s=%.2fms ", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("max=%.2fms n=%d\\n", latency.max / 1000, summary.requests))
end
"""

GC_HOOK = """
import atexit, gc, os, sys, time
_s = {"collections": [0, 0, 0], "pause_s": [0.0, 0.0, 0.0], "max_s": [0.0, 0.0, 0.0],
      "over_1ms": 0, "t": 0.0}
def _cb(phase, info):
    if phase == "start":
        _s["t"] = time.perf_counter()
        return
    took, g = time.perf_counter() - _s["t"], info["generation"]
    _s["collections"][g] += 1
    _s["pause_s"][g] += took
    _s["max_s"][g] = max(_s["max_s"][g], took)
    _s["over_1ms"] += took > 0.001
gc.callbacks.append(_cb)
def _dump():
    if "serve" in sys.argv:
        with open(os.environ["BENCH_GC_OUT"], "w") as f:
            f.write(repr({k: v for k, v in _s.items() if k != "t"}) + "\\n")
atexit.register(_dump)
"""


def _cpu_s(stat_path: str) -> float:
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _threads(pid: int) -> dict[str, float]:
    cpu = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            cpu[f"{tid}:{name}"] = _cpu_s(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            pass  # ended meanwhile
    return cpu


def _children_cpu(pid: int) -> float:
    total = 0.0
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):  # ended meanwhile
            total += _cpu_s(f"/proc/{child}/stat") + _children_cpu(int(child))
    return total


def _switches(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    involuntary = re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status)
    voluntary = re.search(r"\nvoluntary_ctxt_switches:\s+(\d+)", status)
    assert involuntary and voluntary
    return int(involuntary.group(1)), int(voluntary.group(1))


def _workers(url: str) -> set[int]:
    described = httpx.get(f"{url}/_faasbox/functions/{FUNCTION}", timeout=30).json()
    return {w["pid"] for w in described["workers"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--gc", action="store_true", help="record the gateway's GC pauses")
    args = parser.parse_args(argv or [])
    scratch = Path(tempfile.mkdtemp(prefix="faasbox-bench-"))
    env: dict[str, str] = {}
    if args.gc:
        (scratch / "hook").mkdir()
        (scratch / "hook" / "sitecustomize.py").write_text(GC_HOOK)
        env = {
            "PYTHONSAFEPATH": "1",
            "PYTHONPATH": f"{ROOT}:{scratch / 'hook'}",
            "BENCH_GC_OUT": str(scratch / "gc.txt"),
        }
    lua = scratch / "percentiles.lua"
    lua.write_text(PERCENTILES_LUA)
    server = RunningServer([FUNCTIONS / "hello"], scratch / "data", "--no-auth").start(env=env)
    assert server.proc is not None
    pid = server.proc.pid
    print(f"load average {load_average()}", flush=True)
    try:
        httpx.get(f"{server.url}/hello", timeout=30)
        for run in range(1, args.runs + 1):
            pids, threads, workers_cpu, switches = (
                _workers(server.url),
                _threads(pid),
                _children_cpu(pid),
                _switches(pid),
            )
            out = subprocess.run(
                ["wrk", "-t2", "-c8", f"-d{args.seconds}s", "-s", str(lua), f"{server.url}/hello"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            after = _threads(pid)
            busy = {
                k: round(v - threads.get(k, 0.0), 2)
                for k, v in after.items()
                if v - threads.get(k, 0.0) > 0.005
            }
            involuntary, voluntary = (a - b for a, b in zip(_switches(pid), switches, strict=True))
            live = _workers(server.url)
            print(
                f"run {run}: {out.strip().splitlines()[-1]}\n"
                f"  workers {len(live)}, started {len(live - pids)}; gateway threads' CPU s "
                f"{busy}; workers' CPU {_children_cpu(pid) - workers_cpu:.2f} s; gateway "
                f"switches involuntary {involuntary}, voluntary {voluntary}",
                flush=True,
            )
    finally:
        server.stop()
    if args.gc:
        print("gateway GC:", (scratch / "gc.txt").read_text().strip())
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main(sys.argv[1:])
