"""The seam between the invoker and the executors: what an executor is given, what it gives
back, and what it must do.

An executor runs the invocations of one kind of runtime (faasbox.execution.runtimes maps each
runtime to its kind): the process executor (worker processes: Python, and any runtime whose
worker is a program), the WebAssembly executor (wasmtime instances in the server). It takes
execution environments from the invoker's one `Budget` and queues callers with its `Queue`
(faasbox.execution.admission), and reports everything a function did wrong as an `Outcome`
(Lambda's error object, faasbox.lambda_.faults), never as an exception; only throttling is
raised (TooManyRequests, a 429). The invoker writes the log record and the REPORT line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from faasbox.execution.body_beside import HttpEventParts

if TYPE_CHECKING:
    from faasbox.execution.admission import Budget
    from faasbox.execution.settings import RuntimeSettings
    from faasbox.registry.models import DeployedFunction


StreamSink = Callable[[bytes], Awaitable[None]]


# Invocation and Outcome are made once per invocation: plain slotted classes (not frozen,
# whose __init__ costs twice as much); nobody changes them after.
@dataclass(slots=True)
class Invocation:
    fn: DeployedFunction
    # The event's JSON, or (from an HTTP route, a binary body) its parts: executors that
    # cannot take them read `payload`, the whole JSON.
    event: bytes | HttpEventParts
    request_id: str
    invoked_arn: str
    client_context: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    # The payload is an API Gateway proxy event from one of faasbox's routes (a wasm
    # function then reads the request's body and answers a proxy response).
    http_event: bool = False
    # InvokeWithResponseStream: where a function that streams its response sends each piece
    # as it is made (the Outcome's payload is then empty on success). Executors whose
    # functions cannot stream ignore it and answer with the whole payload.
    stream: StreamSink | None = None
    # X-Ray's trace header, `_X_AMZN_TRACE_ID` in the function (faasbox.lambda_.tracing).
    trace_id: str | None = None
    # The caller maps the result as an API Gateway proxy response and takes its body decoded
    # beside the rest (Outcome.http_body). Not sent on to the Ray hop, which carries one
    # payload.
    body_beside: bool = False
    _joined: bytes | None = field(default=None, init=False, repr=False)

    @property
    def payload(self) -> bytes:
        """The event's whole JSON (joined once, when an executor asks for it)."""
        event = self.event
        if isinstance(event, bytes):
            return event
        if self._joined is None:
            self._joined = event.joined()
        return self._joined


@dataclass(slots=True)
class Outcome:
    """One invocation as the executor ran it; the invoker makes the result and log of it."""

    status: str  # success | error | timeout | crash
    payload: bytes  # the result; Lambda's error object when status is not success
    output: str  # what the function wrote (and faasbox's error lines), between START and END
    duration_ms: float
    max_memory_mb: int
    cold: bool = False
    init_ms: float | None = None  # the INIT phase, on a cold start
    streamed: bool = False  # the payload went to Invocation.stream as it was made
    # With Invocation.body_beside: a proxy response's body, decoded from its base64 by the
    # worker; `payload` is then the JSON of the response without its `body`.
    http_body: bytes | None = None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live execution environment, alike for every kind (management API, /health)."""

    kind: str  # the executor's
    function: str
    version: str
    busy: bool
    pid: int | None  # None: not a process of its own (a wasm instance)
    started_by: str  # "base"/"preloaded" (zygote forks), "spawn", "wasm"
    invocations: int
    idle_seconds: float
    node: str | None = None  # the cluster node it runs on (Ray); None: this machine

    def to_dict(self) -> dict[str, Any]:
        placed = {"node": self.node} if self.node is not None else {}
        return {
            **placed,
            "kind": self.kind,
            "pid": self.pid,
            "version": self.version,
            "startedBy": self.started_by,
            "busy": self.busy,
            "invocations": self.invocations,
            "idleSeconds": round(self.idle_seconds, 3),
        }


class Executor(Protocol):
    kind: str

    def start(self) -> None:
        """Get ready before the first invocation (zygotes preload); never blocks."""
        ...

    async def invoke(self, invocation: Invocation) -> Outcome:
        """Run one invocation; raises TooManyRequests only."""
        ...

    def provision(self, fn: DeployedFunction) -> None:
        """Keep `fn`'s provisionedConcurrency environments warm, starting them now, and get
        ready for its cold starts (what that means is the executor's: a spare process)."""
        ...

    def drain(self, name: str, keep: DeployedFunction | None = None) -> None:
        """The code of `name` changed (`keep` is what runs now) or it was removed (None): new
        invocations get the new code at once; what runs the old one finishes, then stops.
        Published versions other than `keep`'s are immutable and keep their environments."""
        ...

    def retire(self, name: str, version: str) -> None:
        """That version of `name` gets no more invocations (a deleted published version):
        idle environments stop now, busy ones after their invocation."""
        ...

    def stop_idle(self, name: str) -> int:
        """Stop the idle environments of `name` (the next invocation is cold); how many."""
        ...

    def workers(self, name: str | None = None) -> list[WorkerInfo]:
        """The live environments (of `name`, or all)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for /health: at least `workers` (live) and `busy`."""
        ...

    # Optional: `def nodes(self) -> list[dict[str, Any]]`, the machines an executor runs
    # environments on ({"id", "address", "workers"}); one without it runs them on this one.

    def isolation_missing(self) -> list[str]:
        """What keeps this executor's environments from their full isolation on this
        machine (empty: none); `serve` says it loudly and `--require-isolation` refuses."""
        ...

    async def close(self) -> None:
        """Stop every environment; nothing of the executor outlives it."""
        ...


class ExecutorFactory(Protocol):
    def __call__(self, settings: RuntimeSettings, budget: Budget) -> Executor: ...
