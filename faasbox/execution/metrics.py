"""Invocation metrics in Prometheus's model, the counters Lambda's CloudWatch metrics have.

The invoker records each invocation here (a few counter and histogram updates, from memory);
what is a state rather than an event (workers, requests waiting) is read when /metrics is
scraped (faasbox.gateway.metrics). Every name is prefixed `faasbox_` and labelled with the
function. Each invoker has its own registry: two servers in one process (tests) never mix.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from faasbox.execution.api import WorkerInfo

# Seconds: from a warm hello (well under a millisecond) to Lambda's 900 s timeout.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
# No `_created` series: a scrape reads what moved, not when each series was first seen.
disable_created_metrics()  # type: ignore[no-untyped-call]

INIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Histogram:
    """A histogram's counts as plain numbers: one bucket index and three additions per
    observation, where prometheus-client's takes a lock per field."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, as the text format has them, `le` as prometheus-client writes it."""
        total, out = 0, []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += count
            out.append((floatToGoString(bound), float(total)))  # type: ignore[no-untyped-call]
        return out


class _FunctionMetrics:
    """One function's figures, plain numbers the invoker adds to: read only at a scrape."""

    __slots__ = (
        "cold_starts", "concurrent", "duration", "init_duration", "invocations", "throttles",
    )  # fmt: skip

    def __init__(self) -> None:
        self.invocations = 0
        self.throttles = 0
        self.duration = _Histogram(DURATION_BUCKETS)
        self.cold_starts = 0
        self.init_duration = _Histogram(INIT_BUCKETS)
        self.concurrent = 0  # in flight now


class InvocationMetrics:
    """The invoker's metrics. Updated on the event loop per invocation, so they are plain
    numbers (a prometheus-client child's `inc` takes a lock: ~1 µs each, 5-6 per
    invocation); `_InvocationCollector` writes them in the same series and order as the
    Counter, Histogram and Gauge families they stand for."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._by_function: dict[str, _FunctionMetrics] = {}
        # (function, status) -> count, in the order each first occurred.
        self._errors: dict[tuple[str, str], int] = {}
        self.registry.register(_InvocationCollector(self._by_function, self._errors))

    def of(self, function: str) -> _FunctionMetrics:
        found = self._by_function.get(function)
        if found is None:
            found = self._by_function[function] = _FunctionMetrics()
        return found

    def finished(
        self, function: str, status: str, duration_ms: float, cold: bool, init_ms: float | None
    ) -> None:
        m = self._by_function.get(function) or self.of(function)
        m.invocations += 1
        m.duration.observe(duration_ms / 1000)
        if status != "success":
            key = (function, status)
            self._errors[key] = self._errors.get(key, 0) + 1
        if cold:
            m.cold_starts += 1
            if init_ms is not None:
                m.init_duration.observe(init_ms / 1000)

    def add_state(
        self,
        workers: Callable[[], Iterable[WorkerInfo]],
        waiting: Callable[[], dict[str, int]],
    ) -> None:
        """Read the live environments and the waiting requests at each scrape."""
        self.registry.register(_StateCollector(workers, waiting))


class _InvocationCollector(Collector):
    def __init__(
        self, by_function: dict[str, _FunctionMetrics], errors: dict[tuple[str, str], int]
    ) -> None:
        self._by_function = by_function
        self._errors = errors

    def describe(self) -> Iterable[Metric]:
        return []  # described by collecting, as _StateCollector

    def collect(self) -> Iterator[Metric]:
        functions = list(self._by_function.items())  # in the order they were first seen
        invocations = CounterMetricFamily(
            "faasbox_invocations", "Invocations run (throttled ones excluded).",
            labels=["function"],
        )  # fmt: skip
        errors = CounterMetricFamily(
            "faasbox_errors",
            "Invocations that ended in a function error, by status (error, timeout, crash).",
            labels=["function", "status"],
        )
        throttles = CounterMetricFamily(
            "faasbox_throttles", "Invocations refused with 429 (no worker free in time).",
            labels=["function"],
        )  # fmt: skip
        duration = HistogramMetricFamily(
            "faasbox_duration_seconds", "Handler duration, as in the REPORT line.",
            labels=["function"],
        )  # fmt: skip
        cold_starts = CounterMetricFamily(
            "faasbox_cold_starts", "Invocations that started a new environment.",
            labels=["function"],
        )  # fmt: skip
        init_duration = HistogramMetricFamily(
            "faasbox_init_duration_seconds", "INIT phase of cold starts (Init Duration).",
            labels=["function"],
        )  # fmt: skip
        concurrent = GaugeMetricFamily(
            "faasbox_concurrent_executions", "Invocations in flight (running or waiting).",
            labels=["function"],
        )  # fmt: skip
        for name, m in functions:
            invocations.add_metric([name], float(m.invocations))
            throttles.add_metric([name], float(m.throttles))
            duration.add_metric([name], m.duration.buckets(), m.duration.sum)
            cold_starts.add_metric([name], float(m.cold_starts))
            init_duration.add_metric([name], m.init_duration.buckets(), m.init_duration.sum)
            concurrent.add_metric([name], float(m.concurrent))
        for (name, status), n in list(self._errors.items()):
            errors.add_metric([name, status], float(n))
        yield from (invocations, errors, throttles, duration, cold_starts, init_duration)
        yield concurrent


class _StateCollector(Collector):
    def __init__(
        self,
        workers: Callable[[], Iterable[WorkerInfo]],
        waiting: Callable[[], dict[str, int]],
    ) -> None:
        self._workers = workers
        self._waiting = waiting

    def describe(self) -> Iterable[Metric]:
        return []  # its series come and go with the functions: described by collecting

    def collect(self) -> Iterator[Metric]:
        workers = GaugeMetricFamily(
            "faasbox_workers",
            "Live execution environments, by function, executor and state (busy, idle).",
            labels=["function", "executor", "state"],
        )
        counts: dict[tuple[str, str, str], int] = {}
        for w in self._workers():
            key = (w.function, w.kind, "busy" if w.busy else "idle")
            counts[key] = counts.get(key, 0) + 1
        for labels, count in sorted(counts.items()):
            workers.add_metric(list(labels), count)
        yield workers
        queue = GaugeMetricFamily(
            "faasbox_queue_depth",
            "Requests waiting for a worker of the function (a 429 after the queue timeout).",
            labels=["function"],
        )
        for function, depth in sorted(self._waiting().items()):
            queue.add_metric([function], depth)
        yield queue
