"""Unit tests of faasbox.execution.log_db and the log store over it: records that last,
bounded by size and age, searched by time and text (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator

import pytest

from faasbox.execution.log_db import LogDatabase, Retention
from faasbox.execution.logs import InvocationRecord, LogStore
from faasbox.storage import Database

WEEK = 7 * 86400.0


@pytest.fixture
def db_path(database: Database) -> Database:
    """The database, on each backend (the conftest fixture; named as the file it once was)."""
    return database


@pytest.fixture
def logdb(db_path: Database) -> Iterator[LogDatabase]:
    db = LogDatabase(db_path, Retention(bytes_per_function=1 << 20, max_age_s=WEEK))
    yield db
    db.close()


def record(
    seq: int, function: str = "f", log: str = "hello\n", started_at: float | None = None
) -> InvocationRecord:
    return InvocationRecord(
        seq=seq,
        function=function,
        version="$LATEST",
        request_id=f"req-{seq}",
        started_at=time.time() if started_at is None else started_at,
        status="success",
        cold=seq == 1,
        duration_ms=1.5,
        init_ms=12.0 if seq == 1 else None,
        max_memory_mb=30,
        log=log,
        trace_id=f"Root=1-00000000-{seq:024x}",
    )


def test_records_are_written_and_read_back_whole(logdb: LogDatabase) -> None:
    written = [record(1), record(2, log="two\n"), record(3, function="g")]
    for r in written:
        logdb.add(r)
    assert logdb.flush()
    assert logdb.query("f") == written[:2]
    assert logdb.query("g") == written[2:]
    assert logdb.last_seq() == 3
    assert sorted(logdb.functions()) == ["f", "g"]


def test_query_by_since_start_time_text_and_limit(logdb: LogDatabase) -> None:
    now = time.time()
    for seq in range(1, 6):
        logdb.add(record(seq, log=f"line {seq} {'odd' if seq % 2 else 'even'}\n",
                            started_at=now - 100 + seq * 10))  # fmt: skip
    logdb.flush()
    seqs = lambda found: [r.seq for r in found]  # noqa: E731
    assert seqs(logdb.query("f", since=3)) == [4, 5]
    assert seqs(logdb.query("f", start_time=now - 70)) == [3, 4, 5]
    assert seqs(logdb.query("f", text="odd")) == [1, 3, 5]
    assert seqs(logdb.query("f", text="ODD")) == []  # case-sensitive, as CloudWatch's
    assert seqs(logdb.query("f", limit=2)) == [4, 5]  # the newest, oldest first
    assert seqs(logdb.query("f", text="odd", start_time=now - 80, limit=1)) == [5]


def test_each_function_keeps_what_fits_its_byte_budget(db_path: Database) -> None:
    db = LogDatabase(db_path, Retention(bytes_per_function=1000, max_age_s=WEEK))
    try:
        for seq in range(1, 11):
            db.add(record(seq, log="x" * 300))
        db.add(record(11, function="other", log="y" * 300))
        db.flush()
        # 300 bytes each; over 1000, trimmed to 90% of it: the newest three are left.
        assert [r.seq for r in db.query("f")] == [8, 9, 10]
        assert [r.seq for r in db.query("other")] == [11]
    finally:
        db.close()


def test_records_past_the_retention_age_are_dropped(db_path: Database) -> None:
    db = LogDatabase(db_path, Retention(bytes_per_function=1 << 20, max_age_s=3600))
    try:
        db.add(record(1, started_at=time.time() - 7200))
        db.add(record(2))
        db.flush()
        assert [r.seq for r in db.query("f")] == [2]
    finally:
        db.close()


def test_notes_and_forgetting(logdb: LogDatabase) -> None:
    logdb.add(record(1))
    logdb.append_note(1, "f", "API Gateway: a note\n")
    logdb.add(record(2, function="g"))
    logdb.forget("g")
    logdb.flush()
    assert logdb.query("f")[0].log == "hello\nAPI Gateway: a note\n"
    assert logdb.query("g") == []


def test_a_log_store_over_a_database_survives_a_restart(db_path: Database) -> None:
    async def first_life() -> list[InvocationRecord]:
        store = LogStore(10, 10_000, LogDatabase(db_path, Retention(1 << 20, WEEK)))
        added = [record(store.next_seq(), log=f"run {i}\n") for i in range(3)]
        for r in added:
            store.add(r)
        store.append_note("f", added[-1].request_id, "noted")
        store.close()
        return added

    async def second_life() -> None:
        store = LogStore(2, 10_000, LogDatabase(db_path, Retention(1 << 20, WEEK)))
        try:
            # Memory holds the newest (its own bound); the logdb has them all.
            assert [r.log for r in store.records("f", limit=0)] == ["run 1\n", "run 2\nnoted\n"]
            seqs = [r.seq for r in added]
            assert [r.seq for r in store.search("f", limit=0)] == seqs
            assert seqs == sorted(set(seqs))
            assert store.search("f", text="run 0")[0].trace_id == added[0].trace_id
            # Sequence numbers go on after the stored ones.
            assert store.next_seq() > seqs[-1]
            assert store.last_seq("f") == seqs[-1]
        finally:
            store.close()

    added = asyncio.run(first_life())
    asyncio.run(second_life())


def test_search_sees_records_not_written_yet(db_path: Database) -> None:
    async def test() -> None:
        store = LogStore(10, 10_000, LogDatabase(db_path, Retention(1 << 20, WEEK)))
        try:
            store.add(record(store.next_seq(), log="fresh\n"))
            # Whether or not the writer got to it, a search finds it (memory has it).
            assert [r.log for r in store.search("f", text="fresh")] == ["fresh\n"]
        finally:
            store.close()

    asyncio.run(test())


def test_two_gateways_writing_the_same_numbers_lose_no_record(db_path: Database) -> None:
    """Two gateways' log stores on one database; records of both with the same sequence
    numbers (made in the same microsecond): both are kept, each under its own number."""
    a = LogDatabase(db_path, Retention(1 << 20, WEEK))
    b = LogDatabase(db_path, Retention(1 << 20, WEEK))
    try:
        for seq in (1, 2, 3):
            a.add(record(seq, log=f"from a {seq}\n"))
        assert a.flush()
        for seq in (2, 3, 4):
            b.add(dataclasses.replace(record(seq, log=f"from b {seq}\n"), request_id=f"b-{seq}"))
        assert b.flush()
        found = a.query("f", limit=0)
        assert sorted(r.log for r in found) == sorted(
            [f"from a {n}\n" for n in (1, 2, 3)] + [f"from b {n}\n" for n in (2, 3, 4)]
        )
        assert len({r.seq for r in found}) == 6
        # What each gateway wrote with a free number kept it.
        assert {r.seq: r.log for r in found}[4] == "from b 4\n"
    finally:
        a.close()
        b.close()
