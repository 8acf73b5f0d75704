"""What a gateway asks of PostgreSQL, and what one PostgreSQL sustains here for it: the
figures behind docs/scale-out.md's "A plan for 100 nodes".

1. Per invocation, measured on a real `faasbox serve --database postgresql://...` (one
   gateway, the local executor, bench/functions/hello): the database's own counters
   (pg_stat_database: transactions committed, rows inserted and updated) across 1,000 sync
   invocations through a route and 300 async (Event) ones through the Lambda API, less what
   the idle gateway does in the same time (its polls: the deploy revision, the queue, leases),
   which is measured too, per second.
2. Capacity, on the same server: the durable queue's cycle (put, take, finish) through
   EventStore from 1, 2 and 4 threads (a connection each); the log writer's records per
   second (faasbox.execution.log_db, batched); the deploy-revision poll (one SELECT).

PostgreSQL is local (tests/postgres.py: loopback TCP, fsync off) and shares the 2 cores with
the gateway and this client, so the capacity figures are a floor for a database on a machine
of its own. pg_stat_database is flushed by each backend within about 10 s of its last
transaction, so every reading waits that long first.
"""

from __future__ import annotations

import http.client
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.common import FUNCTIONS, Client
from bench.database import cycle_store
from bench.results import machine, update_section
from faasbox.events.store import EventStore
from faasbox.execution.log_db import LogDatabase, Retention
from faasbox.execution.logs import InvocationRecord
from faasbox.storage import Database
from tests.postgres import PostgresServer, start_postgres, stop_postgres
from tests.support import RunningServer

SYNC = 1000
ASYNC = 300
IDLE_S = 20.0
SETTLE_S = 11.0  # over PostgreSQL's 10 s flush of an idle backend's statistics
ROUND_S = 2.0
FUNCTION = "benchhello-dev-hello"
Counters = dict[str, float]


def counters(server: PostgresServer, db: str) -> Counters:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database"
            " WHERE datname = %s",
            (db,),
        ).fetchone()
    assert row is not None
    names = ("commits", "inserted", "updated", "deleted")
    return {"at": time.monotonic(), **dict(zip(names, map(float, row), strict=True))}


def settled(server: PostgresServer, db: str) -> Counters:
    time.sleep(SETTLE_S)
    return counters(server, db)


def per(before: Counters, after: Counters, idle: Counters, count: int) -> Counters:
    """(after - before - idle rate x the time between) / count, per counter."""
    span = after["at"] - before["at"]
    return {k: (after[k] - before[k] - idle[k] * span) / count for k in idle}


def run_sync(url: str) -> None:
    client = Client(url)
    for _ in range(SYNC):
        client.request("GET", "/hello")
    client.close()


def run_async(url: str, server: PostgresServer, db: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    path = f"/2015-03-31/functions/{FUNCTION}/invocations"
    for _ in range(ASYNC):
        conn.request("POST", path, body=b"{}", headers={"X-Amz-Invocation-Type": "Event"})
        response = conn.getresponse()
        response.read()
        assert response.status == 202, response.status
    conn.close()
    with psycopg.connect(server.dsn(db), autocommit=True) as check:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            (left,) = check.execute(
                "SELECT COUNT(*) FROM queue_messages WHERE state NOT IN ('succeeded', 'failed')"
            ).fetchone() or (0,)
            if left == 0:
                return
            time.sleep(0.1)
    raise RuntimeError("the async invocations did not finish")


def per_invocation(server: PostgresServer, work: Path) -> dict[str, Counters]:
    db = "bench_load"
    server.database(db)
    gateway = RunningServer(
        [FUNCTIONS / "hello"], work / "data", "--no-auth", "--quiet",
        "--database", server.url(db),
    ).start(120)  # fmt: skip
    try:
        Client(gateway.url).request("GET", "/hello")  # the worker warm
        start = settled(server, db)
        time.sleep(IDLE_S)
        idle_end = counters(server, db)
        span = idle_end["at"] - start["at"]
        idle = {k: (idle_end[k] - start[k]) / span for k in idle_end if k != "at"}
        before = idle_end
        run_sync(gateway.url)
        after_sync = settled(server, db)
        run_async(gateway.url, server, db)
        after_async = settled(server, db)
    finally:
        gateway.stop()
    return {
        "idle gateway, per second": idle,
        "sync invocation (route)": per(before, after_sync, idle, SYNC),
        "async invocation (Event)": per(after_sync, after_async, idle, ASYNC),
    }


def rate(ops: list[Callable[[int], object]]) -> float:
    """Operations per second of the `ops` together, each on a thread of its own, over
    ROUND_S."""
    done = [0] * len(ops)
    stop = time.perf_counter() + ROUND_S

    def loop(slot: int) -> None:
        while time.perf_counter() < stop:
            ops[slot](done[slot])
            done[slot] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(len(ops))]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - started)


