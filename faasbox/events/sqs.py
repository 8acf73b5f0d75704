"""faasbox's queues, as SQS does them, on the durable queue (faasbox.events.store).

A queue is a row of `sqs_queues` (its attributes); its messages are rows of the one queue
table under the queue name `sqs:NAME`. Receiving leases messages for the visibility timeout
and gives each a new receipt handle; a message received `maxReceiveCount` times (the
queue's RedrivePolicy) moves to the dead-letter queue before the next receive. Long polling
waits on a per-queue asyncio condition that a send notifies. Standard queues only (a FIFO
queue is refused with a clear error).

The operations take and return the SQS JSON protocol's members; faasbox.gateway.sqs_api is
their HTTP front, and destinations, DLQs and `sqs` event sources call them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faasbox.errors import ServiceError
from faasbox.events.sqs_shapes import (
    md5_hex,
    md5_of_attributes,
    name_of_arn,
    queue_arn,
    resolve_queue,
)
from faasbox.events.store import EventStore, Message
from faasbox.storage import Database, Step, connect, migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS sqs_queues (
    name TEXT PRIMARY KEY,
    attributes TEXT NOT NULL,
    created_at REAL NOT NULL,
    modified_at REAL NOT NULL
);
"""
MIGRATIONS: list[Step] = [SCHEMA]
QUEUE_PREFIX = "sqs:"
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
MAX_BATCH = 10
MAX_WAIT_S = 20
MAX_VISIBILITY_S = 43200
DEFAULTS = {
    "VisibilityTimeout": "30",
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
    "MaximumMessageSize": "262144",
}
# Settable attributes and their ranges (the RedrivePolicy is checked on its own).
RANGES = {
    "VisibilityTimeout": (0, MAX_VISIBILITY_S),
    "MessageRetentionPeriod": (60, 1209600),
    "DelaySeconds": (0, 900),
    "ReceiveMessageWaitTimeSeconds": (0, MAX_WAIT_S),
    "MaximumMessageSize": (1024, 262144),
}
ACCEPTED_UNUSED = (
    "Policy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)


class SqsError(ServiceError):
    """An SQS error: its JSON `__type` (the shape name) and the older query code botocore
    maps back (x-amzn-query-error)."""

    def __init__(self, shape: str, message: str, query_code: str | None = None) -> None:
        super().__init__(message)
        self.aws_type = shape
        self.query_code = query_code or shape
        self.status = 400


def no_such_queue() -> SqsError:
    return SqsError(
        "QueueDoesNotExist",
        "The specified queue does not exist.",
        "AWS.SimpleQueueService.NonExistentQueue",
    )


def invalid(message: str) -> SqsError:
    return SqsError("InvalidParameterValue", message, "InvalidParameterValue")


@dataclass(frozen=True)
class Queue:
    name: str
    attributes: dict[str, str]
    created_at: float
    modified_at: float

    def number(self, key: str) -> int:
        return int(self.attributes.get(key, DEFAULTS.get(key, "0")))

    @property
    def redrive(self) -> tuple[str, int] | None:
        """(dead-letter queue name, maxReceiveCount) of its RedrivePolicy."""
        policy = self.attributes.get("RedrivePolicy")
        if not policy:
            return None
        doc = json.loads(policy)
        target = name_of_arn(str(doc["deadLetterTargetArn"]))
        return (target, int(doc["maxReceiveCount"])) if target else None


def checked_attributes(attributes: Any) -> dict[str, str]:
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise invalid("Attributes must be a map of attribute names to values")
    checked: dict[str, str] = {}
    for key, value in attributes.items():
        if key == "FifoQueue" or key == "ContentBasedDeduplication":
            raise invalid("faasbox does not support FIFO queues; create a standard queue")
        if key in RANGES:
            low, high = RANGES[key]
            if not str(value).isdigit() or not low <= int(value) <= high:
                raise invalid(
                    f"Invalid value for the parameter {key}: it must be from {low} to {high}."
                )
            checked[key] = str(int(value))
        elif key == "RedrivePolicy":
            checked[key] = _checked_redrive(value)
        elif key in ACCEPTED_UNUSED:
            checked[key] = str(value)
        else:
            raise SqsError(
                "InvalidAttributeName", f"Unknown Attribute {key}.", "InvalidAttributeName"
            )
    return checked


def _checked_redrive(value: Any) -> str:
    try:
        doc = json.loads(value) if isinstance(value, str) else value
        target = str(doc["deadLetterTargetArn"])
        count = int(doc["maxReceiveCount"])
    except (ValueError, TypeError, KeyError):
        raise invalid(
            "Value for parameter RedrivePolicy is invalid. Reason: expected "
            '{"deadLetterTargetArn": "arn:aws:sqs:...", "maxReceiveCount": N}.'
        ) from None
    if name_of_arn(target) is None or not 1 <= count <= 1000:
        raise invalid(
            "Value for parameter RedrivePolicy is invalid. Reason: the dead-letter target "
            "must be a queue ARN and maxReceiveCount from 1 to 1000."
        )
    return json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": count})


class QueueService:
    """The SQS operations on the durable store; its methods run on the server's loop."""

    def __init__(self, database: Database | Path, store: EventStore) -> None:
        self.store = store
        self._db = connect(database, "sqs_queues")
        migrate(self._db, "sqs_queues", MIGRATIONS)
        self._lock = threading.Lock()
        self._arrivals: dict[str, asyncio.Condition] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- queues ------------------------------------------------------------------------------

    def get(self, name: str) -> Queue:
        with self._lock:
            row = self._db.execute(
                "SELECT name, attributes, created_at, modified_at FROM sqs_queues WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            raise no_such_queue()
        return Queue(row[0], json.loads(row[1]), row[2], row[3])

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except SqsError:
            return False

    def create(self, name: Any, attributes: Any = None) -> Queue:
        if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
            if isinstance(name, str) and name.endswith(".fifo"):
                raise invalid("faasbox does not support FIFO queues; create a standard queue")
            raise invalid(
                "Can only include alphanumeric characters, hyphens, or underscores. "
                "1 to 80 in length"
            )
        wanted = checked_attributes(attributes)
        now = time.time()
        with self._lock:
            row = self._db.execute(
                "SELECT attributes FROM sqs_queues WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                # (another gateway may create it at the same moment: then theirs stands)
                self._db.execute(
                    "INSERT INTO sqs_queues (name, attributes, created_at, modified_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    (name, json.dumps(wanted), now, now),
                )
            else:
                have = json.loads(row[0])
                for key, value in wanted.items():
                    if have.get(key, DEFAULTS.get(key)) != value:
                        raise SqsError(
                            "QueueNameExists",
                            f"A queue already exists with the same name and a different "
                            f"value for attribute {key}",
                            "QueueAlreadyExists",
                        )
        return self.get(name)

    def ensure(self, name: str, attributes: dict[str, str]) -> Queue:
        """A queue declared in serverless.yml: created, or its attributes made these."""
        checked = checked_attributes(attributes)
        if not self.exists(name):
            return self.create(name, checked)
        self.set_attributes(name, checked)
        return self.get(name)

    def set_attributes(self, name: str, attributes: Any) -> None:
        queue = self.get(name)
        merged = {**queue.attributes, **checked_attributes(attributes)}
        with self._lock:
            self._db.execute(
                "UPDATE sqs_queues SET attributes = ?, modified_at = ? WHERE name = ?",
                (json.dumps(merged), time.time(), name),
            )

    def names(self, prefix: str = "") -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT name FROM sqs_queues ORDER BY name").fetchall()
        return [r[0] for r in rows if r[0].startswith(prefix)]

    def delete(self, name: str) -> None:
        self.get(name)
        with self._lock:
            self._db.execute("DELETE FROM sqs_queues WHERE name = ?", (name,))
        self.store.purge(QUEUE_PREFIX + name)

    def attributes(self, name: str, wanted: list[str]) -> dict[str, str]:
        queue = self.get(name)
        counts = self.store.queue_counts(QUEUE_PREFIX + name, time.time())
        everything = {
            **DEFAULTS,
            **queue.attributes,
            "QueueArn": queue_arn(name),
            "CreatedTimestamp": str(int(queue.created_at)),
            "LastModifiedTimestamp": str(int(queue.modified_at)),
            "ApproximateNumberOfMessages": str(counts["visible"]),
            "ApproximateNumberOfMessagesNotVisible": str(counts["in_flight"]),
            "ApproximateNumberOfMessagesDelayed": str(counts["delayed"]),
        }
        if not wanted or "All" in wanted:
            return everything
        unknown = [w for w in wanted if w not in everything and w not in RANGES]
        if unknown:
            raise SqsError(
                "InvalidAttributeName", f"Unknown Attribute {unknown[0]}.", "InvalidAttributeName"
            )
        return {w: everything[w] for w in wanted if w in everything}

    def purge(self, name: str) -> None:
        self.get(name)
        self.store.purge(QUEUE_PREFIX + name)

    # -- messages ----------------------------------------------------------------------------

    def send(
        self,
        name: str,
        entries: list[tuple[Any, Any, Any]],
        source: str = "sqs",
    ) -> list[dict[str, Any]]:
        """Commit (body, delay, message attributes) messages to queue `name` at once, each
        checked (they come from requests); each one's MessageId and MD5s."""
        queue = self.get(name)
        limit = queue.number("MaximumMessageSize")
        results: list[dict[str, Any]] = []
        rows: list[tuple[str, bytes, dict[str, Any] | None]] = []
        delays: list[float] = []
        for body, delay, attributes in entries:
            if not isinstance(body, str) or not body:
                raise invalid("The request must contain the parameter MessageBody.")
            if len(body.encode()) > limit:
                raise invalid(
                    f"One or more parameters are invalid. Reason: Message must be shorter "
                    f"than {limit} bytes."
                )
            if delay is not None and (type(delay) is not int or not 0 <= delay <= 900):
                raise invalid(
                    f"Value {delay} for parameter DelaySeconds is invalid. Reason: must be "
                    "between 0 and 900 seconds."
                )
            message_id = str(uuid.uuid4())
            rows.append((message_id, body.encode(), {"MessageAttributes": attributes or {}}))
            delays.append(float(queue.number("DelaySeconds") if delay is None else delay))
            result: dict[str, Any] = {"MessageId": message_id, "MD5OfMessageBody": md5_hex(body)}
            digest = md5_of_attributes(attributes or {})
            if digest:
                result["MD5OfMessageAttributes"] = digest
            results.append(result)
        self.store.put_many(rows, QUEUE_PREFIX + name, source=source, delay_s=delays)
        self._notify(name)
        return results

    def deliver(
        self, queue_arn_: str, body: str, attributes: dict[str, str], declared: dict[str, Any]
    ) -> bool:
        """A destination or DLQ message (faasbox.events.dispatcher.QueueSink); `declared`:
        the sending function's queues, which its ARNs may name by logical id."""
        name = resolve_queue(queue_arn_, declared)
        if not self.exists(name):
            return False
        typed = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        self.send(name, [(body, None, typed)], source="lambda")
        return True

    def take(self, name: str, limit: int, visibility_s: int | None = None) -> list[Message]:
        """Receive up to `limit` messages now (no waiting), redriving first."""
        queue = self.get(name)
        now = time.time()
        self.store.expire(QUEUE_PREFIX + name, now - queue.number("MessageRetentionPeriod"))
        redrive = queue.redrive
        if redrive is not None and self.exists(redrive[0]):
            moved = self.store.redrive(
                QUEUE_PREFIX + name, QUEUE_PREFIX + redrive[0], redrive[1], now
            )
            if moved:
                self._notify(redrive[0])
        lease = queue.number("VisibilityTimeout") if visibility_s is None else visibility_s
        return self.store.take(QUEUE_PREFIX + name, limit, float(lease), now)

    async def receive(
        self, name: str, limit: int, visibility_s: int | None, wait_s: float | None
    ) -> list[Message]:
        """ReceiveMessage: what is there, or wait up to `wait_s` (long polling) for it."""
        queue = self.get(name)
        wait = queue.number("ReceiveMessageWaitTimeSeconds") if wait_s is None else wait_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        arrivals = self._arrivals_of(name)
        while True:
            messages = self.take(name, limit, visibility_s)
            remaining = deadline - loop.time()
            if messages or remaining <= 0:
                return messages
            async with arrivals:
                # Wake at a send, or when a leased or delayed message may come due.
                due = self.store.next_visible(QUEUE_PREFIX + name)
                pause = remaining if due is None else min(remaining, max(0.05, due - time.time()))
                with contextlib.suppress(TimeoutError):  # not wait_for: it can eat a cancel
                    async with asyncio.timeout(min(pause, 1.0)):
                        await arrivals.wait()

    def delete_messages(self, name: str, receipts: list[str]) -> list[bool]:
        self.get(name)
        return self.store.delete_received(QUEUE_PREFIX + name, receipts)

    def change_visibility(self, name: str, receipt: str, timeout_s: Any) -> bool:
        self.get(name)
        if type(timeout_s) is not int or not 0 <= timeout_s <= MAX_VISIBILITY_S:
            raise invalid(
                f"Value {timeout_s} for parameter VisibilityTimeout is invalid. Reason: must "
                f"be between 0 and {MAX_VISIBILITY_S}."
            )
        changed = self.store.change_visibility(QUEUE_PREFIX + name, receipt, timeout_s, time.time())
        if changed and timeout_s == 0:
            self._notify(name)
        return changed

    def _arrivals_of(self, name: str) -> asyncio.Condition:
        condition = self._arrivals.get(name)
        if condition is None:
            condition = self._arrivals[name] = asyncio.Condition()
            self._loop = asyncio.get_running_loop()
        return condition

    def _notify(self, name: str) -> None:
        condition = self._arrivals.get(name)
        if condition is None or self._loop is None:
            return

        async def wake() -> None:
            async with condition:
                condition.notify_all()

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            running.create_task(wake())
        else:
            asyncio.run_coroutine_threadsafe(wake(), self._loop)

    def close(self) -> None:
        with self._lock:
            self._db.close()
