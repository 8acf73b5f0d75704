"""Saved test events of the console's Test tab, per function, as the Lambda console keeps them.

A test event is a name and a JSON document. Like the Lambda console's: names of 1-25 letters,
digits, dots, hyphens and underscores, at most 10 events per function. An event is at most
256 KiB of JSON (a saved event is something a person edits in a text box; larger payloads go
through the Lambda API). They live in the registry's database in a table of their own
(plain SQL, one connection), and are removed with their function by `forget`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faasbox.errors import InvalidParameterValue, ResourceNotFound
from faasbox.storage import Database, Step, connect, migrate

MAX_EVENTS_PER_FUNCTION = 10
MAX_EVENT_BYTES = 256 * 1024
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,25}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS test_events (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    event TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (function, name)
);
"""
MIGRATIONS: list[Step] = [SCHEMA]


@dataclass(frozen=True)
class TestEvent:
    function: str
    name: str
    event: Any  # the parsed JSON document
    updated_at: float  # epoch seconds

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "event": self.event, "updatedAt": self.updated_at}


def checked_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidParameterValue(
            f"Invalid test event name {name!r}: use 1-25 letters, digits, dots, hyphens or "
            "underscores"
        )
    return name


def parsed_event(body: bytes) -> Any:
    """The event document of a save request, refused with a clear message when it is not JSON
    or too large."""
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidParameterValue(
            f"The test event is {len(body)} bytes; a saved test event is at most "
            f"{MAX_EVENT_BYTES} bytes of JSON"
        )
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise InvalidParameterValue(f"The test event is not valid JSON: {e}") from None


class TestEventStore:
    __test__ = False  # a store, not a pytest test class

    def __init__(self, database: Database | Path) -> None:
        self._db = connect(database, "test_events")
        migrate(self._db, "test_events", MIGRATIONS)
        self._lock = threading.Lock()

    def list(self, function: str) -> list[TestEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, event, updated_at FROM test_events WHERE function = ? ORDER BY name",
                (function,),
            ).fetchall()
        return [TestEvent(function, name, json.loads(event), at) for name, event, at in rows]

    def save(self, function: str, name: str, event: Any) -> TestEvent:
        """Create or replace the function's event `name`."""
        checked_name(name)
        text = json.dumps(event)
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                exists = self._db.execute(
                    "SELECT 1 FROM test_events WHERE function = ? AND name = ?", (function, name)
                ).fetchone()
                (count,) = self._db.execute(
                    "SELECT COUNT(*) FROM test_events WHERE function = ?", (function,)
                ).fetchone()
                if not exists and count >= MAX_EVENTS_PER_FUNCTION:
                    raise InvalidParameterValue(
                        f"Function {function} already has {count} saved test events, the most "
                        "it can keep: delete one first"
                    )
                self._db.execute(
                    "INSERT INTO test_events (function, name, event, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (function, name) "
                    "DO UPDATE SET event = excluded.event, updated_at = excluded.updated_at",
                    (function, name, text, now),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return TestEvent(function, name, event, now)

    def delete(self, function: str, name: str) -> None:
        with self._lock:
            deleted = self._db.execute(
                "DELETE FROM test_events WHERE function = ? AND name = ?", (function, name)
            ).rowcount
        if not deleted:
            raise ResourceNotFound(f"Function {function} has no saved test event named {name!r}")

    def forget(self, function: str) -> None:
        """Remove every event of a function that was deleted."""
        with self._lock:
            self._db.execute("DELETE FROM test_events WHERE function = ?", (function,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
