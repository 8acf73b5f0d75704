"""Density: the proportional memory (PSS) of idle warm hello workers, one alone and eight side
by side, and how many fit in 1 GB."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx

from bench.common import FUNCTIONS, faasbox_server, median
from bench.results import machine, update_section

NAME = "benchhello-dev-hello"


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss for {pid}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def idle_workers(client: httpx.Client) -> list[int]:
    info = client.get(f"/_faasbox/functions/{NAME}").json()
    return [w["pid"] for w in info["workers"] if not w["busy"]]


def main() -> None:
    server = faasbox_server([FUNCTIONS / "hello"])
    client = httpx.Client(base_url=server.url, timeout=30)
    try:
        client.get("/hello").raise_for_status()
        time.sleep(1)
        alone = idle_workers(client)
        one_pss, one_rss = pss_mb(alone[0]), rss_mb(alone[0])
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: client.get("/linger").raise_for_status(), range(8)))
        time.sleep(1)
        eight = idle_workers(client)
        eight_pss = median([pss_mb(p) for p in eight])
        started_by = {
            w["startedBy"] for w in client.get(f"/_faasbox/functions/{NAME}").json()["workers"]
        }
    finally:
        client.close()
        server.stop()
    body = f"""Target: PSS of an idle warm hello worker <= 10 MB.

| idle warm hello workers | PSS per worker (MB) | RSS per worker (MB) |
|---|---|---|
| 1 | {one_pss:.1f} | {one_rss:.1f} |
| {len(eight)} | {eight_pss:.1f} (median) | |

About **{int(1024 // eight_pss)}** idle warm workers fit in 1 GB at {len(eight)} side by side
(PSS shrinks as more workers share the zygote's pages).
Workers started by: {", ".join(sorted(started_by))}.
PSS from `/proc/PID/smaps_rollup` one second after the last invocation.
Machine: {machine()}.
Command: `.venv/bin/python -m bench.density`"""
    update_section("Density", body)
    print(body)


if __name__ == "__main__":
    main()
