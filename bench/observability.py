"""What observability costs a warm invocation: hello through a route on three faasbox servers
side by side, each a ratio to the first at 1 and 8 connections (wrk):

- plain: `--memory-logs --quiet`: the log store in memory only (as before logs lasted), no
  access log;
- persisted: `--quiet`: each invocation's record also queued to the database's writer thread;
- default: persisted logs and one access log line per request.

All three carry trace ids and count metrics, which have no switch."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench.common import FUNCTIONS, Load, faasbox_server, wrk
from bench.results import machine, update_section
from faasbox.execution.log_db import LogDatabase, Retention
from faasbox.execution.logs import InvocationRecord, LogStore
from faasbox.execution.metrics import InvocationMetrics
from faasbox.gateway.observe import observed

SECONDS = 5
ROUNDS = 2  # the servers alternate, so a change of load on the machine hits them all
VARIANTS = {
    "plain": ("--memory-logs", "--quiet"),
    "persisted": ("--quiet",),
    "default": (),
}


RECORDS = 20_000
HELLO_LOG = (
    "START RequestId: 6f1c1e0e-0000-4000-8000-000000000000 Version: $LATEST\n"
    "hello from the handler\n"
    "END RequestId: 6f1c1e0e-0000-4000-8000-000000000000\n"
    "REPORT RequestId: 6f1c1e0e-0000-4000-8000-000000000000\tDuration: 0.41 ms\t"
    "Billed Duration: 1 ms\tMemory Size: 1024 MB\tMax Memory Used: 15 MB\t\n"
)


def store_cost(database: LogDatabase | None) -> tuple[float, float]:
    """CPU µs per record: on the invoking thread (add), and in all threads (add + writing)."""

    async def run() -> tuple[float, float]:
        store = LogStore(1000, 8 << 20, database)
        wall_thread, cpu = time.thread_time(), time.process_time()
        for i in range(RECORDS):
            store.add(
                InvocationRecord(
                    store.next_seq(), "hello", "$LATEST", f"req-{i}", time.time(), "success",
                    False, 0.41, None, 15, HELLO_LOG,
                )
            )  # fmt: skip
        caller = time.thread_time() - wall_thread
        store.flush()
        total = time.process_time() - cpu
        store.close()
        return caller / RECORDS * 1e6, total / RECORDS * 1e6

    return asyncio.run(run())


def log_store_table() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        memory = store_cost(None)
        db = LogDatabase(Path(tmp) / "registry.sqlite3", Retention(64 << 20, 7 * 86400.0))
        persisted = store_cost(db)
    return (
        "| log store | add() on the invoking thread, CPU µs/record | all threads, CPU µs/record |\n"
        "|---|---|---|\n"
        f"| memory only | {memory[0]:.1f} | {memory[1]:.1f} |\n"
        f"| memory + database | {persisted[0]:.1f} | {persisted[1]:.1f} "
        f"(**{persisted[1] / memory[1]:.1f}x**) |"
    )


def wrapper_table() -> str:
    """CPU µs per request of the gateway's wrapper (trace id in and out), of the access log
    line (formatted and written to a buffer), and of an invocation's metrics."""
    scope = {
        "type": "http", "method": "GET", "path": "/hello", "raw_path": b"/hello",
        "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 5000),
    }  # fmt: skip

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    async def handler(scope: Any, receive: Any, send: Any, request_id: str) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    async def per_call(call: Callable[[], Awaitable[None]]) -> float:
        started = time.process_time()
        for _ in range(RECORDS):
            await call()
        return (time.process_time() - started) / RECORDS * 1e6

    async def run() -> tuple[float, float, float]:
        bare = await per_call(lambda: handler(scope, None, send, "rid"))
        traced = await per_call(lambda: observed(scope, None, send, handler, "rid"))
        logger = logging.getLogger("faasbox.access")
        buffer = logging.StreamHandler(io.StringIO())
        logger.addHandler(buffer)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        try:
            logged = await per_call(lambda: observed(scope, None, send, handler, "rid"))
        finally:
            logger.removeHandler(buffer)
            logger.setLevel(logging.NOTSET)
        return bare, traced, logged

    bare, traced, logged = asyncio.run(run())
    metrics = InvocationMetrics()
    started = time.process_time()
    for _ in range(RECORDS):
        of = metrics.of("hello")
        of.concurrent += 1
        of.concurrent -= 1
        metrics.finished("hello", "success", 0.4, False, None)
    counted = (time.process_time() - started) / RECORDS * 1e6
    return (
        "| per request | CPU µs |\n|---|---|\n"
        f"| trace id in and out (gateway/observe.py) | {traced - bare:.1f} |\n"
        f"| the access log line (off with --quiet) | {logged - traced:.1f} |\n"
        f"| an invocation's metrics (execution/metrics.py) | {counted:.1f} |"
    )


def main() -> None:
    load_before = os.getloadavg()[0]
    store = log_store_table()
    wrapper = wrapper_table()
    servers = {
        name: faasbox_server([FUNCTIONS / "hello"], *args) for name, args in VARIANTS.items()
    }
    try:
        rows = []
        for connections in (1, 8):
            for server in servers.values():
                wrk(f"{server.url}/hello", connections, 1)  # warm the workers
            runs: dict[str, list[Load]] = {name: [] for name in servers}
            for _ in range(ROUNDS):
                for name, server in servers.items():
                    runs[name].append(wrk(f"{server.url}/hello", connections, SECONDS))
            rps = {name: sum(r.rps for r in loads) / ROUNDS for name, loads in runs.items()}
            cells = [
                f"{rps[name]:,.0f} ({min(r.p50_ms for r in runs[name]):.2f} ms)"
                + ("" if name == "plain" else f" **{rps[name] / rps['plain']:.2f}x**")
                for name in servers
            ]
            rows.append(f"| c={connections} | " + " | ".join(cells) + " |")
    finally:
        for server in servers.values():
            server.stop()
    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    body = f"""Target: logs that last and the access log cost a warm invocation little (>= 0.9x).

{store}

{RECORDS:,} records of a hello's size through LogStore.add, in process (CPU time, which the
machine's load does not inflate as it does wall time): the invoking thread only queues a
record; the writer thread's batched INSERTs are the rest.

{wrapper}

The same number of calls of each, in process, against a handler that only answers.

| load | plain req/s (p50) | persisted logs | persisted logs + access log |
|---|---|---|---|
{chr(10).join(rows)}

`GET /hello` (bench/functions/hello). plain: `--memory-logs --quiet`; persisted: `--quiet`
(records batched by the writer thread into SQLite, at most one transaction per 50 ms);
default: also an access log line per request on stdout. wrk {SECONDS} s per cell, {ROUNDS}
rounds alternating the servers after a 1 s warm-up; req/s averaged, p50 the best round.
The machine's 1-minute load average: {load} (on a machine this busy the wall-time ratios
are noise; the CPU figures above are not). Machine: {machine()}.
Command: `.venv/bin/python -m bench.observability`"""
    update_section("Observability overhead", body)
    print(body)


if __name__ == "__main__":
    main()
