"""Invocation metrics in Prometheus's model, the counters Lambda's CloudWatch metrics have.

The invoker records each invocation here (a few counter and histogram updates, from memory);
what is a state rather than an event (workers, requests waiting) is read when /metrics is
scraped (faasbox.gateway.metrics). Every name is prefixed `faasbox_` and labelled with the
function. Each invoker has its own registry: two servers in one process (tests) never mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


@dataclass(frozen=True, slots=True)
class _FunctionMetrics:
    """One function's children of each metric, looked up once (labels() takes a lock)."""

    invocations: Counter
    duration: Histogram
    cold_starts: Counter
    init_duration: Histogram
    throttles: Counter
    concurrent: Gauge


class InvocationMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._invocations = Counter(
            "faasbox_invocations", "Invocations run (throttled ones excluded).", ["function"],
            registry=r,
        )  # fmt: skip
        self._errors = Counter(
            "faasbox_errors",
            "Invocations that ended in a function error, by status (error, timeout, crash).",
            ["function", "status"],
            registry=r,
        )
        self._throttles = Counter(
            "faasbox_throttles", "Invocations refused with 429 (no worker free in time).",
            ["function"], registry=r,
        )  # fmt: skip
        self._duration = Histogram(
            "faasbox_duration_seconds", "Handler duration, as in the REPORT line.", ["function"],
            buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self._cold_starts = Counter(
            "faasbox_cold_starts", "Invocations that started a new environment.", ["function"],
            registry=r,
        )  # fmt: skip
        self._init_duration = Histogram(
            "faasbox_init_duration_seconds", "INIT phase of cold starts (Init Duration).",
            ["function"], buckets=INIT_BUCKETS, registry=r,
        )  # fmt: skip
        self._concurrent = Gauge(
            "faasbox_concurrent_executions", "Invocations in flight (running or waiting).",
            ["function"], registry=r,
        )  # fmt: skip
        self._by_function: dict[str, _FunctionMetrics] = {}

    def of(self, function: str) -> _FunctionMetrics:
        found = self._by_function.get(function)
        if found is None:
            found = self._by_function[function] = _FunctionMetrics(
                self._invocations.labels(function),
                self._duration.labels(function),
                self._cold_starts.labels(function),
                self._init_duration.labels(function),
                self._throttles.labels(function),
                self._concurrent.labels(function),
            )
        return found

    def finished(
        self, function: str, status: str, duration_ms: float, cold: bool, init_ms: float | None
    ) -> None:
        m = self.of(function)
        m.invocations.inc()
        m.duration.observe(duration_ms / 1000)
        if status != "success":
            self._errors.labels(function, status).inc()
        if cold:
            m.cold_starts.inc()
            if init_ms is not None:
                m.init_duration.observe(init_ms / 1000)

    def add_state(
        self,
        workers: Callable[[], Iterable[WorkerInfo]],
        waiting: Callable[[], dict[str, int]],
    ) -> None:
        """Read the live environments and the waiting requests at each scrape."""
        self.registry.register(_StateCollector(workers, waiting))


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
