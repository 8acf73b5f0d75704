"""The console's stats (GET /_faasbox/stats and /functions/NAME/stats): what computing them
from the invocation records costs, against reading those records, in one process.

The stores are full: each function holds the default retention (1,000 records), all within the
last hour. The baseline reads every record of every function (LogStore.records, what the
endpoints must do anyway); the figures are the endpoints' computations on top of that read.
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
from faasbox.execution.stats import minute_buckets, summary

DEFAULTS = RuntimeSettings(Path("unused"))  # only its retention defaults are read
TABLE_HEAD = (
    "| functions x records | read all (ms) | `GET /_faasbox/stats` (ms) | ratio "
    "| read one (ms) | `GET .../NAME/stats` (ms) | ratio |\n|---|---|---|---|---|---|---|"
)
STATUSES = ["success"] * 90 + ["error"] * 5 + ["timeout", "crash", "throttled"] * 2


def filled(functions: int, per_function: int, now: float) -> LogStore:
    store = LogStore(per_function, DEFAULTS.log_bytes_per_function)
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


def timed(work: Callable[[], object], rounds: int = 15) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return median(samples) * 1000


def main() -> None:
    now = time.time()
    per = DEFAULTS.log_records_per_function
    rows = []
    for functions in (10, 100):
        store = filled(functions, per, now)
        names = [f"fn-{f}" for f in range(functions)]
        read_all = timed(lambda: [store.records(n, 0, 0) for n in names])  # noqa: B023
        all_stats = timed(lambda: [summary(store.records(n, 0, 0), now, 60) for n in names])  # noqa: B023
        read_one = timed(lambda: store.records("fn-0", 0, 0))  # noqa: B023
        one_stats = timed(lambda: minute_buckets(store.records("fn-0", 0, 0), now, 60))  # noqa: B023
        rows.append(
            f"| {functions} x {per} | {read_all:.2f} | {all_stats:.2f} | "
            f"**{all_stats / read_all:.1f}x** | {read_one:.3f} | {one_stats:.3f} | "
            f"**{one_stats / read_one:.1f}x** |"
        )
    body = f"""What the console's stats cost over reading the records they are computed from.

{TABLE_HEAD}
{chr(10).join(rows)}

In one process, the stores full (the default retention, all records within the hour), median
of 15 runs: "read" is `LogStore.records` of every (or one) function, the endpoint's figure the
same read plus its computation (`summary` per function, or 60 `minute_buckets` with p50/p99),
without HTTP or JSON. The page asks for one of them every 5 seconds while a view that shows
them is open.
Machine: {machine()}.
Command: `.venv/bin/python -m bench.console_stats`"""
    update_section("Console stats", body)
    print(body)


if __name__ == "__main__":
    main()
