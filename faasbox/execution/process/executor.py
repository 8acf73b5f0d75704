"""The process executor: invocations run in worker processes (faasbox.execution.api.Executor).

Every runtime whose registry entry has a `WorkerStart` runs here, in the same jail, limits,
zygote/spare machinery, pools and log capture: a worker is taken from the function's pool
(faasbox.execution.process.pool), the INVOKE frame goes over its control socket, and the
RESULT frame is awaited until the function's timeout (a timer per worker,
`WorkerProcess.invoke_within`; `asyncio.timeout` for a streamed response). A timeout kills the
worker (`Sandbox.Timedout`), a worker that exits mid-invocation is `Runtime.ExitError`, a
result over the sync payload limit `Function.ResponseSizeTooLarge`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

from faasbox.execution import runtimes
from faasbox.execution.admission import Budget
from faasbox.execution.api import Invocation, Outcome, WorkerInfo
from faasbox.execution.body_beside import response_size
from faasbox.execution.process.pool import PoolManager
from faasbox.execution.process.worker_process import WorkerDied, WorkerProcess
from faasbox.execution.settings import RuntimeSettings
from faasbox.lambda_ import faults
from faasbox.lambda_.limits import SYNC_PAYLOAD_LIMIT
from faasbox.registry.models import DeployedFunction


class ProcessExecutor:
    kind = "process"

    def __init__(self, settings: RuntimeSettings, budget: Budget) -> None:
        self.settings = settings
        self.pools = PoolManager(settings, budget)

    def start(self) -> None:
        self.pools.launcher.start()  # the zygotes preload while the server starts

    async def invoke(self, invocation: Invocation) -> Outcome:
        fn = invocation.fn
        pool = self.pools.pool_for(fn)
        worker = pool.take_idle()  # the warm path: no await before the worker has the event
        init = None
        if worker is None:
            lease = await pool.acquire()  # raises TooManyRequests
            worker, init = lease.worker, lease.init
        if init is None and worker.fresh_init is not None:
            init = worker.fresh_init  # its first invocation: it reports the cold start
        worker.fresh_init = None
        init_ms = init.init_ms if init is not None else None
        request_id = invocation.request_id
        if init is not None and init.error is not None:
            output = worker.take_log()
            pool.release(worker, healthy=False)
            error = dict(init.error)
            if names_request(fn):
                error["requestId"] = request_id
                error.setdefault("stackTrace", [])
            return Outcome(
                "error", json.dumps(error).encode(), output, 0.0, memory_mb(worker), True, init_ms
            )

        timeout = fn.config.timeout
        header = {
            "request_id": request_id,
            "deadline_ms": int((time.time() + timeout) * 1000),
            "invoked_arn": invocation.invoked_arn,
            "client_context": invocation.client_context,
            "identity": invocation.identity,
            "trace_id": invocation.trace_id,
        }
        if invocation.stream is not None:
            header["stream"] = True
        event = invocation.event
        beside = b""
        if not takes_body_beside(fn.config.runtime):
            payload = invocation.payload  # the whole JSON, joined if it came in parts
        elif isinstance(event, bytes):
            payload = event
        else:  # the INVOKE frame's body: the rest of the event, then its body
            header["body_at"] = len(event.rest)
            payload, beside = event.rest, event.body
        if invocation.body_beside and takes_body_beside(fn.config.runtime):
            header["body_beside"] = True
        http_body: bytes | None = None
        t0 = time.perf_counter()
        healthy = True
        streamed = False
        extra_log = ""
        pending_output = True
        try:
            if invocation.stream is None:
                result_header, body = await worker.invoke_within(header, payload, timeout, beside)
            else:  # the stream sink's awaits are under the timeout too
                async with asyncio.timeout(timeout):
                    result_header, body = await worker.invoke(
                        header, payload, invocation.stream, beside
                    )
            duration_ms = float(result_header.get("duration_ms", 0.0))
            status = "success" if result_header.get("ok") else "error"
            healthy = not result_header.get("exiting")  # it ends now: never reuse it
            worker.reported_memory_kb = int(result_header.get("max_memory_kb", 0))
            streamed = bool(result_header.get("streamed"))
            pending_output = result_header.get("output_pending", True) is not False
            size = len(body)
            body_at = result_header.get("body_at")
            # Only when asked for, and only a split inside the body: the worker runs the
            # function's code, so its header is checked like any of its output.
            if (
                header.get("body_beside") and type(body_at) is int and 0 < body_at <= len(body)
            ):  # a proxy response's body, decoded, after the rest
                body, http_body = body[:body_at], body[body_at:]
                size = response_size(body, http_body)  # of the JSON it stands for
            if status == "success" and size > SYNC_PAYLOAD_LIMIT:
                status = "error"
                body, http_body = faults.response_too_large(), None
        except TimeoutError:
            healthy = False
            worker.kill()
            await worker.exited
            duration_ms = (time.perf_counter() - t0) * 1000
            status = "timeout"
            body, extra_log = faults.timed_out(request_id, timeout)
        except WorkerDied as died:
            healthy = False
            duration_ms = (time.perf_counter() - t0) * 1000
            status = "crash"
            error = faults.exit_error(died.returncode, request_id)
            body = json.dumps(error).encode()
            extra_log = f"{error['errorMessage']}\n{error['errorType']}\n"
        except BaseException:
            worker.kill()  # cancelled mid-invocation: its state is unknown
            pool.release(worker, healthy=False)
            raise
        output = worker.take_log(drain=pending_output) + extra_log
        pool.release(worker, healthy=healthy)
        max_memory_mb = memory_mb(worker)
        if not healthy:  # it could not report its peak
            max_memory_mb = max(max_memory_mb, worker.peak_memory_mb())
        return Outcome(
            status,
            body,
            output,
            duration_ms,
            max_memory_mb,
            init is not None,
            init_ms,
            streamed,
            http_body,
        )

    def provision(self, fn: DeployedFunction) -> None:
        self.pools.launcher.prepare(fn)
        self.pools.provision(fn)

    def drain(self, name: str, keep: DeployedFunction | None = None) -> None:
        self.pools.drain(name, keep)

    def retire(self, name: str, version: str) -> None:
        self.pools.retire(name, version)

    def stop_idle(self, name: str) -> int:
        return self.pools.stop_idle(name)

    def workers(self, name: str | None = None) -> list[WorkerInfo]:
        return self.pools.describe(name)

    def stats(self) -> dict[str, Any]:
        pools = self.pools.pools.values()
        return {
            "workers": len(self.pools.workers),
            "busy": sum(len(p.busy) for p in pools),
            "starting": sum(p.starting for p in pools),
            "waiting": sum(len(p.queue) for p in pools),
            "memoryLimits": self.pools.limiter.kind,
        }

    def isolation_missing(self) -> list[str]:
        return list(self.pools.jail_missing)

    async def close(self) -> None:
        await self.pools.close()


@functools.cache
def takes_body_beside(runtime: str) -> bool:
    """Whether this runtime's worker takes an HTTP event's body beside it (the registry says;
    faasbox.execution.body_beside)."""
    start = runtimes.of(runtime).worker
    return start is not None and start.body_beside


def names_request(fn: DeployedFunction) -> bool:
    """Whether Lambda adds the request id to this runtime's INIT errors (the registry says)."""
    start = runtimes.of(fn.config.runtime).worker
    return start is None or start.init_error_names_request


def memory_mb(worker: WorkerProcess) -> int:
    """The peak the worker reported with its last result, in MB rounded up."""
    return -(-worker.reported_memory_kb // 1024)
