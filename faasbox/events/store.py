"""The durable event queue: one table in the registry's SQLite file (WAL mode).

Each accepted Event invocation is a row committed before its 202 is sent. A dispatcher takes
rows with a lease: the row turns `running` with `lease_until`; a row whose lease ran out (its
server died) is taken again, so a kill -9 at any moment loses nothing, and only an event that
was running at the kill can run twice (at least once, as on Lambda).

States: queued -> running -> succeeded | retrying (waits `visible_at`) -> ... | failed.
Finished rows are kept a while for `where is my invocation` and then pruned.

Written for a later move to PostgreSQL: `take` is one UPDATE of rows picked by a subquery,
which becomes `SELECT ... FOR UPDATE SKIP LOCKED` there; nothing relies on SQLite's single
writer but the in-process lock around the connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS async_events (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    qualifier TEXT,
    invoked_arn TEXT NOT NULL,
    payload BLOB NOT NULL,
    client_context TEXT,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    lease_until REAL,
    updated_at REAL NOT NULL,
    last_error TEXT,
    destination TEXT
);
CREATE INDEX IF NOT EXISTS async_events_ready ON async_events (state, visible_at);
CREATE INDEX IF NOT EXISTS async_events_function ON async_events (function, created_at);
"""
WAITING = ("queued", "retrying")
DONE = ("succeeded", "failed")


@dataclass(frozen=True)
class QueuedEvent:
    id: str  # the invocation's request id
    function: str
    qualifier: str | None
    invoked_arn: str
    payload: bytes
    client_context: dict[str, Any] | None
    source: str  # "lambda-api", "schedule", "destination", ...
    state: str
    attempts: int  # runs that ended in a function error or timeout
    created_at: float
    last_error: str | None = None
    destination: str | None = None

    def status(self) -> dict[str, Any]:
        """What the management API and the CLI show of it."""
        return {
            "requestId": self.id,
            "function": self.function,
            "qualifier": self.qualifier,
            "source": self.source,
            "state": self.state,
            "attempts": self.attempts,
            "createdAt": self.created_at,
            "lastError": self.last_error,
            "destination": self.destination,
        }


COLUMNS = (
    "id, function, qualifier, invoked_arn, payload, client_context, source, state, attempts,"
    " created_at, last_error, destination"
)


def _event(row: tuple[Any, ...]) -> QueuedEvent:
    return QueuedEvent(
        id=row[0],
        function=row[1],
        qualifier=row[2],
        invoked_arn=row[3],
        payload=bytes(row[4]),
        client_context=json.loads(row[5]) if row[5] else None,
        source=row[6],
        state=row[7],
        attempts=row[8],
        created_at=row[9],
        last_error=row[10],
        destination=row[11],
    )


