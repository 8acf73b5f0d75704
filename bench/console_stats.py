"""The console's stats (GET /_faasbox/stats and /functions/NAME/stats), in one process: what
the endpoints compute now (LogStore.status_counts per minute for the list, LogStore.points of
the window for the charts) against what they did before (every record through
LogStore.records, then the same figures), in the same run.

The stores are full: each function holds the default retention (1,000 records), all within the
last hour, so the window holds every record: the worst case for the new query.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import median
from bench.results import machine, update_section
from faasbox.execution.logs import InvocationRecord, LogStore
from faasbox.execution.settings import RuntimeSettings
from faasbox.execution.stats import (
    ERROR_STATUSES,
    THROTTLED,
    first_minute,
    minute_buckets,
    summary,
    window_start,
)

DEFAULTS = RuntimeSettings(Path("unused"))  # only its retention defaults are read
TABLE_HEAD = (
    "| functions x records | `GET /_faasbox/stats` before (ms) | after (ms) | after / before "
    "| `GET .../NAME/stats` before (ms) | after (ms) | after / before |"
    "\n|---|---|---|---|---|---|---|"
)
STATUSES = ["success"] * 90 + ["error"] * 5 + ["timeout", "crash", "throttled"] * 2


def filled(functions: int, per_function: int, now: float) -> LogStore:
    # The byte budget grows with the count, so a raised retention keeps every record.
    scale = max(1, per_function // DEFAULTS.log_records_per_function)
    store = LogStore(per_function, DEFAULTS.log_bytes_per_function * scale)
    rng = random.Random(1)
    for f in range(functions):
        for n in range(per_function):
            store.add(
                InvocationRecord(
                    seq=store.next_seq(),
                    function=f"fn-{f}",
                    version="$LATEST",
                    request_id=f"{f}-{n}",
                    started_at=now - 3600 + 3600 * n / per_function,
                    status=rng.choice(STATUSES),
                    cold=n == 0,
                    duration_ms=rng.lognormvariate(2, 1),
                    init_ms=None,
                    max_memory_mb=30,
                    log="START\nEND\nREPORT\n",
                )
            )
    return store


def summary_before(store: LogStore, name: str, now: float, minutes: int) -> tuple[object, ...]:
    """The list view's row as it was computed before LogStore.points: from every record."""
    records = store.records(name, 0, 0)
    since = now - minutes * 60
    statuses = [r.status for r in records if r.started_at >= since]
    errors = sum(statuses.count(status) for status in ERROR_STATUSES)
    newest = max(records, key=lambda r: r.started_at, default=None)
    return len(statuses) - statuses.count(THROTTLED), errors, newest


def buckets_before(store: LogStore, name: str, now: float) -> object:
    points = [(r.started_at, r.status, r.duration_ms) for r in store.records(name, 0, 0)]
    return minute_buckets(points, now, 60)


def timed(work: Callable[[], object], rounds: int = 15) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return median(samples) * 1000


def main() -> None:
    now = time.time()
    default = DEFAULTS.log_records_per_function
    rows = []
    # The last case raises the retention tenfold: the same 100,000 records in 10 functions.
    for functions, per in ((10, default), (100, default), (10, default * 10)):
        store = filled(functions, per, now)
        names = [f"fn-{f}" for f in range(functions)]
        before_all = timed(lambda: [summary_before(store, n, now, 60) for n in names])  # noqa: B023
        first = first_minute(now, 60)
        after_all = timed(
            lambda: [
                summary(store.status_counts(n, first, 60), store.newest_point(n))  # noqa: B023
                for n in names  # noqa: B023
            ]
        )
        before_one = timed(lambda: buckets_before(store, "fn-0", now))  # noqa: B023
        after_one = timed(
            lambda: minute_buckets(store.points("fn-0", window_start(now, 60)), now, 60)  # noqa: B023
        )
        rows.append(
            f"| {functions} x {per} | {before_all:.2f} | {after_all:.2f} | "
            f"**{after_all / before_all:.2f}x** | {before_one:.3f} | {after_one:.3f} | "
            f"**{after_one / before_one:.2f}x** |"
        )
    body = f"""What the console's stats cost to compute, before and after their own queries of the
LogStore (`status_counts` for the list, `points` for a function's charts).

{TABLE_HEAD}
{chr(10).join(rows)}

In one process, the stores full (the default retention, then ten times it in the last row;
all records within the hour, so the window holds them all), median of 15 runs, without HTTP
or JSON. "before": every record through `LogStore.records`, then the figures (the previous
`summary` per function, or 60 `minute_buckets` with p50/p99 fed each record's three
fields); "after": for the list, `LogStore.status_counts` (per-minute status counts kept as
records come and go: one step per minute of the window, whatever the records) and
`LogStore.newest_point`; for one function's charts, `LogStore.points` of the window (start,
status, duration tuples kept beside the records), then the same buckets. Both read memory
only (no database), so they run on the event loop. The page asks for one of them every 5
seconds while a view that shows them is open. Keeping the tuple and the minute's count costs
each invocation about 1.4 us more in `LogStore.add` (a one-off comparison with the previous
module, best of 15 runs: 1.2 us before, 2.6 us after).
Machine: {machine()}.
Command: `.venv/bin/python -m bench.console_stats`"""
    update_section("Console stats", body)
    print(body)


if __name__ == "__main__":
    main()
