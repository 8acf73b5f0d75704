"""Where a warm hello's server CPU goes, process by process and thread by thread: the CPU time
of every thread of `faasbox serve --quiet`'s process tree (the gateway's threads, zygotes,
spares, workers) across one wrk run, per request. Prints; writes nothing.

    .venv/bin/python -m bench.cpu_split              # GET /hello, c=1, 5 s
    .venv/bin/python -m bench.cpu_split --connections 8 --seconds 3
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from bench.common import faasbox_server
from bench.peers import HANDLERS


def _threads() -> dict[tuple[int, int], tuple[str, int, int]]:
    """(pid, tid) -> (thread name, parent pid, utime + stime ticks), for every thread."""
    seen: dict[tuple[int, int], tuple[str, int, int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for task in (proc / "task").iterdir():
                stat = (task / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                seen[(int(proc.name), int(task.name))] = (
                    name,
                    int(fields[1]),
                    int(fields[11]) + int(fields[12]),
                )
        except OSError:
            continue  # gone meanwhile
    return seen


def _tree(root: int, threads: dict[tuple[int, int], tuple[str, int, int]]) -> set[int]:
    parents = {pid: parent for (pid, tid), (_, parent, _) in threads.items() if pid == tid}
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args(argv or [])
    server = faasbox_server([HANDLERS], "--quiet")
    assert server.proc is not None
    url = f"{server.url}/hello"
    wrk = ["wrk", f"-t{min(args.connections, 2)}", f"-c{args.connections}"]
    try:
        httpx.get(url, timeout=30)
        subprocess.run([*wrk, "-d1s", url], capture_output=True, check=True)  # warm up
        before = _threads()
        out = subprocess.run(
            [*wrk, f"-d{args.seconds}s", url], capture_output=True, text=True, check=True
        ).stdout
        after = _threads()
    finally:
        server.stop()
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    tree = _tree(server.proc.pid, after)
    per_request = 1e6 / os.sysconf("SC_CLK_TCK") / requests
    rows = sorted(
        (
            (ticks - before.get(key, ("", 0, 0))[2]) * per_request,
            "gateway" if key[0] == server.proc.pid else "child",
            key,
            name,
        )
        for key, (name, _, ticks) in after.items()
        if key[0] in tree
    )
    print(f"{requests} requests, c={args.connections}; CPU µs per request:")
    for us, role, (pid, tid), name in reversed(rows):
        if us > 0:
            print(f"  {us:7.1f}  {role:7s} pid {pid} thread {tid} ({name})")
    print(f"  {sum(r[0] for r in rows):7.1f}  in all")


if __name__ == "__main__":
    main(sys.argv[1:])
