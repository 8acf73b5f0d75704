"""The invoker: one invocation of any function, and everything the gateway asks of the executors.

It holds one executor per kind (faasbox.execution.api.Executor; the runtime registry says which
kind runs a function, and each is created at its first use), the one global worker budget they
all take environments from (faasbox.execution.admission), the log store (it writes each
invocation's record: START/END/REPORT, or Lambda's JSON records) and the metrics
(faasbox.execution.metrics); every invocation carries the request's trace id. It knows no
runtime: the gateway, the management API and the CLI talk to it, never to an executor or a
pool.

Everything a function can do wrong (raise, time out, exceed its memory, crash) ends here as an
`InvocationResult` with Lambda's error object, never as an exception: on Lambda these are
200 responses with X-Amz-Function-Error. Only throttling (429) is raised, as on Lambda.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from faasbox.errors import TooManyRequests
from faasbox.execution import runtimes
from faasbox.execution.admission import Budget
from faasbox.execution.api import (
    Executor,
    ExecutorFactory,
    Invocation,
    Outcome,
    StreamSink,
    WorkerInfo,
)
from faasbox.execution.body_beside import HttpEventParts
from faasbox.execution.log_db import LogDatabase, Retention
from faasbox.execution.logs import InvocationRecord, LogStore
from faasbox.execution.metrics import InvocationMetrics
from faasbox.execution.settings import RuntimeSettings
from faasbox.lambda_ import ids
from faasbox.lambda_.log_format import is_json, json_invocation_log
from faasbox.lambda_.report import invocation_log
from faasbox.lambda_.tracing import current_trace, new_trace_id
from faasbox.registry.models import DeployedFunction
from faasbox.storage import Database


@dataclass(slots=True)  # one per invocation: not frozen, as InvocationRecord
class InvocationResult:
    request_id: str
    version: str
    payload: bytes  # the handler's result as JSON, or Lambda's error object
    function_error: str | None  # "Unhandled" when the payload is an error
    status: str  # success | error | timeout | crash
    log: str
    duration_ms: float
    max_memory_mb: int
    cold: bool
    init_ms: float | None
    streamed: bool = False  # the payload went to the caller's stream sink as it was made
    trace_id: str | None = None  # what the function saw as _X_AMZN_TRACE_ID
    # invoke(body_beside=True): the proxy response's body, decoded; `payload` is the rest
    http_body: bytes | None = None

    @property
    def error_type(self) -> str | None:
        if self.function_error is None:
            return None
        try:
            return str(json.loads(self.payload).get("errorType"))
        except (ValueError, AttributeError):
            return None


def log_database(settings: RuntimeSettings) -> LogDatabase:
    """Invocation logs go to the registry's database, in their own table."""
    return LogDatabase(
        Database.open(settings.database, settings.data_dir),
        Retention(settings.log_retention_bytes, settings.log_retention_s),
    )


