"""The binary path (issue 16, part 4): grayscale of a 640x480 JPEG through faasbox, the tree
before against this one, beside the bare handler loop and the floor (bench/binary_floor.py).

    .venv/bin/python -m bench.binary_path                       # before = main
    .venv/bin/python -m bench.binary_path --before 34b6057 --rounds 5 --seconds 8

Each round runs, one after the other: the bare loop (bench.image's: the handler called with
the same event dict in 2 processes), the floor server, the `before` tree's `faasbox serve
examples/image-service --max-workers 2 --no-auth` and this tree's, each loaded by wrk at 2
connections POSTing the JPEG. The `before` tree is `git archive` of the ref, run by this
venv's Python from its own folder (so its `faasbox` is imported, not this one). Per server:
req/s, CPU ms per request of its process tree and of its gateway process alone (from /proc),
medians of the rounds.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path

from bench.common import BareServer
from bench.image import ROOT, WORKERS, Run, bare_throughput, inputs, wrk_post
from tests.support import RunningServer

COMMAND = ".venv/bin/python -m bench.binary_path"


def before_tree(ref: str, into: Path) -> Path:
    """`ref`'s files, without this tree's: its own faasbox, examples and bench."""
    archive = subprocess.run(
        ["git", "archive", ref], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def faasbox_from(tree: Path, data: Path) -> RunningServer:
    # `env --chdir`: the server (and the zygotes and workers it starts) import from `tree`.
    return RunningServer(
        [tree / "examples" / "image-service"],
        data,
        "--max-workers",
        str(WORKERS),
        "--no-auth",
        wrapper=["env", f"--chdir={tree}"],
    ).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="main")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-binary-", dir=ROOT / "build"))
    body, content_type = inputs()["JPEG 640x480"]
    body_file = work / "photo.jpg"
    body_file.write_bytes(body)
    before = before_tree(args.before, work / "before")
    servers = {
        "before": faasbox_from(before, work / "data-before"),
        "after": faasbox_from(ROOT, work / "data-after"),
    }
    floor = BareServer("binary_floor.py")
    urls = {name: s.url + "/images/grayscale" for name, s in servers.items()}
    urls["floor"] = floor.url + "/"
    pids = {name: s.proc.pid for name, s in servers.items() if s.proc is not None}
    pids["floor"] = floor.proc.pid
    runs: dict[str, list[Run]] = {"bare": [], "floor": [], "before": [], "after": []}
    loads = [os.getloadavg()[0]]
    try:
        for url in urls.values():
            wrk_post(url, body_file, content_type, 2)  # warm: both workers started
        for _ in range(args.rounds):
            runs["bare"].append(bare_throughput("grayscale", body, content_type, args.seconds))
            for name in ("floor", "before", "after"):
                runs[name].append(
                    wrk_post(urls[name], body_file, content_type, args.seconds, pids[name])
                )
            loads.append(os.getloadavg()[0])
    finally:
        for server in servers.values():
            server.stop()
        floor.stop()
        shutil.rmtree(work, ignore_errors=True)
    bare = statistics.median(r.rps for r in runs["bare"])
    print(f"grayscale 640x480 JPEG, {args.rounds} rounds of {args.seconds:g} s, wrk -c2")
    print(f"load average (1 min) per round: {', '.join(f'{x:.1f}' for x in loads)}")
    print("| | req/s | x bare | p50 ms | CPU ms/req (tree) | of it, the gateway | rounds req/s |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in runs.items():
        rps = statistics.median(r.rps for r in rs)
        cpu = statistics.median(r.cpu_ms for r in rs)
        gateway = statistics.median(r.gateway_cpu_ms for r in rs) if name != "bare" else 0.0
        p50 = statistics.median(r.p50_ms for r in rs)
        print(
            f"| {name} | {rps:.1f} | {rps / bare:.2f}x | {p50:.2f} | {cpu:.2f} | "
            f"{gateway:.2f} | {', '.join(f'{r.rps:.0f}' for r in rs)} |"
        )
    print(f"Command: `{COMMAND} --before {args.before} --rounds {args.rounds}`")


if __name__ == "__main__":
    main()
