"""The durable queue: one table of messages in the registry's database (faasbox.storage), for
all of faasbox's queue kinds: each function's async invocations (queue `function:NAME`),
the SQS API's queues (queue `sqs:NAME`, faasbox.events.sqs) and Dapr pub/sub's undelivered
events (queue `dapr:PUBSUB/TOPIC/FUNCTION`, faasbox.dapr.pubsub).

A message is a row committed before its sender is answered (the 202 of an Event invoke,
SendMessage's reply, a Dapr publish's 204). A consumer takes rows with a lease: the row turns
`running` until `lease_until` (SQS's visibility timeout) and gets a new receipt handle; a row
whose lease ran out (its consumer died, or did not delete it) is taken again. So a kill -9 at
any moment loses nothing, and only a message being processed at the kill can be processed
twice (at least once, as on Lambda and SQS).

States: queued -> running -> succeeded | retrying (waits `visible_at`) -> ... | failed. An
SQS message is deleted when its consumer deletes it, a pub/sub event once delivered; an async
invocation's row is kept for an hour after it finished, for "where is my invocation".

On PostgreSQL, gateways share the table: `take` is one UPDATE of rows picked by a subquery
`FOR UPDATE SKIP LOCKED`, so two gateways taking at once take different messages; every other
statement is a single UPDATE or DELETE, so the queue runs on row locks, not a store lock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faasbox.events import gateways
from faasbox.storage import AddColumns, Connection, Database, Step, connect, migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    qualifier TEXT,
    invoked_arn TEXT,
    client_context TEXT,
    source TEXT NOT NULL,
    attributes TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    created_at REAL NOT NULL,
    first_received_at REAL,
    visible_at REAL NOT NULL,
    lease_until REAL,
    updated_at REAL NOT NULL,
    last_error TEXT,
    destination TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_ready ON queue_messages (queue, state, visible_at);
-- What the dispatcher looks for, without scanning the finished rows kept for status.
CREATE INDEX IF NOT EXISTS queue_messages_waiting ON queue_messages (state, visible_at);
CREATE INDEX IF NOT EXISTS queue_messages_leased ON queue_messages (state, lease_until);
CREATE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt);
CREATE INDEX IF NOT EXISTS queue_messages_created ON queue_messages (created_at);
"""
MIGRATIONS: list[Step] = [
    SCHEMA,
    # Gateways sharing one database: each lease names the gateway instance that holds it.
    AddColumns("queue_messages", {"lease_owner": "TEXT"}),
    gateways.SCHEMA,
]
READY = (
    "((state IN ('queued', 'retrying') AND visible_at <= :now)"
    " OR (state = 'running' AND lease_until <= :now))"
)
FUNCTION_QUEUE = "function:"


def function_queue(name: str) -> str:
    return FUNCTION_QUEUE + name


@dataclass(frozen=True)
class Message:
    id: str  # an async invocation's request id; an SQS message's MessageId
    queue: str
    body: bytes
    qualifier: str | None
    invoked_arn: str | None
    client_context: dict[str, Any] | None
    source: str  # "lambda-api", "schedule", "destination", "sqs", ...
    attributes: dict[str, Any]
    state: str
    attempts: int  # runs that ended in a function error or timeout
    receive_count: int
    receipt: str | None
    created_at: float
    first_received_at: float | None
    last_error: str | None = None
    destination: str | None = None

    @property
    def function(self) -> str:
        return self.queue.removeprefix(FUNCTION_QUEUE)

    @property
    def payload(self) -> bytes:
        return self.body

    def status(self) -> dict[str, Any]:
        """What the management API and the CLI show of an async invocation."""
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


QueuedEvent = Message  # an async invocation, as the dispatcher calls it

COLUMNS = (
    "id, queue, body, qualifier, invoked_arn, client_context, source, attributes, state,"
    " attempts, receive_count, receipt, created_at, first_received_at, last_error, destination"
)


def _message(row: tuple[Any, ...]) -> Message:
    return Message(
        id=row[0],
        queue=row[1],
        body=bytes(row[2]),
        qualifier=row[3],
        invoked_arn=row[4],
        client_context=json.loads(row[5]) if row[5] else None,
        source=row[6],
        attributes=json.loads(row[7]) if row[7] else {},
        state=row[8],
        attempts=row[9],
        receive_count=row[10],
        receipt=row[11],
        created_at=row[12],
        first_received_at=row[13],
        last_error=row[14],
        destination=row[15],
    )


