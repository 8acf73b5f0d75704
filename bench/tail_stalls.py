"""The tail at c=8, run by run: one fresh `faasbox serve` with the hello, consecutive wrk runs
(`-t2 -c8`, no warm-up but one request, so the first run includes the scale-up), and per run
wrk's percentiles to p99.9, the workers started (the management API's live pids), the CPU of
each gateway thread and of the workers, and the gateway's context switches (/proc).

Beside wrk's percentiles, the server's own: the access log's duration of each request of the
run (from the ASGI call to the response's end; not the time a request waits in the socket for
the loop), with Little's law for both (mean latency x requests / seconds: at most the 8
connections), and wrk's own CPU and involuntary context switches (its rusage as a child).

With --gc, a sitecustomize on the server's PYTHONPATH hooks gc.callbacks and writes the
gateway's collections (time, generation, pause) when it exits; each run gets its own counts
and its longest pause. --tree runs the server from another checkout (e.g. a clone of main) for an
A/B of the same bench. Prints; writes no RESULTS section (docs/performance.md, "The tail at
c=8", records its figures).

    .venv/bin/python -m bench.tail_stalls --runs 4 [--gc] [--tree ../faasbox-main]
    .venv/bin/python -m bench.tail_stalls --alternate --runs 3 --seconds 4

--alternate instead serves bench.peers's hello and grayscale and lets them take turns at c=8,
printing per turn each function's live workers, those started and those gone (evicted at the
global cap).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import FUNCTIONS, WRK_SCRIPT, plain_client_program
from bench.peers import HANDLERS, IMAGE_TYPE, load_average, sample_jpeg
from tests.support import ROOT, RunningServer

FUNCTION = "benchhello-dev-hello"
TICK = os.sysconf("SC_CLK_TCK")

# wrk's Lua: print the percentiles wrk keeps, finer than --latency's four.
PERCENTILES_LUA = """
done = function(summary, latency, requests)
  for _, p in ipairs({50, 90, 95, 98, 99, 99.5, 99.9}) do
    io.write(string.format("p%s=%.2fms ", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("max=%.2fms mean=%.3fms n=%d\\n", latency.max / 1000,
    latency.mean / 1000, summary.requests))
end
"""

GC_HOOK = """
import atexit, gc, os, sys, time
_pauses = []  # (monotonic start, generation, seconds) of every collection
_t = [0.0]
def _cb(phase, info):
    if phase == "start":
        _t[0] = time.monotonic()
        return
    _pauses.append((_t[0], info["generation"], time.monotonic() - _t[0]))
gc.callbacks.append(_cb)
if os.environ.get("BENCH_GC_THRESHOLD"):
    gc.set_threshold(*map(int, os.environ["BENCH_GC_THRESHOLD"].split(",")))
def _dump():
    if "serve" in sys.argv:
        with open(os.environ["BENCH_GC_OUT"], "w") as f:
            f.write(repr({"pauses": _pauses, "frozen": gc.get_freeze_count(),
                          "tracked": len(gc.get_objects()), "threshold": gc.get_threshold()}))
atexit.register(_dump)
"""

# The access log's duration: `client "GET /hello" 200 0.53 ms <request id>`.
ACCESS_DURATION = re.compile(r'" \d{3} ([\d.]+) ms ')


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


def _stolen_s() -> float:
    """The time the hypervisor ran something else on this VM's CPUs (/proc/stat's steal)."""
    return int(Path("/proc/stat").read_text().split()[8]) / TICK


def _switches(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    involuntary = re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status)
    voluntary = re.search(r"\nvoluntary_ctxt_switches:\s+(\d+)", status)
    assert involuntary and voluntary
    return int(involuntary.group(1)), int(voluntary.group(1))


def _run_delay_s(pid: int) -> dict[str, float]:
    """Each thread's time runnable but waiting for a CPU (schedstat's second field)."""
    delays = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # ended meanwhile
            delays[tid] = (
                int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1]) / 1e9
            )
    return delays


def _client(command: list[str]) -> tuple[str, float]:
    """The client's output, and its threads' time waiting for a CPU (read until it exits)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    waited: dict[str, float] = {}
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            waited.update(_run_delay_s(proc.pid))
        time.sleep(0.05)  # sampling wrk's /proc while it runs, not waiting for the system
    out, _ = proc.communicate()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, command)
    return out, sum(waited.values())


