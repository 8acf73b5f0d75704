"""Unit tests of faasbox.execution.logs: per-function invocation records with bounded retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from faasbox.execution.logs import InvocationRecord, LogStore

T = TypeVar("T")


def run(test: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`LogStore.add` notifies followers on the running loop, so tests run inside one."""
    return asyncio.run(test())


def add(store: LogStore, function: str = "f", log: str = "hello\n") -> InvocationRecord:
    record = InvocationRecord(
        seq=store.next_seq(),
        function=function,
        version="$LATEST",
        request_id=f"req-{function}-{len(store.records(function, limit=0))}",
        started_at=time.time(),
        status="success",
        cold=False,
        duration_ms=1.5,
        init_ms=None,
        max_memory_mb=30,
        log=log,
    )
    store.add(record)
    return record


def seqs(records: list[InvocationRecord]) -> list[int]:
    return [r.seq for r in records]


def test_records_come_back_oldest_first() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=10, bytes_per_function=10_000)
        added = [add(store, log=f"line {i}\n") for i in range(3)]
        assert store.records("f") == added
        assert [r.log for r in store.records("f")] == ["line 0\n", "line 1\n", "line 2\n"]

    run(test)


def test_retention_by_count_drops_the_oldest() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=3, bytes_per_function=10_000)
        added = [add(store) for _ in range(5)]
        assert store.records("f") == added[2:]

    run(test)


def test_retention_by_bytes_drops_the_oldest() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=100, bytes_per_function=25)
        first, second = add(store, log="a" * 10), add(store, log="b" * 10)
        assert store.records("f") == [first, second]  # 20 bytes: within budget

        third = add(store, log="c" * 10)  # 30 bytes: the oldest must go
        assert store.records("f") == [second, third]

        big = add(store, log="d" * 20)  # 40 bytes: both older ones go
        assert store.records("f") == [big]

        small = add(store, log="e" * 5)  # exactly 25 bytes: nothing goes
        assert store.records("f") == [big, small]

    run(test)


def test_since_returns_only_newer_records() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=100, bytes_per_function=10_000)
        added = [add(store) for _ in range(4)]
        assert store.records("f", since=added[1].seq) == added[2:]
        assert store.records("f", since=added[-1].seq) == []
        assert store.records("f", since=0) == added

    run(test)


def test_limit_returns_the_newest() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=1000, bytes_per_function=100_000)
        added = [add(store) for _ in range(150)]
        assert store.records("f") == added[-100:]  # the default limit
        assert store.records("f", limit=2) == added[-2:]
        assert store.records("f", since=added[10].seq, limit=0) == added[11:]

    run(test)


def test_functions_are_kept_apart() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=2, bytes_per_function=10_000)
        g = add(store, "g", "from g\n")
        f_records = [add(store, "f", "from f\n") for _ in range(5)]

        assert store.records("g") == [g]  # f's retention did not touch g
        assert store.records("f") == f_records[-2:]
        assert store.records("unknown") == []
        # sequence numbers are global, so one `since` works across functions
        assert seqs(store.records("f")) == sorted(seqs(store.records("f")))
        assert g.seq < f_records[0].seq

        store.forget("f")
        assert store.records("f") == []
        assert store.records("g") == [g]

    run(test)


def test_byte_budget_is_per_function() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=100, bytes_per_function=10)
        f = add(store, "f", "x" * 10)
        g = add(store, "g", "y" * 10)
        assert store.records("f") == [f]
        assert store.records("g") == [g]

    run(test)


def test_a_forgotten_function_starts_a_fresh_budget() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=100, bytes_per_function=10)
        add(store, "f", "x" * 8)
        store.forget("f")
        again = add(store, "f", "y" * 8)  # would exceed 10 bytes had the old one counted
        assert store.records("f") == [again]

    run(test)


def test_wait_for_new_returns_early_when_a_record_is_added() -> None:
    async def test() -> float:
        store = LogStore(records_per_function=10, bytes_per_function=10_000)
        started = time.monotonic()
        waiter = asyncio.create_task(store.wait_for_new(10.0))
        done, _ = await asyncio.wait({waiter}, timeout=0.05)  # it has started, and it waits
        assert not done
        record = add(store)
        await asyncio.wait_for(waiter, 9.0)
        assert store.records("f", since=record.seq - 1) == [record]
        return time.monotonic() - started

    assert run(test) < 9.5  # well before its 10 s timeout


def test_wait_for_new_times_out_quietly() -> None:
    async def test() -> float:
        store = LogStore(records_per_function=10, bytes_per_function=10_000)
        started = time.monotonic()
        await store.wait_for_new(0.1)
        return time.monotonic() - started

    assert 0.09 <= run(test) < 5.0


def test_a_record_serializes_to_a_dict() -> None:
    async def test() -> None:
        store = LogStore(records_per_function=10, bytes_per_function=10_000)
        record = add(store, log="START\nEND\n")
        data = record.to_dict()
        assert data["seq"] == record.seq
        assert data["function"] == "f"
        assert data["log"] == "START\nEND\n"
        assert data["init_ms"] is None
        assert set(data) == {
            "seq",
            "function",
            "version",
            "request_id",
            "started_at",
            "status",
            "cold",
            "duration_ms",
            "init_ms",
            "max_memory_mb",
            "log",
            "trace_id",
        }

    run(test)
