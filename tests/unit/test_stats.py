"""Per-minute invocation figures for the console's charts (faasbox/execution/stats.py)."""

from __future__ import annotations

from faasbox.execution.logs import InvocationRecord, LogStore
from faasbox.execution.stats import first_minute, minute_buckets, percentile, summary, window_start

NOW = 1_800_000_030.0  # 30 s into a minute


def record(
    seq: int, started_at: float, status: str = "success", ms: float = 10.0
) -> InvocationRecord:
    return InvocationRecord(
        seq=seq,
        function="f",
        version="$LATEST",
        request_id=f"r{seq}",
        started_at=started_at,
        status=status,
        cold=False,
        duration_ms=ms,
        init_ms=None,
        max_memory_mb=20,
        log="",
    )


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None


def test_buckets_cover_the_window_oldest_first() -> None:
    records = [
        record(1, NOW - 5, ms=10),
        record(2, NOW - 10, ms=30),
        record(3, NOW - 20, status="error", ms=20),
        record(4, NOW - 25, status="throttled", ms=0),
        record(5, NOW - 60, status="timeout", ms=5000),  # the minute before
        record(6, NOW - 3600, ms=1),  # outside a 60-minute window
    ]
    store = LogStore(100, 1 << 20)
    for r in records:
        store.add(r)
    buckets = minute_buckets(store.points("f", window_start(NOW, 60)), NOW, 60)
    assert len(buckets) == 60
    assert buckets[-1].start == 1_800_000_000.0 and buckets[0].start == buckets[-1].start - 59 * 60
    last, before = buckets[-1], buckets[-2]
    # Throttles ran no code: counted apart, not as invocations, no duration.
    assert (last.invocations, last.errors, last.throttles) == (3, 1, 1)
    assert (last.p50_ms, last.p99_ms) == (20, 30)
    assert (before.invocations, before.errors, before.p50_ms) == (1, 1, 5000)
    assert sum(b.invocations for b in buckets) == 4
    assert all(b.p50_ms is None for b in buckets[:-2])


def test_summary_is_the_newest_invocation_and_the_windows_counts() -> None:
    store = LogStore(100, 1 << 20)
    store.add(record(1, NOW - 7200, status="error"))
    store.add(record(2, NOW - 30, status="crash"))
    store.add(record(3, NOW - 25, status="throttled", ms=0))
    window = store.status_counts("f", first_minute(NOW, 60), 60)
    assert window == {"crash": 1, "throttled": 1}  # only the window's minutes
    found = summary(window, store.newest_point("f"))
    # Throttles ran no code: not invocations.
    assert (found.invocations, found.errors) == (1, 1)
    assert (found.last_invocation, found.last_status) == (NOW - 25, "throttled")
    nobody = summary(store.status_counts("nobody", 0, 60), store.newest_point("nobody"))
    assert (nobody.invocations, nobody.last_invocation) == (0, None)


def test_the_lists_window_is_the_charts_minutes() -> None:
    store = LogStore(100, 1 << 20)
    minute_start = NOW - 30  # a whole minute
    for seq, started in enumerate([minute_start - 59 * 60, minute_start - 59 * 60 - 1], 1):
        store.add(record(seq, started))
    counts = store.status_counts("f", first_minute(NOW, 60), 60)
    buckets = minute_buckets(store.points("f", window_start(NOW, 60)), NOW, 60)
    assert counts["success"] == sum(b.invocations for b in buckets) == 1


def test_points_follow_the_stores_retention() -> None:
    store = LogStore(3, 1 << 20)
    for seq in range(1, 6):
        store.add(record(seq, NOW - 60 + seq))
    assert [p[0] for p in store.points("f", 0)] == [NOW - 57, NOW - 56, NOW - 55]
    assert store.points("f", NOW - 56) == [
        (NOW - 56, "success", 10.0),
        (NOW - 55, "success", 10.0),
    ]
    # The dropped records leave the per-minute counts too.
    assert store.status_counts("f", first_minute(NOW, 2), 2) == {"success": 3}
    store.forget("f")
    assert store.points("f", 0) == [] and store.newest_point("f") is None
    assert store.status_counts("f", first_minute(NOW, 2), 2) == {}
