"""Invocation records and their log text, kept in the registry's database so they last.

The log store (faasbox.execution.logs) hands each new record here; a background thread writes
them in batches, so an invocation never waits for the disk (the hot path has no SQL). Each
function keeps what fits its byte budget and is younger than the retention age; the writer
drops the rest as it goes. Reads (`query`) run on their own connection, beside the writer
(SQLite's WAL, or PostgreSQL: faasbox.storage).

The SQL is plain and in this module only (one table, parameters).

Several gateways may write into one database. Their sequence numbers are times
(faasbox.execution.logs), so they meet only when two records were made in the same
microsecond; a record whose number another gateway's record took first is written under the
next free number instead (never over the other: no record is lost). Its later notes then miss
it (they name the number it was made with).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from faasbox.execution.logs import InvocationRecord
from faasbox.storage import Connection, Database, DatabaseError, Step, connect, migrate

log = logging.getLogger("faasbox.logs")

SCHEMA = """
CREATE TABLE IF NOT EXISTS invocation_logs (
    seq INTEGER PRIMARY KEY,
    function TEXT NOT NULL,
    version TEXT NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT,
    started_at REAL NOT NULL,
    status TEXT NOT NULL,
    cold INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    init_ms REAL,
    max_memory_mb INTEGER NOT NULL,
    log TEXT NOT NULL,
    log_size INTEGER NOT NULL  -- len(log), so retention never reads the texts
);
CREATE INDEX IF NOT EXISTS invocation_logs_by_function ON invocation_logs (function, seq);
CREATE INDEX IF NOT EXISTS invocation_logs_by_time ON invocation_logs (started_at);
"""
MIGRATIONS: list[Step] = [SCHEMA]
COLUMNS = (
    "seq, function, version, request_id, trace_id, started_at, status, cold, duration_ms, "
    "init_ms, max_memory_mb, log"
)
INSERT = (
    f"INSERT INTO invocation_logs ({COLUMNS}, log_size) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING"
)
BATCH = 500  # records written in one transaction at most
# A batch waits this long for more records after its first: under load, one transaction
# (one wake-up of the writer) per interval instead of one per invocation.
BATCH_WINDOW_S = 0.05
AGE_SWEEP_S = 60.0  # how often records past the retention age are dropped
TRIM_TO = 0.9  # a function over its byte budget is trimmed to this share of it


@dataclass(frozen=True)
class Retention:
    bytes_per_function: int
    max_age_s: float


# What the writer thread is asked to do, in order.
@dataclass(frozen=True)
class _Add:
    record: InvocationRecord


@dataclass(frozen=True)
class _Note:
    seq: int
    function: str
    text: str


@dataclass(frozen=True)
class _Forget:
    function: str


@dataclass(frozen=True)
class _Flush:
    done: threading.Event


_Op = _Add | _Note | _Forget | _Flush


def _row(record: InvocationRecord) -> tuple[object, ...]:
    r = record
    return (
        r.seq, r.function, r.version, r.request_id, r.trace_id, r.started_at, r.status,
        int(r.cold), r.duration_ms, r.init_ms, r.max_memory_mb, r.log,
    )  # fmt: skip


def _record(row: tuple[object, ...]) -> InvocationRecord:
    seq, function, version, request_id, trace_id, started, status, cold, dur, init, mem, text = row
    return InvocationRecord(
        seq=int(seq),  # type: ignore[call-overload]
        function=str(function),
        version=str(version),
        request_id=str(request_id),
        started_at=float(started),  # type: ignore[arg-type]
        status=str(status),
        cold=bool(cold),
        duration_ms=float(dur),  # type: ignore[arg-type]
        init_ms=None if init is None else float(init),  # type: ignore[arg-type]
        max_memory_mb=int(mem),  # type: ignore[call-overload]
        log=str(text),
        trace_id=None if trace_id is None else str(trace_id),
    )


class LogDatabase:
    def __init__(self, database: Database | Path, retention: Retention) -> None:
        self.retention = retention
        self._database = database
        self._reader = self._connect()
        migrate(self._reader, "invocation_logs", MIGRATIONS)
        self._read_lock = threading.Lock()
        self._ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._urgent = threading.Event()  # a flush or the end is queued: write now
        self._thread = threading.Thread(target=self._write_loop, name="faasbox-logs", daemon=True)
        self._thread.start()

    def _connect(self) -> Connection:
        # SQLite: WAL with synchronous=NORMAL, so a commit is not synced to disk on its own (a
        # crash of the machine, not of faasbox, may lose the last moments of logs).
        return connect(self._database, "invocation_logs", fast_commits=True)

    # -- from any thread: queued for the writer ------------------------------------------------

    def add(self, record: InvocationRecord) -> None:
        self._ops.put(_Add(record))

    def append_note(self, seq: int, function: str, text: str) -> None:
        self._ops.put(_Note(seq, function, text))

    def forget(self, function: str) -> None:
        self._ops.put(_Forget(function))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is written (tests, shutdown)."""
        done = threading.Event()
        self._ops.put(_Flush(done))
        self._urgent.set()
        return done.wait(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self._ops.put(None)
            self._urgent.set()
            self._thread.join(30)
        with self._read_lock:
            self._reader.close()

    # -- reads ---------------------------------------------------------------------------------

    def last_seq(self) -> int:
        with self._read_lock:
            (seq,) = self._reader.execute("SELECT MAX(seq) FROM invocation_logs").fetchone()
        return int(seq or 0)

    def functions(self) -> list[str]:
        with self._read_lock:
            rows = self._reader.execute("SELECT DISTINCT function FROM invocation_logs").fetchall()
        return [str(name) for (name,) in rows]

    def query(
        self,
        function: str,
        *,
        since: int = 0,
        start_time: float | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> list[InvocationRecord]:
        """The newest `limit` (0: all) records of `function` after `since`, started at or
        after `start_time`, whose log contains `text` (case-sensitive, as CloudWatch's
        filters); oldest first."""
        sql = f"SELECT {COLUMNS} FROM invocation_logs WHERE function = ? AND seq > ?"
        params: list[object] = [function, since]
        if start_time is not None:
            sql += " AND started_at >= ?"
            params.append(start_time)
        if text:
            sql += " AND instr(log, ?) > 0"
            params.append(text)
        sql += " ORDER BY seq DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read_lock:
            rows = self._reader.execute(sql, params).fetchall()
        return [_record(row) for row in reversed(rows)]

    # -- the writer thread ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        db = self._connect()
        sizes = dict(
            db.execute("SELECT function, SUM(log_size) FROM invocation_logs GROUP BY function")
        )
        next_sweep = 0.0
        try:
            while True:
                batch = self._next_batch()
                try:
                    self._write(db, [o for o in batch if o is not None], sizes)
                    if time.monotonic() >= next_sweep:
                        next_sweep = time.monotonic() + AGE_SWEEP_S
                        sizes = self._sweep_old(db)
                except DatabaseError:
                    # A full disk or a locked file loses these records, never the server.
                    log.exception("could not write %d invocation log records", len(batch))
                for o in batch:
                    if isinstance(o, _Flush):
                        o.done.set()
                if batch[-1] is None:
                    return
        finally:
            db.close()

    def _next_batch(self) -> list[_Op | None]:
        """What to write next: the first op waited for, then what came within the batch
        window (a flush or the end cuts the window short).

        The window is slept through, not spent in `get(timeout=)`: a thread blocked in
        `get` is woken by every `put`, so each record of a busy server woke this thread
        and had it take the GIL from the event loop; now a batch costs one wake-up."""
        batch: list[_Op | None] = [self._ops.get()]
        if not isinstance(batch[0], _Flush | None):
            self._urgent.wait(BATCH_WINDOW_S)
        self._urgent.clear()
        while len(batch) < BATCH and not isinstance(batch[-1], _Flush | None):
            try:
                batch.append(self._ops.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, db: Connection, ops: Iterable[_Op], sizes: dict[str, int]) -> None:
        touched: set[str] = set()
        rows: list[tuple[object, ...]] = []  # records to insert, in one executemany

        def insert() -> None:
            if not rows:
                return
            written = db.executemany(INSERT, rows).rowcount
            if written < len(rows):  # another gateway's records took some of these numbers
                self._renumber_taken(db, rows)
            rows.clear()

        db.execute("BEGIN")
        try:
            for op in ops:
                if isinstance(op, _Add):
                    size = len(op.record.log)
                    rows.append((*_row(op.record), size))
                    sizes[op.record.function] = sizes.get(op.record.function, 0) + size
                    touched.add(op.record.function)
                    continue
                insert()  # what came before this op, first
                if isinstance(op, _Note):
                    db.execute(
                        "UPDATE invocation_logs SET log = log || ?, log_size = log_size + ? "
                        "WHERE seq = ? AND function = ?",
                        (op.text, len(op.text), op.seq, op.function),
                    )
                    sizes[op.function] = sizes.get(op.function, 0) + len(op.text)
                elif isinstance(op, _Forget):
                    db.execute("DELETE FROM invocation_logs WHERE function = ?", (op.function,))
                    sizes.pop(op.function, None)
            insert()
            for function in touched:
                if sizes.get(function, 0) > self.retention.bytes_per_function:
                    sizes[function] = self._trim(db, function)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _renumber_taken(db: Connection, rows: list[tuple[object, ...]]) -> None:
        """Write the rows whose number holds another record under the next free numbers."""
        for row in rows:
            found = db.execute(
                "SELECT request_id FROM invocation_logs WHERE seq = ?", (row[0],)
            ).fetchone()
            if found is not None and found[0] != row[3]:
                (top,) = db.execute("SELECT MAX(seq) FROM invocation_logs").fetchone()
                db.execute(INSERT, (int(top) + 1, *row[1:]))
                log.info("log record %s of %s renumbered %d", row[3], row[1], int(top) + 1)

    def _trim(self, db: Connection, function: str) -> int:
        """Drop the oldest records of `function` until it fits TRIM_TO of its byte budget
        (the slack spares a scan of its records at every batch); its size after."""
        budget = int(self.retention.bytes_per_function * TRIM_TO)
        kept = 0
        cutoff = None
        rows = db.execute(
            "SELECT seq, log_size FROM invocation_logs WHERE function = ? ORDER BY seq DESC",
            (function,),
        )
        for seq, size in rows:
            if kept + size > budget:
                cutoff = seq
                break
            kept += size
        if cutoff is not None:
            db.execute(
                "DELETE FROM invocation_logs WHERE function = ? AND seq <= ?", (function, cutoff)
            )
        return kept

    def _sweep_old(self, db: Connection) -> dict[str, int]:
        db.execute(
            "DELETE FROM invocation_logs WHERE started_at < ?",
            (time.time() - self.retention.max_age_s,),
        )
        return dict(
            db.execute("SELECT function, SUM(log_size) FROM invocation_logs GROUP BY function")
        )
