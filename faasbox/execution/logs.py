"""Per-function invocation records and logs: the newest in memory, all of them in the database.

Each invocation appends one record (its log text between START and REPORT, its status,
duration, cold or warm). A function keeps its newest records in memory up to a count and a
byte budget, for followers and the page; with a database (faasbox.execution.log_db) every
record is also written there, off the invocation's path, and read back at the next start, so
logs survive restarts and older ones can be searched by time and text. Records carry a
sequence number, increasing across restarts, so followers (`logs --tail`, the UI) can ask for
what is new since the last one they saw.

Gateways sharing one database number their records apart without asking it: a sequence number
is the microseconds since SEQ_EPOCH (or one more than the last, when faster), so two gateways'
records interleave by time and meet only when made in the same microsecond, which the
database's writer resolves (faasbox.execution.log_db). Below 2**53: exact in JavaScript.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faasbox.execution.log_db import LogDatabase

LOG_CAP = 1 << 20  # bytes of output kept per invocation; the rest is counted and dropped
SEQ_EPOCH = 1_735_689_600.0  # 2025-01-01T00:00:00Z


# One per invocation: slotted and not frozen (a frozen dataclass's __init__ costs a setattr
# per field); nobody changes a record after it is made (append_note replaces it).
@dataclass(slots=True)
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
    trace_id: str | None = None  # the invocation's X-Amzn-Trace-Id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# What the console's stats read of a record (faasbox.execution.stats), no log text:
# (started_at, status, duration_ms). A plain tuple: one is made per invocation.
StatPoint = tuple[float, str, float]


def _matches(record: InvocationRecord, start_time: float | None, text: str | None) -> bool:
    return (start_time is None or record.started_at >= start_time) and (
        not text or text in record.log
    )


class LogStore:
    def __init__(
        self,
        records_per_function: int,
        bytes_per_function: int,
        database: LogDatabase | None = None,
    ) -> None:
        self._records: dict[str, deque[InvocationRecord]] = {}
        # Beside each record, its StatPoint: the stats scan these small tuples, not records.
        self._points: dict[str, deque[StatPoint]] = {}
        # And the kept records' statuses per whole minute they started in (epoch minute):
        # the list view's counts read one entry per minute of its window, not every record.
        self._by_minute: dict[str, dict[int, dict[str, int]]] = {}
        self._bytes: dict[str, int] = {}
        self._max_records = records_per_function
        self._max_bytes = bytes_per_function
        self._database = database
        self._last_seq = 0
        self._seq_lock = threading.Lock()
        if database is not None:
            self._last_seq = database.last_seq()
            for function in database.functions():
                for record in database.query(function, limit=records_per_function):
                    self._keep(record)
        # Followers wait on the current event; a new record sets it and starts a new one.
        self._changed = asyncio.Event()

    def next_seq(self) -> int:
        with self._seq_lock:
            self._last_seq = max(self._last_seq + 1, int((time.time() - SEQ_EPOCH) * 1e6))
            return self._last_seq

    def add(self, record: InvocationRecord) -> None:
        self._keep(record)
        if self._database is not None:
            self._database.add(record)  # queued: written by the database's own thread
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _keep(self, record: InvocationRecord) -> None:
        function = record.function
        records = self._records.get(function)
        if records is None:  # (not setdefault: it would build three containers per record)
            records = self._records[function] = deque()
            self._points[function] = deque()
            self._by_minute[function] = {}
        points, by_minute = self._points[function], self._by_minute[function]
        records.append(record)
        status = record.status
        points.append((record.started_at, status, record.duration_ms))
        minute = int(record.started_at // 60)
        counts = by_minute.get(minute)
        if counts is None:
            by_minute[minute] = {status: 1}
        else:
            counts[status] = counts.get(status, 0) + 1
        self._bytes[function] = self._bytes.get(function, 0) + len(record.log)
        while records and (
            len(records) > self._max_records or self._bytes[function] > self._max_bytes
        ):
            dropped = records.popleft()
            points.popleft()
            minute = int(dropped.started_at // 60)
            counts = by_minute[minute]
            left = counts[dropped.status] - 1
            if left:
                counts[dropped.status] = left
            else:
                del counts[dropped.status]
                if not counts:
                    del by_minute[minute]
            self._bytes[function] -= len(dropped.log)

    def records(self, function: str, since: int = 0, limit: int = 100) -> list[InvocationRecord]:
        """The newest `limit` (0: all) records of `function` in memory with a sequence
        number above `since`."""
        found = [r for r in self._records.get(function, ()) if r.seq > since]
        return found[-limit:] if limit else found

    def points(self, function: str, start_time: float) -> list[StatPoint]:
        """The stats' view of `function`'s records in memory started at or after
        `start_time` (epoch seconds), in the order they were kept. Memory only: cheap
        enough for the event loop (about 20 us per 1,000 records)."""
        return [p for p in self._points.get(function, ()) if p[0] >= start_time]

    def status_counts(self, function: str, first_minute: int, minutes: int) -> Counter[str]:
        """How many of `function`'s records in memory, by status, started in the `minutes`
        whole minutes from epoch minute `first_minute` (start time // 60). Costs one step
        per minute of the window at most, however many records there are."""
        by_minute = self._by_minute.get(function)
        total: Counter[str] = Counter()
        if not by_minute:
            return total
        # Whichever is fewer: the window's minutes, or the minutes that hold records.
        last = first_minute + minutes
        if len(by_minute) < minutes:
            found = [c for m, c in by_minute.items() if first_minute <= m < last]
        else:
            found = [c for c in map(by_minute.get, range(first_minute, last)) if c]
        for counts in found:
            for status, n in counts.items():
                total[status] += n
        return total

    def newest_point(self, function: str) -> StatPoint | None:
        """The StatPoint of `function`'s last kept record (None: none)."""
        points = self._points.get(function)
        return points[-1] if points else None

    def search(
        self,
        function: str,
        *,
        since: int = 0,
        start_time: float | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> list[InvocationRecord]:
        """Like `records`, over everything kept (the database too), of those started at or
        after `start_time` (epoch seconds) whose log contains `text`. Reads the database:
        call it off the event loop."""
        found = {
            r.seq: r
            for r in self._records.get(function, ())
            if r.seq > since and _matches(r, start_time, text)
        }
        if self._database is not None:
            # Records still queued for the writer are in memory, newer ones win.
            stored = self._database.query(
                function, since=since, start_time=start_time, text=text, limit=limit
            )
            found = {r.seq: r for r in stored} | found
        ordered = [found[seq] for seq in sorted(found)]
        return ordered[-limit:] if limit else ordered

    def last_seq(self, function: str) -> int:
        """The sequence number of `function`'s newest record (0: none), where a follower
        that wants only what comes next starts."""
        records = self._records.get(function)
        return records[-1].seq if records else 0

    def append_note(self, function: str, request_id: str, note: str) -> None:
        """Add a line after an invocation's REPORT (API Gateway's reasons for a 502, say)."""
        records = self._records.get(function)
        if not records:
            return
        text = note.rstrip() + "\n"
        for index in range(len(records) - 1, -1, -1):
            record = records[index]
            if record.request_id == request_id:
                records[index] = dataclasses.replace(record, log=record.log + text)
                self._bytes[function] += len(text)
                if self._database is not None:
                    self._database.append_note(record.seq, function, text)
                return

    def forget(self, function: str) -> None:
        self._records.pop(function, None)
        self._points.pop(function, None)
        self._by_minute.pop(function, None)
        self._bytes.pop(function, None)
        if self._database is not None:
            self._database.forget(function)

    async def wait_for_new(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):  # not wait_for: it can eat a cancel
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    def flush(self) -> None:
        """Wait until every record so far is in the database (blocks: off the loop)."""
        if self._database is not None:
            self._database.flush()

    def close(self) -> None:
        """Write what is queued and close the database."""
        if self._database is not None:
            self._database.close()