def _workers(url: str, function: str = FUNCTION) -> set[int]:
    described = httpx.get(f"{url}/_faasbox/functions/{function}", timeout=30).json()
    return {w["pid"] for w in described["workers"]}


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    at = {p: ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] for p in (50, 99, 99.9)}
    return (
        f"p50={at[50]:.2f}ms p99={at[99]:.2f}ms p99.9={at[99.9]:.2f}ms "
        f"max={ordered[-1]:.2f}ms n={len(ordered)}"
    )


def _gc_by_run(dump: str, windows: list[tuple[str, float, float]]) -> list[str]:
    """Each run's collections per generation, their total and longest pause, and the pauses
    over 1 ms; then what happened outside the runs (startup, the warm-up, shutdown)."""
    recorded = ast.literal_eval(dump)
    pauses: list[tuple[float, int, float]] = recorded["pauses"]
    lines = []
    for name, start, end in [*windows, ("outside the runs", 0.0, 0.0)]:
        if name == "outside the runs":
            inside = [p for p in pauses if not any(s <= p[0] < e for _, s, e in windows)]
        else:
            inside = [p for p in pauses if start <= p[0] < end]
        counts = [sum(1 for p in inside if p[1] == g) for g in range(3)]
        longest = [max((p[2] for p in inside if p[1] == g), default=0.0) * 1000 for g in range(3)]
        lines.append(
            f"  {name}: collections gen0/1/2 {counts}, longest "
            f"{'/'.join(f'{m:.2f}' for m in longest)} ms, total "
            f"{sum(p[2] for p in inside) * 1000:.1f} ms, over 1 ms "
            f"{sum(1 for p in inside if p[2] > 0.001)}"
        )
    lines.append(
        f"  at exit: {recorded['tracked']} objects tracked, {recorded['frozen']} frozen, "
        f"threshold {recorded['threshold']}"
    )
    return lines


def _measure(
    server: RunningServer, pid: int, name: str, command: list[str]
) -> tuple[str, float, float]:
    """One run of `command` against the server; prints what it and the server measured."""
    pids, threads, workers_cpu, switches = (
        _workers(server.url),
        _threads(pid),
        _children_cpu(pid),
        _switches(pid),
    )
    logged = len(server.output)
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    gateway_waited, stolen = _run_delay_s(pid)[str(pid)], _stolen_s()
    out, client_waited = _client(command)
    gateway_waited = _run_delay_s(pid)[str(pid)] - gateway_waited
    stolen = _stolen_s() - stolen
    ended = time.monotonic()
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = _threads(pid)
    busy = {
        k: round(v - threads.get(k, 0.0), 2)
        for k, v in after.items()
        if v - threads.get(k, 0.0) > 0.005
    }
    involuntary, voluntary = (a - b for a, b in zip(_switches(pid), switches, strict=True))
    live = _workers(server.url)
    summary = out.strip().splitlines()[-1]
    fields = dict(f.split("=") for f in summary.split())
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    # Requests per second: wrk's own figure (its run's length), or the plain client's.
    per_s = float(rate.group(1)) if rate else int(fields["n"]) / float(fields["seconds"])
    mean_ms = float(fields["mean"].removesuffix("ms"))
    # The access log's lines of this run (the management API's come after it).
    durations = [
        float(m.group(1))
        for line in server.output[logged:]
        if "/hello" in line and (m := ACCESS_DURATION.search(line))
    ]
    client_cpu = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    print(
        f"{name}: {summary}\n"
        f"  server (access log) {_percentiles(durations)}; in flight by Little's law: "
        f"client {per_s * mean_ms / 1000:.2f}, server "
        f"{sum(durations) / 1000 * per_s / max(1, int(fields['n'])):.2f}"
        + (f" (mean {statistics.fmean(durations):.3f} ms)" if durations else "")
        + "\n"
        f"  client's CPU {client_cpu:.2f} s, involuntary switches "
        f"{client_after.ru_nivcsw - client_before.ru_nivcsw}, waited for a CPU "
        f"{client_waited:.2f} s; the gateway's loop waited {gateway_waited:.2f} s; stolen "
        f"{stolen:.2f} s; load average {load_average()}\n"
        f"  workers {len(live)}, started {len(live - pids)}; gateway threads' CPU s "
        f"{busy}; workers' CPU {_children_cpu(pid) - workers_cpu:.2f} s; gateway "
        f"switches involuntary {involuntary}, voluntary {voluntary}",
        flush=True,
    )
    return name, began, ended