def capacity(server: PostgresServer) -> dict[str, float]:
    server.database("bench_capacity")
    url = server.url("bench_capacity")
    found: dict[str, float] = {}
    for threads in (1, 2, 4):
        stores = [EventStore(Database(url)) for _ in range(threads)]
        found[f"queue cycles/s, {threads} connection(s)"] = rate(
            [cycle_store(s, f"function:bench{i}") for i, s in enumerate(stores)]
        )
        for s in stores:
            s.close()

    logs = LogDatabase(Database(url), Retention(1 << 40, 86400.0))
    count, t0 = 20_000, time.perf_counter()
    base = int(time.time() * 1e6)
    for i in range(count):
        logs.add(
            InvocationRecord(
                base + i, "bench", "$LATEST", str(uuid.uuid4()), time.time(), "success",
                False, 0.3, None, 30, "START RequestId ...\nEND ...\nREPORT ...\n",
            )
        )  # fmt: skip
    assert logs.flush(120)
    found["log records/s (batched writer)"] = count / (time.perf_counter() - t0)
    logs.close()

    with psycopg.connect(server.dsn("bench_capacity"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS deploy_revision (id INTEGER, revision BIGINT)")
        conn.execute("INSERT INTO deploy_revision VALUES (1, 0)")
        poll = "SELECT revision FROM deploy_revision WHERE id = 1"
        found["revision polls/s, 1 connection"] = rate([lambda i: conn.execute(poll).fetchone()])
    return found


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="faasbox-bench-load-"))
    server = start_postgres()
    try:
        loads = per_invocation(server, work)
        sustained = capacity(server)
    finally:
        stop_postgres(server)
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        f"| {what} | {c['commits']:.3f} | {c['inserted']:.3f} | {c['updated']:.3f} |"
        for what, c in loads.items()
    ]
    caps = [f"| {what} | {value:,.0f} |" for what, value in sustained.items()]
    body = f"""What one gateway asks of PostgreSQL (pg_stat_database of its database; the idle
gateway's own rate subtracted from the invocations' rows):

| what | transactions | rows inserted | rows updated |
|---|---|---|---|
{chr(10).join(rows)}

What this PostgreSQL sustains for those statements (same server, this machine's 2 cores
shared with the client):

| statement | per second |
|---|---|
{chr(10).join(caps)}

{SYNC} sync invocations (GET /hello, one keep-alive connection) and {ASYNC} Event
invocations (the Lambda API, until the queue is done) through one `faasbox serve --database
postgresql://... --no-auth` of bench/functions/hello (local executor, logs persisted);
idle measured over {IDLE_S:.0f} s. Queue cycles: put + take (a lease) + finish through
EventStore, a connection per thread; log records: 20,000 through the log writer
(faasbox.execution.log_db, up to 500 a transaction); revision polls: the follower's SELECT.
PostgreSQL local (tests/postgres.py, loopback TCP, fsync off).
Machine: {machine()}.
Command: `.venv/bin/python -m bench.database_load`"""
    update_section("Database load per invocation", body)
    print(body)


if __name__ == "__main__":
    main()
