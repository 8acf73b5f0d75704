"""The embedded state store (`state.sqlite`): one SQLite file, WAL, one connection whose
writes are serialised by a lock (`BEGIN IMMEDIATE`), so the etag checks of state.py hold."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faasbox.dapr.state import Cursor, SqlStateStore


class SqliteStateStore(SqlStateStore):
    kind = "state.sqlite"
    placeholder = "?"

    def __init__(self, name: str, path: Path, table: str = "state") -> None:
        super().__init__(name, table)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
            "etag TEXT NOT NULL, expires_at REAL)"
        )

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