def _alternate(args: argparse.Namespace, scratch: Path, env: dict[str, str]) -> None:
    """bench.peers's two functions taking turns at c=8 (wrk, `--seconds` each): per turn,
    each function's live workers and how many of them started during it (a worker of the
    other function gone meanwhile was evicted to make room at the global cap)."""
    image = scratch / "sample.jpg"
    sample_jpeg(image)
    script = scratch / "post.lua"
    script.write_text(WRK_SCRIPT)
    server = RunningServer([HANDLERS], scratch / "data", "--no-auth", "--quiet").start(env=env)
    names = {"hello": "benchpeers-dev-hello", "gray": "benchpeers-dev-gray"}
    print(f"tree {args.tree}, load average {load_average()}", flush=True)
    try:
        before = {k: _workers(server.url, v) for k, v in names.items()}
        for turn in range(1, args.runs + 1):
            for name in names:
                command = ["wrk", "-t2", "-c8", f"-d{args.seconds}s", f"{server.url}/{name}"]
                wrk_env = dict(os.environ)
                if name == "gray":
                    command[1:1] = ["-s", str(script)]
                    wrk_env.update(BENCH_BODY=str(image), BENCH_CONTENT_TYPE=IMAGE_TYPE)
                out = subprocess.run(
                    command, capture_output=True, text=True, check=True, env=wrk_env
                ).stdout
                rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
                after = {k: _workers(server.url, v) for k, v in names.items()}
                print(
                    f"turn {turn} {name}: {rate.group(1) if rate else '?'} req/s; "
                    + ", ".join(
                        f"{k} {len(after[k])} live, {len(after[k] - before[k])} started, "
                        f"{len(before[k] - after[k])} gone"
                        for k in names
                    ),
                    flush=True,
                )
                before = after
    finally:
        server.stop()
    print(f"load average {load_average()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--gc", action="store_true", help="record the gateway's GC pauses")
    parser.add_argument(
        "--gc-threshold", help="with --gc: the server's gc.set_threshold, e.g. 7000,10,10"
    )
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to serve from")
    parser.add_argument(
        "--serve-arg", action="append", default=[], help="another `faasbox serve` option"
    )
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=("wrk", "plain"),
        default=["wrk", "plain"],
        help="each run, one after the other: wrk, and/or bench/closed_loop.c",
    )
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="instead: bench.peers's hello and grayscale taking turns, workers started per turn",
    )
    args = parser.parse_args(argv or [])
    scratch = Path(tempfile.mkdtemp(prefix="faasbox-bench-"))
    path = [str(args.tree.resolve())]
    env = {"PYTHONSAFEPATH": "1", "BENCH_GC_OUT": str(scratch / "gc.txt")}
    if args.gc:
        (scratch / "hook").mkdir()
        (scratch / "hook" / "sitecustomize.py").write_text(GC_HOOK)
        path.append(str(scratch / "hook"))
        if args.gc_threshold:
            env["BENCH_GC_THRESHOLD"] = args.gc_threshold
    env["PYTHONPATH"] = ":".join(path)
    if args.alternate:
        _alternate(args, scratch, env)
        return
    lua = scratch / "percentiles.lua"
    lua.write_text(PERCENTILES_LUA)
    closed_loop = plain_client_program()
    server = RunningServer(
        [FUNCTIONS / "hello"], scratch / "data", "--no-auth", *args.serve_arg
    ).start(env=env)
    assert server.proc is not None
    pid = server.proc.pid
    print(f"tree {args.tree}, load average {load_average()}", flush=True)
    windows: list[tuple[str, float, float]] = []
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    clients = {
        "wrk": ["wrk", "-t2", "-c8", f"-d{args.seconds}s", "-s", str(lua), f"{server.url}/hello"],
        # The same load from a client that times each request itself (bench/closed_loop.c).
        "plain": [str(closed_loop), host, port, "/hello", "8", str(args.seconds)],
    }
    try:
        httpx.get(f"{server.url}/hello", timeout=30)
        for run in range(1, args.runs + 1):
            for client in args.clients:
                windows.append(_measure(server, pid, f"run {run} {client}", clients[client]))
    finally:
        server.stop()
    if args.gc:
        print("gateway GC:")
        print("\n".join(_gc_by_run((scratch / "gc.txt").read_text(), windows)))
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main(sys.argv[1:])
