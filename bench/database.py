"""The storage seam's cost: the durable queue's put, take and finish through EventStore
(faasbox/storage: a Connection, SQLite's SQL translated once for PostgreSQL) against the same
statements on the bare driver (sqlite3; psycopg with the SQL already in its words), on SQLite
and on a real PostgreSQL server, in the same run. Rounds are interleaved; best round."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.results import machine, update_section
from faasbox.events.store import COLUMNS, READY, EventStore
from faasbox.storage import Database
from faasbox.storage.dialect import postgres_sql
from tests.postgres import start_postgres, stop_postgres

ROUND_S = 1.0
ROUNDS = 5
PUT = (
    "INSERT INTO queue_messages (id, queue, body, source, state, created_at, visible_at,"
    " updated_at) VALUES (?, ?, ?, 'bench', 'queued', ?, ?, ?)"
)
TAKE = (
    "UPDATE queue_messages SET state = 'running', lease_until = :lease, updated_at = :now,"
    " receive_count = receive_count + 1, receipt = lower(hex(randomblob(24))),"
    " first_received_at = COALESCE(first_received_at, :now)"
    " WHERE id IN (SELECT id FROM queue_messages WHERE queue = :queue AND"
    f" {READY} ORDER BY created_at LIMIT 1{{skip}}) RETURNING {COLUMNS}"
)
FINISH = "UPDATE queue_messages SET state = 'succeeded', updated_at = ? WHERE id = ?"


def cycle_store(store: EventStore, queue: str = "function:bench") -> Callable[[int], object]:
    """One cycle on `queue` (a queue per concurrent client: each takes what it put)."""

    def op(i: int) -> object:
        now = time.time()
        store.put(f"m{uuid.uuid4().hex}", queue, b"{}", source="bench", now=now)
        (taken,) = store.take(queue, 1, 60.0, now)
        store.finish(taken.id, "succeeded", failed_run=False, error=None, destination=None)
        return taken

    return op


def cycle_bare(execute: Callable[[str, Any], Any], pg: bool) -> Callable[[int], object]:
    put, finish = PUT, FINISH
    take = TAKE.format(skip=" FOR UPDATE SKIP LOCKED" if pg else "")
    if pg:
        put, take, finish = (postgres_sql(s, True) for s in (put, take, finish))

    begin = "BEGIN" if pg else "BEGIN IMMEDIATE"  # as the store begins on each

    def op(i: int) -> object:
        now = time.time()
        execute(begin, None)
        execute(put, (f"m{uuid.uuid4().hex}", "function:bench", b"{}", now, now, now))
        execute("COMMIT", None)
        execute(begin, None)
        row = execute(take, {"lease": now + 60, "now": now, "queue": "function:bench"}).fetchone()
        execute("COMMIT", None)
        execute(begin, None)
        execute(finish, (time.time(), row[0]))
        execute("COMMIT", None)
        return row

    return op


def rate(op: Callable[[int], object]) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < ROUND_S:
        for _ in range(10):
            op(done)
            done += 1
    return done / elapsed


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="faasbox-bench-db-"))
    postgres = start_postgres()
    try:
        store_sqlite = EventStore(Database(str(work / "store.sqlite3")))
        EventStore(work / "bare.sqlite3").close()  # the same schema, for the bare loop
        bare_sqlite = sqlite3.connect(work / "bare.sqlite3", isolation_level=None)
        bare_sqlite.execute("PRAGMA journal_mode=WAL")
        bare_sqlite.execute("PRAGMA synchronous=NORMAL")
        postgres.database("bench_store")
        postgres.database("bench_bare")
        store_pg = EventStore(Database(postgres.url("bench_store")))
        EventStore(Database(postgres.url("bench_bare"))).close()
        bare_pg = psycopg.connect(postgres.dsn("bench_bare"), autocommit=True)
        contenders = {
            ("SQLite", "bare sqlite3"): cycle_bare(
                lambda sql, p: bare_sqlite.execute(sql, p or ()), pg=False
            ),
            ("SQLite", "EventStore"): cycle_store(store_sqlite),
            ("PostgreSQL", "bare psycopg"): cycle_bare(bare_pg.execute, pg=True),
            ("PostgreSQL", "EventStore"): cycle_store(store_pg),
        }
        best: dict[tuple[str, str], float] = {}
        for _ in range(ROUNDS):
            for key, op in contenders.items():
                best[key] = max(best.get(key, 0.0), rate(op))
        rows = []
        for (backend, who), value in best.items():
            bare = best[(backend, "bare sqlite3" if backend == "SQLite" else "bare psycopg")]
            ratio = "" if who.startswith("bare") else f" (**{value / bare:.2f}x**)"
            rows.append(f"| {backend} | {who} | {value:,.0f}{ratio} |")
        body = "\n".join(
            [
                "The durable queue's cycle (put, take with a lease, finish: three short "
                "transactions) per second at c=1, through `EventStore` on the storage seam "
                "against the same statements on the bare driver, in the same run; the ratio is "
                "against the bare driver of the same backend.",
                "",
                "| backend | client | cycles/s |",
                "|---|---|---|",
                *rows,
                "",
                "The seam adds a Python call per statement and, on PostgreSQL, a cached "
                "translation lookup and the store's lock; SQLite commits are synchronous=NORMAL "
                "in WAL (both). PostgreSQL: a local server over loopback TCP, fsync off "
                "(tests/postgres.py). Repeated runs on this shared 2-core machine spread by "
                "about 20 %: a ratio near 1 means no cost this bench can resolve.",
                f"{ROUNDS} interleaved rounds of {ROUND_S} s each; best round. "
                f"Machine: {machine()}.",
                "Command: `.venv/bin/python -m bench.database`",
            ]
        )
        update_section("Storage seam (the durable queue)", body)
        print(body)
        for s in (store_sqlite, store_pg):
            s.close()
        bare_pg.close()
        bare_sqlite.close()
    finally:
        stop_postgres(postgres)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