class EventStore:
    """The queue's rows. Methods are short transactions, called from the server's event
    loop and request handlers (one lock serialises them on one connection)."""

    def __init__(self, database: Database | Path) -> None:
        self._db = connect(database, "queue_messages", row_locks=True, fast_commits=True)
        migrate(self._db, "queue_messages", MIGRATIONS)
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
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
        message_id: str,
        queue: str,
        body: bytes,
        *,
        source: str,
        qualifier: str | None = None,
        invoked_arn: str | None = None,
        client_context: dict[str, Any] | None = None,
        attributes: dict[str, Any] | None = None,
        now: float | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Commit a message (before its sender is told it was accepted)."""
        self.put_many([(message_id, body, attributes)], queue, source=source, now=now,
                      delay_s=delay_s, qualifier=qualifier, invoked_arn=invoked_arn,
                      client_context=client_context)  # fmt: skip

    def put_if_absent(
        self,
        message_id: str,
        queue: str,
        body: bytes,
        *,
        source: str,
        qualifier: str | None = None,
        invoked_arn: str | None = None,
        now: float | None = None,
    ) -> bool:
        """Commit a message unless one of that id is there; whether it was committed."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO queue_messages (id, queue, body, qualifier, invoked_arn, source,"
                " state, created_at, visible_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (message_id, queue, body, qualifier, invoked_arn, source, now, now, now),
            )
            return bool(cursor.rowcount == 1)

    def put_many(
        self,
        messages: list[tuple[str, bytes, dict[str, Any] | None]],
        queue: str,
        *,
        source: str,
        now: float | None = None,
        delay_s: float | list[float] = 0.0,
        qualifier: str | None = None,
        invoked_arn: str | None = None,
        client_context: dict[str, Any] | None = None,
    ) -> None:
        """Commit (id, body, attributes) messages in one transaction."""
        now = time.time() if now is None else now
        delays = delay_s if isinstance(delay_s, list) else [delay_s] * len(messages)
        context = json.dumps(client_context) if client_context is not None else None
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO queue_messages (id, queue, body, qualifier, invoked_arn,"
                " client_context, source, attributes, state, created_at, visible_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                [
                    (
                        message_id, queue, body, qualifier, invoked_arn, context, source,
                        json.dumps(attributes) if attributes else None, now, now + delay, now,
                    )
                    for (message_id, body, attributes), delay in zip(messages, delays, strict=True)
                ],
            )  # fmt: skip

    def put_fanout(
        self,
        messages: list[tuple[str, str, bytes, dict[str, Any] | None]],
        *,
        source: str,
        now: float | None = None,
        consumed: tuple[str, str] | None = None,
    ) -> None:
        """Commit (id, queue, body, attributes) messages to several queues in one transaction
        (a pub/sub event to each subscription's queue). `consumed`: the (queue, receipt) of a
        message these replace, deleted in the same transaction (a dead-lettered event)."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO queue_messages (id, queue, body, source, attributes, state,"
                " created_at, visible_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                [
                    (message_id, queue, body, source,
                     json.dumps(attributes) if attributes else None, now, now, now)
                    for message_id, queue, body, attributes in messages
                ],
            )  # fmt: skip
            if consumed is not None:
                db.execute("DELETE FROM queue_messages WHERE queue = ? AND receipt = ?", consumed)

    def ready_queues(self, prefix: str, now: float) -> list[str]:
        """Queues named `prefix...` with a message ready to take."""
        with self._lock:
            rows = self._db.execute(
                "SELECT queue FROM queue_messages WHERE state IN ('queued', 'retrying')"
                " AND visible_at <= :now AND queue >= :lo AND queue < :hi"
                " UNION SELECT queue FROM queue_messages WHERE state = 'running'"
                " AND lease_until <= :now AND queue >= :lo AND queue < :hi",
                {"lo": prefix, "hi": prefix + "\uffff", "now": now},
            ).fetchall()
        return [r[0] for r in rows]

    def take(
        self, queue: str, limit: int, lease_s: float, now: float, owner: str | None = None
    ) -> list[Message]:
        """Lease up to `limit` ready messages of `queue`, oldest first, each with a new
        receipt handle and its receive count raised; `owner`: the gateway instance that runs
        them (faasbox.events.gateways), None for an SQS consumer's receive."""
        if limit <= 0:
            return []
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE queue_messages SET state = 'running', lease_until = :lease,"
                " lease_owner = :owner, updated_at = :now, receive_count = receive_count + 1,"
                " receipt = lower(hex(randomblob(24))),"
                " first_received_at = COALESCE(first_received_at, :now)"
                " WHERE id IN (SELECT id FROM queue_messages WHERE queue = :queue AND"
                f" {READY} ORDER BY created_at LIMIT :limit{db.skip_locked})"
                f" RETURNING {COLUMNS}",
                {
                    "lease": now + lease_s,
                    "now": now,
                    "queue": queue,
                    "limit": limit,
                    "owner": owner,
                },
            ).fetchall()
        messages = [_message(r) for r in rows]
        messages.sort(key=lambda m: m.created_at)
        return messages

    def redrive(self, queue: str, dead_letter: str, max_receives: int, now: float) -> int:
        """Move ready messages of `queue` received `max_receives` times to `dead_letter`
        (SQS's redrive policy), before the next receive."""
        with self._transaction() as db:
            return db.execute(
                "UPDATE queue_messages SET queue = :dlq, state = 'queued', receive_count = 0,"
                " receipt = NULL, lease_until = NULL, visible_at = :now, updated_at = :now"
                f" WHERE queue = :queue AND receive_count >= :max AND {READY}",
                {"dlq": dead_letter, "now": now, "queue": queue, "max": max_receives},
            ).rowcount

    def next_visible(self, prefix: str) -> float | None:
        """When the next waiting message (a retry) or lease of `prefix...` queues is due."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(t) FROM (SELECT MIN(visible_at) AS t FROM queue_messages"
                " WHERE state IN ('queued', 'retrying') AND queue >= :lo AND queue < :hi"
                " UNION ALL SELECT MIN(lease_until) FROM queue_messages WHERE state = 'running'"
                " AND queue >= :lo AND queue < :hi) AS due",
                {"lo": prefix, "hi": prefix + "\uffff"},
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def release(self, message_id: str, visible_at: float) -> None:
        """Put a leased message back, to be taken at `visible_at` (throttled)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE queue_messages SET state = CASE WHEN attempts > 0 THEN 'retrying'"
                " ELSE 'queued' END, visible_at = ?, lease_until = NULL, updated_at = ?"
                " WHERE id = ?",
                (visible_at, time.time(), message_id),
            )

    def retry(self, message_id: str, visible_at: float, error: str) -> None:
        """A run failed and another is due at `visible_at`."""
        with self._transaction() as db:
            db.execute(
                "UPDATE queue_messages SET state = 'retrying', attempts = attempts + 1,"
                " visible_at = ?, lease_until = NULL, last_error = ?, updated_at = ?"
                " WHERE id = ?",
                (visible_at, error, time.time(), message_id),
            )

    def finish(
        self,
        message_id: str,
        state: str,
        *,
        failed_run: bool,
        error: str | None,
        destination: str | None,
    ) -> None:
        """The invocation is done: succeeded, or failed for good."""
        with self._transaction() as db:
            db.execute(
                "UPDATE queue_messages SET state = ?, attempts = attempts + ?,"
                " lease_until = NULL, last_error = COALESCE(?, last_error), destination = ?,"
                " updated_at = ? WHERE id = ?",
                (state, 1 if failed_run else 0, error, destination, time.time(), message_id),
            )

    def delete_received(self, queue: str, receipts: list[str]) -> list[bool]:
        """Delete messages by the receipt handles they were last received with; for each,
        whether it was found (SQS: a stale handle of a message still there is accepted)."""
        found = []
        with self._transaction() as db:
            for receipt in receipts:
                cursor = db.execute(
                    "DELETE FROM queue_messages WHERE queue = ? AND receipt = ?", (queue, receipt)
                )
                found.append(cursor.rowcount > 0)
        return found

    def change_visibility(self, queue: str, receipt: str, timeout_s: float, now: float) -> bool:
        """A received (still leased) message becomes visible `timeout_s` from now."""
        with self._transaction() as db:
            return (
                db.execute(
                    "UPDATE queue_messages SET lease_until = ?, updated_at = ?"
                    " WHERE queue = ? AND receipt = ? AND state = 'running'",
                    (now + timeout_s, now, queue, receipt),
                ).rowcount
                > 0
            )

    def expire(self, queue: str, sent_before: float) -> int:
        """Drop messages of `queue` sent before `sent_before` (SQS's retention period)."""
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM queue_messages WHERE queue = ? AND created_at < ?",
                (queue, sent_before),
            ).rowcount

    def purge(self, queue: str) -> int:
        with self._transaction() as db:
            return db.execute("DELETE FROM queue_messages WHERE queue = ?", (queue,)).rowcount

    def queue_counts(self, queue: str, now: float) -> dict[str, int]:
        """SQS's approximate numbers: visible, in flight (received), delayed."""
        with self._lock:
            row = self._db.execute(
                "SELECT"
                " SUM(CASE WHEN state != 'running' AND visible_at <= :now THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN state != 'running' AND visible_at > :now THEN 1 ELSE 0 END)"
                " FROM queue_messages WHERE queue = :queue",
                {"now": now, "queue": queue},
            ).fetchone()
        visible, in_flight, delayed = (int(v or 0) for v in row)
        return {"visible": visible, "in_flight": in_flight, "delayed": delayed}

    def register(self, instance: gateways.Instance) -> None:
        """Note a gateway instance that is about to lease messages."""
        with self._transaction() as db:
            gateways.register(db, instance)

    def release_gone(self, prefix: str, *, unowned: bool = False) -> int:
        """What gateways known to be gone (faasbox.events.gateways) were running runs
        again now, without waiting for the leases to run out, and their rows are forgotten.
        `unowned`: leases of the `prefix...` queues without an owner too (taken before owners
        were recorded: at a start after an upgrade)."""
        with self._transaction() as db:
            known = [row[0] for row in db.execute("SELECT id FROM gateways").fetchall()]
            released = 0
            for owner in gateways.gone(db, known):
                released += self._release_where(db, "", "lease_owner = :owner", owner)
                gateways.forget(db, owner)
            if unowned:
                released += self._release_where(db, prefix, "lease_owner IS NULL", None)
            return released

    def release_owned(self, prefix: str, instance: gateways.Instance) -> int:
        """A gateway's dispatcher of `prefix...` stops: what it was running runs again now,
        on another gateway or at the next start."""
        with self._transaction() as db:
            return self._release_where(db, prefix, "lease_owner = :owner", instance.id)

    @staticmethod
    def _release_where(db: Connection, prefix: str, which: str, owner: str | None) -> int:
        return int(
            db.execute(
                "UPDATE queue_messages SET state = CASE WHEN attempts > 0 THEN 'retrying'"
                " ELSE 'queued' END, visible_at = :now, lease_until = NULL, lease_owner = NULL"
                f" WHERE state = 'running' AND {which} AND queue >= :lo AND queue < :hi",
                {"now": time.time(), "lo": prefix, "hi": prefix + "\uffff", "owner": owner},
            ).rowcount
        )

    def get(self, message_id: str) -> Message | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMNS} FROM queue_messages WHERE id = ?", (message_id,)
            ).fetchone()
        return _message(row) if row else None

    def recent(self, queue_prefix: str, limit: int) -> list[Message]:
        """The newest messages of the queues named `queue_prefix...`."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM queue_messages WHERE queue >= :lo AND queue < :hi"
                " ORDER BY created_at DESC LIMIT :limit",
                {"lo": queue_prefix, "hi": queue_prefix + "\uffff", "limit": limit},
            ).fetchall()
        return [_message(r) for r in rows]

    def counts(self, queue_prefix: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM queue_messages WHERE queue >= :lo AND queue < :hi"
                " GROUP BY state",
                {"lo": queue_prefix, "hi": queue_prefix + "\uffff"},
            ).fetchall()
        return {state: n for state, n in rows}

    def prune(self, queue_prefix: str, older_than: float) -> int:
        """Forget finished async invocations last changed before `older_than`."""
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM queue_messages WHERE queue >= :lo AND queue < :hi"
                " AND state IN ('succeeded', 'failed') AND updated_at < :before",
                {"lo": queue_prefix, "hi": queue_prefix + "\uffff", "before": older_than},
            ).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
