"""Per-minute figures of a function's invocations, computed from its invocation records.

The console's charts show, for each minute of the last hour: invocations, errors, throttles
and the p50/p99 duration, as Lambda's CloudWatch metrics name them (Errors counts function
errors, timeouts and crashes; Throttles the invocations refused for want of capacity, which
ran no code and so have no duration). Computed on demand from whatever records the LogStore
still holds in memory (it is bounded per function), so a minute older than the retained
records reads as empty. They read the LogStore's StatPoints (start, status, duration) of the
window only, never the records' log text.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from faasbox.execution.logs import StatPoint

ERROR_STATUSES = frozenset({"error", "timeout", "crash"})
THROTTLED = "throttled"
MAX_MINUTES = 24 * 60


@dataclass(frozen=True)
class MinuteBucket:
    start: float  # epoch seconds, a whole minute
    invocations: int
    errors: int
    throttles: int
    p50_ms: float | None
    p99_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "invocations": self.invocations,
            "errors": self.errors,
            "throttles": self.throttles,
            "p50Ms": self.p50_ms,
            "p99Ms": self.p99_ms,
        }


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (CloudWatch's pNN of a small sample): the smallest value
    with at least `fraction` of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def first_minute(now: float, minutes: int) -> int:
    """The epoch minute (seconds // 60) of the first of `minutes` whole minutes ending with
    `now`'s: the window of the charts and of the list view's counts."""
    return math.floor(now / 60) - (minutes - 1)


def window_start(now: float, minutes: int) -> float:
    """The start (epoch seconds) of that window's first minute."""
    return first_minute(now, minutes) * 60.0


def minute_buckets(points: Iterable[StatPoint], now: float, minutes: int) -> list[MinuteBucket]:
    """`minutes` buckets, oldest first, the last one the minute that holds `now`."""
    first = window_start(now, minutes)
    durations: list[list[float]] = [[] for _ in range(minutes)]
    errors = [0] * minutes
    throttles = [0] * minutes
    for started_at, status, duration_ms in points:
        index = int((started_at - first) // 60)
        if not 0 <= index < minutes:
            continue
        if status == THROTTLED:
            throttles[index] += 1
            continue
        durations[index].append(duration_ms)
        if status in ERROR_STATUSES:
            errors[index] += 1
    buckets = []
    for index in range(minutes):
        values = sorted(durations[index])
        buckets.append(
            MinuteBucket(
                start=first + index * 60,
                invocations=len(values),
                errors=errors[index],
                throttles=throttles[index],
                p50_ms=percentile(values, 0.50),
                p99_ms=percentile(values, 0.99),
            )
        )
    return buckets


@dataclass(frozen=True)
class Summary:
    """A function's row in the console's list: its newest invocation and the window's counts."""

    invocations: int
    errors: int
    last_invocation: float | None
    last_status: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "errors": self.errors,
            "lastInvocation": self.last_invocation,
            "lastStatus": self.last_status,
        }


def summary(statuses: Counter[str], newest: StatPoint | None) -> Summary:
    """`statuses`: the window's records by status (LogStore.status_counts over its whole
    minutes, the charts' minutes); `newest`: the function's last record's, which may be
    older than the window."""
    errors = sum(statuses[status] for status in ERROR_STATUSES)
    return Summary(
        statuses.total() - statuses[THROTTLED],
        errors,
        newest[0] if newest else None,
        newest[1] if newest else None,
    )
