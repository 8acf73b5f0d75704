"""Per-function invocation records and logs, kept in memory with a bounded retention.

Each invocation appends one record (its log text between START and REPORT, its status,
duration, cold or warm). A function keeps its newest records up to a count and a byte budget;
older ones are dropped. Records carry a global sequence number so followers (`logs --tail`,
the UI) can ask for what is new since the last one they saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

LOG_CAP = 1 << 20  # bytes of output kept per invocation; the rest is counted and dropped


@dataclass(frozen=True)
class InvocationRecord:
    seq: int
    function: str
    version: str
    request_id: str
    started_at: float  # epoch seconds
    status: str  # success | error | timeout | crash | throttled
    cold: bool
    duration_ms: float
    init_ms: float | None
    max_memory_mb: int
    log: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LogStore:
    def __init__(self, records_per_function: int, bytes_per_function: int) -> None:
        self._records: dict[str, deque[InvocationRecord]] = {}
        self._bytes: dict[str, int] = {}
        self._max_records = records_per_function
        self._max_bytes = bytes_per_function
        self._seq = itertools.count(1)
        # Followers wait on the current event; a new record sets it and starts a new one.
        self._changed = asyncio.Event()

    def next_seq(self) -> int:
        return next(self._seq)

    def add(self, record: InvocationRecord) -> None:
        records = self._records.setdefault(record.function, deque())
        records.append(record)
        self._bytes[record.function] = self._bytes.get(record.function, 0) + len(record.log)
        while records and (
            len(records) > self._max_records or self._bytes[record.function] > self._max_bytes
        ):
            dropped = records.popleft()
            self._bytes[record.function] -= len(dropped.log)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def records(self, function: str, since: int = 0, limit: int = 100) -> list[InvocationRecord]:
        """The newest `limit` records of `function` with a sequence number above `since`."""
        found = [r for r in self._records.get(function, ()) if r.seq > since]
        return found[-limit:] if limit else found

    def append_note(self, function: str, request_id: str, note: str) -> None:
        """Add a line after an invocation's REPORT (API Gateway's reasons for a 502, say)."""
        records = self._records.get(function)
        if not records:
            return
        for index in range(len(records) - 1, -1, -1):
            record = records[index]
            if record.request_id == request_id:
                records[index] = dataclasses.replace(record, log=record.log + note.rstrip() + "\n")
                self._bytes[function] += len(note) + 1
                return

    def forget(self, function: str) -> None:
        self._records.pop(function, None)
        self._bytes.pop(function, None)

    async def wait_for_new(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
