"""Cold start: the first response of a new worker whose handler imports numpy and Pillow,
forked from faasbox's zygote, against a fresh interpreter doing the same imports and call.
Both measured at the client, as time to first response, over SAMPLES cold starts each."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.common import FUNCTIONS, Client, faasbox_server, median, percentile
from bench.results import machine, update_section

SAMPLES = 50
FUNCTION = FUNCTIONS / "coldstart"
FRESH = "import sys; sys.path.insert(0, {dir!r}); import app; print(app.handler({{}}, None))"


def fresh_interpreter() -> list[float]:
    """A new `python` per request: interpreter start, imports, the call, the answer."""
    env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1"}
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", FRESH.format(dir=str(FUNCTION))],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append((time.perf_counter() - started) * 1000)
    return times


def faasbox_cold_starts() -> dict[str, tuple[list[float], list[float]]]:
    """Time to first response of GET /cold after every worker of the function was stopped,
    on a server with the jail and one without (`--no-jail`), sample by sample in turn, so
    both see the same machine."""
    servers = {
        "jail": faasbox_server([FUNCTION]),
        "no jail": faasbox_server([FUNCTION], "--no-jail"),
    }
    clients = {name: Client(server.url) for name, server in servers.items()}
    recycle = "/_faasbox/functions/coldstart-dev-cold/workers"
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in servers}
    try:
        for client in clients.values():
            for _ in range(3):  # the first cold start teaches the launcher the imports
                client.request("GET", "/cold")
                client.request("DELETE", recycle)
                time.sleep(0.3)
        for _ in range(SAMPLES):
            for name, client in clients.items():
                cold, warm = times[name]
                client.request("DELETE", recycle)
                time.sleep(0.3)  # let the stopped worker exit and a spare be forked
                started = time.perf_counter()
                client.request("GET", "/cold")
                cold.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                client.request("GET", "/cold")
                warm.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.stop()


def row(times: list[float]) -> str:
    return f"{median(times):.1f} | {percentile(times, 99):.1f}"


def main() -> None:
    load_before = os.getloadavg()[0]
    fresh = fresh_interpreter()
    times = faasbox_cold_starts()
    load_after = os.getloadavg()[0]
    cold, warm = times["jail"]
    unjailed, _ = times["no jail"]
    cost = median(cold) - median(unjailed)
    body = f"""Target: >= 20x faster than a fresh interpreter with the same imports, p50 <= 10 ms;
the jail adds at most 2 ms to a cold start (p50).

| | p50 ms | p99 ms |
|---|---|---|
| fresh interpreter: `python -c 'import app; app.handler(...)'` | {row(fresh)} |
| faasbox cold start: `GET /cold` after its workers were stopped | {row(cold)} |
| faasbox cold start without the jail (`serve --no-jail`) | {row(unjailed)} |
| faasbox warm: the next `GET /cold` | {row(warm)} |

Cold start is **{median(fresh) / median(cold):.0f}x** faster than a fresh interpreter (p50);
the jail costs **{cost:+.1f} ms** at p50 (its BOOT steps: the code bound at /var/task, the
old root covered, a tmpfs /tmp, the limits, the uid and capabilities; the namespaces, cgroups,
skeleton root and pivot_root are made in the spare, before the request). The two servers
run side by side and take turns, sample by sample. The machine's other load: average
{load_before:.1f} at the start, {load_after:.1f} at the end.
{SAMPLES} samples each, sequential, timed by a keep-alive `http.client` connection on
loopback (one request at a time; it adds about 0.1 ms). "Warm" is the request right after the
cold start, while the zygote forks the next spare worker in the background.
The function: `bench/functions/coldstart`. Machine:
{machine()}.
Command: `.venv/bin/python -m bench.cold`"""
    update_section("Cold start", body)
    print(body)


if __name__ == "__main__":
    main()
