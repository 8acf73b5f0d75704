"""Dapr state through faasbox vs the store's own client in a bare loop, in the same run.

faasbox: a real `faasbox serve` per store (the SQLite default; a component file pointing at
PostgreSQL), driven sequentially (c=1) through Dapr's HTTP API (httpx, keep-alive) and its
gRPC API (the real DaprClient). Bare: the same upsert and select on the same kind of table,
with sqlite3 (WAL, autocommit) and psycopg (autocommit) in a loop. Rounds are interleaved;
each figure is the best of the rounds (the least disturbed by the machine's other load).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
from dapr.clients import DaprClient

from bench.common import faasbox_server
from bench.results import machine, update_section
from tests.postgres import start_postgres, stop_postgres
from tests.support import SERVICES

ROUND_S = 1.5
ROUNDS = 3
VALUE = '{"user": "ada", "cart": [1, 2, 3], "total": 42.5}'
COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: statestore}}
spec:
  type: state.postgresql
  version: v1
  metadata:
  - {{name: connectionString, value: "{dsn}"}}
"""
UPSERT = (
    "INSERT INTO bare (key, value, etag) VALUES ({p}, {p}, {p}) ON CONFLICT (key) DO UPDATE "
    "SET value = excluded.value, etag = excluded.etag"
)


def rate(op: Callable[[int], object]) -> float:
    """Operations per second of `op` for ROUND_S seconds."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < ROUND_S:
        for _ in range(20):
            op(done)
            done += 1
    return done / elapsed


def bare_sqlite(folder: Path) -> dict[str, Callable[[int], object]]:
    db = sqlite3.connect(folder / "bare.sqlite3", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE bare (key TEXT PRIMARY KEY, value BLOB, etag TEXT)")
    sql = UPSERT.format(p="?")
    return {
        "set": lambda i: db.execute(sql, (f"k{i % 100}", VALUE.encode(), str(uuid.uuid4()))),
        "get": lambda i: db.execute(
            "SELECT value, etag FROM bare WHERE key = ?", (f"k{i % 100}",)
        ).fetchone(),
    }


def bare_postgres(dsn: str) -> dict[str, Callable[[int], object]]:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("CREATE TABLE bare (key TEXT PRIMARY KEY, value BYTEA, etag TEXT)")
    sql = UPSERT.format(p="%s")
    return {
        "set": lambda i: conn.execute(sql, (f"k{i % 100}", VALUE.encode(), str(uuid.uuid4()))),
        "get": lambda i: conn.execute(
            "SELECT value, etag FROM bare WHERE key = %s", (f"k{i % 100}",)
        ).fetchone(),
    }


def through_http(url: str) -> dict[str, Callable[[int], object]]:
    http = httpx.Client(base_url=url, timeout=30)
    return {
        "set": lambda i: http.post(
            "/v1.0/state/statestore", content=f'[{{"key": "k{i % 100}", "value": {VALUE}}}]'
        ).raise_for_status(),
        "get": lambda i: http.get(f"/v1.0/state/statestore/k{i % 100}").raise_for_status(),
    }


def through_grpc(http: str, address: str) -> dict[str, Callable[[int], object]]:
    os.environ["DAPR_HTTP_ENDPOINT"] = http  # where DaprClient checks the sidecar's health
    client = DaprClient(address=address)
    return {
        "set": lambda i: client.save_state("statestore", f"k{i % 100}", VALUE),
        "get": lambda i: client.get_state("statestore", f"k{i % 100}"),
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="faasbox-bench-dapr-"))
    postgres = start_postgres()
    servers = []
    try:
        dsn = postgres.database("bench_dapr")
        components = work / "components"
        components.mkdir()
        (components / "statestore.yaml").write_text(COMPONENT.format(dsn=dsn))
        ports = ("--dapr-http-port", "0", "--dapr-grpc-port", "0")
        sqlite_server = faasbox_server([SERVICES / "dapr-apps"], *ports)
        servers.append(sqlite_server)
        pg_server = faasbox_server(
            [SERVICES / "dapr-apps"], *ports, "--dapr-components", str(components)
        )
        servers.append(pg_server)

        def endpoints(server: object) -> tuple[str, str]:
            line = next(x for x in server.output if "Dapr HTTP API on" in x)  # type: ignore[attr-defined]
            http = line.split("Dapr HTTP API on ")[1].split(",")[0]
            grpc = line.split("gRPC API on ")[1].split()[0]
            return http, grpc

        sq_http, sq_grpc = endpoints(sqlite_server)
        pg_http, pg_grpc = endpoints(pg_server)
        contenders = {
            ("SQLite", "bare sqlite3"): bare_sqlite(work),
            ("SQLite", "faasbox HTTP"): through_http(sq_http),
            ("SQLite", "faasbox gRPC (DaprClient)"): through_grpc(sq_http, sq_grpc),
            ("PostgreSQL", "bare psycopg"): bare_postgres(dsn),
            ("PostgreSQL", "faasbox HTTP"): through_http(pg_http),
            ("PostgreSQL", "faasbox gRPC (DaprClient)"): through_grpc(pg_http, pg_grpc),
        }
        best: dict[tuple[str, str, str], float] = {}
        for _ in range(ROUNDS):
            for (store, who), ops in contenders.items():
                for name in ("set", "get"):
                    key = (store, who, name)
                    best[key] = max(best.get(key, 0.0), rate(ops[name]))
        rows = []
        for store, bare in (("SQLite", "bare sqlite3"), ("PostgreSQL", "bare psycopg")):
            for who in (bare, "faasbox HTTP", "faasbox gRPC (DaprClient)"):
                cells = []
                for name in ("set", "get"):
                    ops_s = best[(store, who, name)]
                    ratio = ops_s / best[(store, bare, name)]
                    cells.append(f"{ops_s:,.0f}" + ("" if who == bare else f" (**{ratio:.2f}x**)"))
                rows.append(f"| {store} | {who} | {cells[0]} | {cells[1]} |")
        body = "\n".join(
            [
                "State get/set per second at c=1 (one key of 100, a 50-byte JSON value), "
                "through faasbox's Dapr APIs against the store's own client in a bare loop, "
                "measured in the same run; the ratio is against the bare loop.",
                "",
                "| store | client | set/s | get/s |",
                "|---|---|---|---|",
                *rows,
                "",
                "faasbox adds what a Dapr sidecar adds: a loopback HTTP or gRPC hop, the "
                "request's parsing, the key's app-id prefix, the etag check and a fresh etag per "
                "write, and a thread hop off the event loop for the database call. Bare: the same "
                "upsert/select in one process, no network hop (sqlite3) or one (psycopg, over "
                "loopback TCP to the same server).",
                f"{ROUNDS} interleaved rounds of {ROUND_S} s each; best round. "
                f"Machine: {machine()}.",
                "Command: `.venv/bin/python -m bench.dapr_state`",
            ]
        )
        update_section("Dapr state", body)
        print(body)
    finally:
        for server in servers:
            server.stop()
        stop_postgres(postgres)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
