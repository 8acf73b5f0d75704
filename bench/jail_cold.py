"""Cold starts of every process runtime, jailed and not (`--no-jail`), on one machine in one
run: Python (`bench/functions/hello`), Node.js (`bench/functions/nodehello`) and a
`provided.al2023` C client (tests/services/provided/c), 128 MB each, through `httpApi` routes.

Jailed, a Node.js worker is a spare forked from the base zygote that enters the jail at BOOT
and then execs node (node's start is on the cold start); unjailed it is a `node` process
started ahead of need. A `provided` worker is forked from the base zygote either way (it was
spawned before the jail covered it)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.common import FUNCTIONS, Client, faasbox_server, median, percentile
from bench.node import cold_starts
from bench.results import machine, update_section
from bench.runtime_api import service
from tests.functional.test_runtime_api_worker import c_code

RUNS = {
    "Python": ("benchhello-dev-hello", "/hello"),
    "Node.js": ("benchnode-dev-hello", "/node/hello"),
    "provided (C)": ("benchc-dev-hello", "/c"),
}


def ms(times: list[float]) -> str:
    return f"{median(times):.1f} / {percentile(times, 99):.1f}"


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        provided = service(c_code(Path(tmp)), "c", "hello")
        dirs = [FUNCTIONS / "hello", FUNCTIONS / "nodehello", provided]
        rows: dict[str, list[str]] = {name: [] for name in RUNS}
        for flags in ((), ("--no-jail",)):
            server = faasbox_server(dirs, *flags)
            try:
                client = Client(server.url)
                for name, (function, path) in RUNS.items():
                    cold, _ = cold_starts(client, function, path)
                    rows[name].append(ms(cold))
            finally:
                server.stop()
    table = "\n".join(
        f"| {name} | {jailed} | {unjailed} |" for name, (jailed, unjailed) in rows.items()
    )
    body = f"""
| cold start p50 / p99 ms | jailed | `--no-jail` |
|---|---|---|
{table}

Cold start: `GET` of the function's route after its workers were stopped (`DELETE
/_faasbox/functions/NAME/workers`, then a second for the next spare to start), 30 samples each,
sequential, one keep-alive connection. Jailed: every runtime's spare is forked from the base
zygote; at BOOT it mounts the code, /tmp, limits and drops to the function's uid; a Node.js
worker then execs node (so node's own start is part of its cold start), a `provided` one starts
its bootstrap. `--no-jail`: Node.js takes a `node` spare started ahead of need for its
command. Load average at the start {load_before:.1f}, at the end {os.getloadavg()[0]:.1f}.
{machine()}
Command: `.venv/bin/python -m bench.jail_cold`
"""
    update_section("Cold starts, jailed and not", body)
    print(body)


if __name__ == "__main__":
    main()