class EventStore:
    """The queue's rows. Methods are short transactions; callers are the event loop's
    dispatcher and the request handlers (one lock serialises them on one connection)."""

    def __init__(self, db_path: Path) -> None:
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (it is in the OS's
        # page cache); only a power loss can take the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def put(
        self,
        event_id: str,
        function: str,
        qualifier: str | None,
        invoked_arn: str,
        payload: bytes,
        client_context: dict[str, Any] | None,
        source: str,
        now: float | None = None,
    ) -> None:
        """Commit an accepted event (before its caller is told it was accepted)."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            db.execute(
                "INSERT INTO async_events (id, function, qualifier, invoked_arn, payload,"
                " client_context, source, state, created_at, visible_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    event_id,
                    function,
                    qualifier,
                    invoked_arn,
                    payload,
                    json.dumps(client_context) if client_context is not None else None,
                    source,
                    now,
                    now,
                    now,
                ),
            )

    def ready_functions(self, now: float) -> list[str]:
        """Functions with an event ready to run (waiting and visible, or its lease run out)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT function FROM async_events WHERE"
                " (state IN ('queued', 'retrying') AND visible_at <= ?)"
                " OR (state = 'running' AND lease_until <= ?)",
                (now, now),
            ).fetchall()
        return [r[0] for r in rows]

    def take(self, function: str, limit: int, lease_s: float, now: float) -> list[QueuedEvent]:
        """Lease up to `limit` ready events of `function`, oldest first."""
        if limit <= 0:
            return []
        with self._transaction() as db:
            rows = db.execute(
                f"UPDATE async_events SET state = 'running', lease_until = ?, updated_at = ?"
                " WHERE id IN (SELECT id FROM async_events WHERE function = ? AND"
                " ((state IN ('queued', 'retrying') AND visible_at <= ?)"
                " OR (state = 'running' AND lease_until <= ?))"
                " ORDER BY created_at LIMIT ?)"
                f" RETURNING {COLUMNS}",
                (now + lease_s, now, function, now, now, limit),
            ).fetchall()
        events = [_event(r) for r in rows]
        events.sort(key=lambda e: e.created_at)
        return events

    def next_visible(self) -> float | None:
        """When the next waiting event (a retry) or lease comes due."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(t) FROM (SELECT MIN(visible_at) AS t FROM async_events"
                " WHERE state IN ('queued', 'retrying')"
                " UNION ALL SELECT MIN(lease_until) FROM async_events WHERE state = 'running')"
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def release(self, event_id: str, visible_at: float) -> None:
        """Put a leased event back, unchanged, to be taken at `visible_at` (throttled)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE async_events SET state = CASE WHEN attempts > 0 THEN 'retrying'"
                " ELSE 'queued' END, visible_at = ?, lease_until = NULL, updated_at = ?"
                " WHERE id = ?",
                (visible_at, time.time(), event_id),
            )

    def retry(self, event_id: str, visible_at: float, error: str) -> None:
        """A run failed and another is due at `visible_at`."""
        with self._transaction() as db:
            db.execute(
                "UPDATE async_events SET state = 'retrying', attempts = attempts + 1,"
                " visible_at = ?, lease_until = NULL, last_error = ?, updated_at = ?"
                " WHERE id = ?",
                (visible_at, error, time.time(), event_id),
            )

    def finish(
        self,
        event_id: str,
        state: str,
        *,
        failed_run: bool,
        error: str | None,
        destination: str | None,
    ) -> None:
        """The event is done: succeeded, or failed for good (retries or its age exhausted)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE async_events SET state = ?, attempts = attempts + ?, lease_until = NULL,"
                " last_error = COALESCE(?, last_error), destination = ?, updated_at = ?"
                " WHERE id = ?",
                (state, 1 if failed_run else 0, error, destination, time.time(), event_id),
            )

    def release_leases(self) -> int:
        """At startup of the only server using this file: events its predecessor was running
        when it died run again now, without waiting for their leases to run out."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE async_events SET state = CASE WHEN attempts > 0 THEN 'retrying'"
                " ELSE 'queued' END, visible_at = ?, lease_until = NULL WHERE state = 'running'",
                (time.time(),),
            )
            return cursor.rowcount

    def get(self, event_id: str) -> QueuedEvent | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMNS} FROM async_events WHERE id = ?", (event_id,)
            ).fetchone()
        return _event(row) if row else None

    def recent(self, function: str | None, limit: int) -> list[QueuedEvent]:
        with self._lock:
            if function is None:
                rows = self._db.execute(
                    f"SELECT {COLUMNS} FROM async_events ORDER BY created_at DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT {COLUMNS} FROM async_events WHERE function = ?"
                    " ORDER BY created_at DESC LIMIT ?",
                    (function, limit),
                ).fetchall()
        return [_event(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM async_events GROUP BY state"
            ).fetchall()
        return {state: n for state, n in rows}

    def prune(self, older_than: float) -> int:
        """Forget finished events last changed before `older_than`."""
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM async_events WHERE state IN ('succeeded', 'failed')"
                " AND updated_at < ?",
                (older_than,),
            ).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
