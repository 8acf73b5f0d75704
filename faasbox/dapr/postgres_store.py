"""The PostgreSQL state store (`state.postgresql`): the connection string of the component's
metadata (`connectionString`, as Dapr's component takes it), a few pooled connections, each
operation one transaction at READ COMMITTED: the conditional writes of state.py wait for a
row's lock and then see its new etag, so concurrent writers cannot both win."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from faasbox.dapr.state import Cursor, SqlStateStore

POOL_SIZE = 8


class PostgresStateStore(SqlStateStore):
    kind = "state.postgresql"
    placeholder = "%s"

    def __init__(self, name: str, dsn: str, table: str = "state") -> None:
        super().__init__(name, table)
        self.dsn = dsn
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._all: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(POOL_SIZE)
        with self._transaction() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, "
                "value BYTEA NOT NULL, etag TEXT NOT NULL, expires_at DOUBLE PRECISION)"
            )

    def _connection(self) -> psycopg.Connection[Any]:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.dsn, connect_timeout=10)
            with self._lock:
                self._all.append(conn)
            return conn

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._slots:
            conn = self._connection()
            broken = False
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError:
                broken = True
                raise
            finally:
                if broken:  # a broken connection is not pooled again
                    conn.close()
                    with self._lock:
                        self._all.remove(conn)
                else:
                    self._idle.put(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