class Invoker:
    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.budget = Budget(settings.max_workers, settings.max_live_workers)
        self.logs = LogStore(
            settings.log_records_per_function,
            settings.log_bytes_per_function,
            log_database(settings) if settings.persist_logs else None,
        )
        self.metrics = InvocationMetrics()
        self.metrics.add_state(self.workers, self.waiting)
        self._in_flight: dict[str, int] = {}  # invocations of each function not finished yet
        self._executors: dict[str, Executor] = {}
        self._by_runtime: dict[str, Executor] = {}  # runtime name -> its kind's executor
        self._started = False

    def executor(self, kind: str) -> Executor:
        """The executor of `kind` (a key of runtimes.EXECUTORS), created at its first use:
        wasmtime, say, loads only when a WebAssembly function is invoked."""
        executor = self._executors.get(kind)
        if executor is None:
            on_ray = self.settings.ray_address is not None
            module, _, name = runtimes.executor_class(kind, on_ray).rpartition(":")
            factory: ExecutorFactory = getattr(importlib.import_module(module), name)
            executor = self._executors[kind] = factory(self.settings, self.budget)
            if self._started:
                executor.start()
        return executor

    def executor_for(self, fn: DeployedFunction) -> Executor:
        executor = self._by_runtime.get(fn.config.runtime)
        if executor is None:
            executor = self.executor(runtimes.executor_kind(fn.config.runtime))
            self._by_runtime[fn.config.runtime] = executor
        return executor

    async def invoke(
        self,
        fn: DeployedFunction,
        payload: bytes | HttpEventParts,
        *,
        request_id: str | None = None,
        invoked_arn: str | None = None,
        client_context: dict[str, Any] | None = None,
        identity: dict[str, Any] | None = None,
        http_event: bool = False,
        stream: StreamSink | None = None,
        trace_id: str | None = None,
        body_beside: bool = False,
    ) -> InvocationResult:
        """`http_event`: the payload is an API Gateway proxy event from one of faasbox's
        routes (a wasm function then reads the request body and answers a proxy response).
        `stream`: InvokeWithResponseStream's sink for a response streamed as it is made (the
        result's payload is then empty and `streamed` true). `trace_id`: by default the
        request's (faasbox.lambda_.tracing), or a new one. `payload` as parts, and
        `body_beside`: faasbox.execution.body_beside (the gateway's binary path)."""
        request_id = request_id or ids.uuid4()
        trace_id = trace_id or current_trace.get() or new_trace_id()
        started_at = time.time()
        executor = self._by_runtime.get(fn.config.runtime) or self.executor_for(fn)
        in_flight = self._in_flight
        metrics = self.metrics.of(fn.name)
        in_flight[fn.name] = in_flight.get(fn.name, 0) + 1
        metrics.concurrent += 1
        try:
            outcome = await executor.invoke(
                Invocation(
                    fn,
                    payload,
                    request_id,
                    invoked_arn or fn.arn,
                    client_context,
                    identity,
                    http_event,
                    stream,
                    trace_id,
                    body_beside,
                )
            )
        except TooManyRequests:
            metrics.throttles += 1
            raise
        finally:
            in_flight[fn.name] -= 1
            metrics.concurrent -= 1
        return self._finish(fn, request_id, trace_id, started_at, outcome)

    def waiting(self) -> dict[str, int]:
        """Invocations of each function that no environment runs yet: queued for a busy
        one, or waiting for a cold start."""
        busy: dict[str, int] = {}
        for w in self.workers():
            if w.busy:
                busy[w.function] = busy.get(w.function, 0) + 1
        return {name: max(0, n - busy.get(name, 0)) for name, n in self._in_flight.items()}

    def _finish(
        self,
        fn: DeployedFunction,
        request_id: str,
        trace_id: str,
        started_at: float,
        outcome: Outcome,
    ) -> InvocationResult:
        cfg = fn.config
        if is_json(cfg.logging_config):
            # platform.start when the handler started (after a cold start's INIT), so the
            # records' times are in the order of the function's own.
            log = json_invocation_log(
                cfg.logging_config,
                time.time() - outcome.duration_ms / 1000,
                request_id,
                fn.version,
                outcome.output,
                outcome.status,
                outcome.duration_ms,
                cfg.memory_size,
                outcome.max_memory_mb,
                outcome.init_ms,
            )
        else:
            log = invocation_log(
                request_id,
                fn.version,
                outcome.output,
                outcome.duration_ms,
                cfg.memory_size,
                outcome.max_memory_mb,
                outcome.init_ms,
            )
        self.metrics.finished(
            fn.name, outcome.status, outcome.duration_ms, outcome.cold, outcome.init_ms
        )
        self.logs.add(
            InvocationRecord(
                seq=self.logs.next_seq(),
                function=fn.name,
                version=fn.version,
                request_id=request_id,
                started_at=started_at,
                status=outcome.status,
                cold=outcome.cold,
                duration_ms=outcome.duration_ms,
                init_ms=outcome.init_ms,
                max_memory_mb=outcome.max_memory_mb,
                log=log,
                trace_id=trace_id,
            )
        )
        return InvocationResult(
            request_id=request_id,
            version=fn.version,
            payload=outcome.payload,
            function_error=None if outcome.status == "success" else "Unhandled",
            status=outcome.status,
            log=log,
            duration_ms=outcome.duration_ms,
            max_memory_mb=outcome.max_memory_mb,
            cold=outcome.cold,
            init_ms=outcome.init_ms,
            streamed=outcome.streamed,
            trace_id=trace_id,
            http_body=outcome.http_body,
        )

    # -- what the gateway asks of the executors ------------------------------------------------

    def start(self, functions: Iterable[DeployedFunction] = ()) -> None:
        """At server start: the executors that prepare ahead (zygotes) start, and `functions`
        get their provisioned environments."""
        self._started = True
        for kind in runtimes.EAGER_EXECUTORS:
            self.executor(kind)
        for executor in list(self._executors.values()):
            executor.start()
        for fn in functions:
            self.provision(fn)

    def provision(self, fn: DeployedFunction) -> None:
        """`fn` was deployed: its provisioned environments start, and an executor already
        running gets ready for its cold starts (a spare Node.js process, say); none is
        created for it (wasmtime loads at the first WebAssembly invocation)."""
        kind = runtimes.executor_kind(fn.config.runtime)
        if fn.config.provisioned_concurrency or kind in self._executors:
            self.executor_for(fn).provision(fn)

    def drain(self, name: str, keep: DeployedFunction | None = None) -> None:
        """`name` was redeployed (`keep` runs now) or removed: see Executor.drain."""
        for executor in self._executors.values():
            executor.drain(name, keep)

    def retire(self, name: str, version: str) -> None:
        """That version of `name` is gone: see Executor.retire."""
        for executor in self._executors.values():
            executor.retire(name, version)

    def stop_idle(self, name: str) -> int:
        return sum(executor.stop_idle(name) for executor in self._executors.values())

    def workers(self, name: str | None = None) -> list[WorkerInfo]:
        return [w for executor in self._executors.values() for w in executor.workers(name)]

    def isolation_missing(self) -> list[str]:
        """What keeps functions from their isolation here (the eager executors', whose
        environments are processes), for `serve`'s warning and --require-isolation."""
        return [
            m for kind in runtimes.EAGER_EXECUTORS for m in self.executor(kind).isolation_missing()
        ]

    def stats(self) -> dict[str, Any]:
        """For /health: live and busy environments of every executor, against the budget,
        and the nodes they run on."""
        executors = {kind: e.stats() for kind, e in self._executors.items()}
        return {
            "workers": sum(s["workers"] for s in executors.values()),
            "busy": sum(s["busy"] for s in executors.values()),
            "maxWorkers": self.budget.concurrency,
            "maxLiveWorkers": self.budget.live_limit,
            "executors": executors,
            "nodes": self.nodes(),
        }

    def nodes(self) -> list[dict[str, Any]]:
        """The machines environments run on: this one (what the executors without nodes of
        their own run here), and those of an executor that has nodes (Ray's)."""
        local = 0
        nodes: list[dict[str, Any]] = []
        for executor in self._executors.values():
            placed = getattr(executor, "nodes", None)
            if placed is None:
                local += executor.stats()["workers"]
            else:
                nodes += placed()
        if local or not nodes:
            nodes.insert(0, {"id": "local", "address": socket.gethostname(), "workers": local})
        return nodes

    async def close(self) -> None:
        self.budget.closing = True
        for executor in reversed(list(self._executors.values())):
            await executor.close()
        await asyncio.to_thread(self.logs.close)
