"""Running one invocation: take a worker, send the event, enforce the timeout, write the log.

Everything a function can do wrong (raise, time out, exceed its memory, crash) ends here as an
`InvocationResult` with Lambda's error object, never as an exception: on Lambda these are
200 responses with X-Amz-Function-Error. Only throttling (429) is raised, as on Lambda.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faasbox.execution.logs import InvocationRecord, LogStore
from faasbox.execution.process.pool import PoolManager
from faasbox.execution.process.worker_process import WorkerDied, WorkerProcess, exit_error
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import SYNC_PAYLOAD_LIMIT, DeployedFunction

if TYPE_CHECKING:
    from faasbox.execution.wasm.executor import WasmExecutor

WASM_RUNTIME = "wasm"


@dataclass(frozen=True)
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

    @property
    def error_type(self) -> str | None:
        if self.function_error is None:
            return None
        try:
            return str(json.loads(self.payload).get("errorType"))
        except (ValueError, AttributeError):
            return None


def report_line(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None,
) -> str:
    billed = max(1, math.ceil(duration_ms))
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed} ms\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {max_memory_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    return line + "\n"


class Invoker:
    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.pools = PoolManager(settings)
        self.logs = LogStore(settings.log_records_per_function, settings.log_bytes_per_function)
        self._wasm: WasmExecutor | None = None  # started by the first wasm invocation

    @property
    def wasm(self) -> WasmExecutor:
        """The executor of `runtime: wasm` functions (in this process, on threads)."""
        if self._wasm is None:
            from faasbox.execution.wasm.executor import (
                WasmExecutor,  # wasmtime loads only when used
            )

            self._wasm = WasmExecutor(self.settings)
        return self._wasm

    async def invoke(
        self,
        fn: DeployedFunction,
        payload: bytes,
        *,
        request_id: str | None = None,
        invoked_arn: str | None = None,
        client_context: dict[str, Any] | None = None,
        identity: dict[str, Any] | None = None,
        http_event: bool = False,
    ) -> InvocationResult:
        """`http_event`: the payload is an API Gateway proxy event from one of faasbox's
        routes (a wasm function then reads the request body and answers a proxy response)."""
        request_id = request_id or str(uuid.uuid4())
        started_at = time.time()
        if fn.config.runtime == WASM_RUNTIME:
            outcome = await self.wasm.invoke(fn, payload, request_id, http_event)
            return self._finish(
                fn,
                request_id,
                started_at,
                outcome.cold,
                outcome.init_ms,
                outcome.status,
                outcome.payload,
                outcome.output,
                outcome.duration_ms,
                None,
                outcome.max_memory_mb,
            )
        pool = self.pools.pool_for(fn)
        lease = await pool.acquire()  # raises TooManyRequests
        worker = lease.worker
        init_ms = lease.init.init_ms if lease.init else None
        if lease.init is not None and lease.init.error is not None:
            output = worker.take_log()
            pool.release(worker, healthy=False)
            error = {**lease.init.error, "requestId": request_id}
            error.setdefault("stackTrace", [])
            return self._finish(
                fn,
                request_id,
                started_at,
                lease.cold,
                init_ms,
                "error",
                json.dumps(error).encode(),
                output,
                0.0,
                worker,
            )

        timeout = fn.config.timeout
        header = {
            "request_id": request_id,
            "deadline_ms": int((time.time() + timeout) * 1000),
            "invoked_arn": invoked_arn or fn.arn,
            "client_context": client_context,
            "identity": identity,
        }
        t0 = time.perf_counter()
        healthy = True
        extra_log = ""
        try:
            async with asyncio.timeout(timeout):
                result_header, body = await worker.invoke(header, payload)
            duration_ms = float(result_header.get("duration_ms", 0.0))
            status = "success" if result_header.get("ok") else "error"
            worker.reported_memory_kb = int(result_header.get("max_memory_kb", 0))
            if status == "success" and len(body) > SYNC_PAYLOAD_LIMIT:
                status = "error"
                body = json.dumps(
                    {
                        "errorMessage": "Response payload size exceeded maximum allowed "
                        f"payload size ({SYNC_PAYLOAD_LIMIT} bytes).",
                        "errorType": "Function.ResponseSizeTooLarge",
                    }
                ).encode()
        except TimeoutError:
            healthy = False
            worker.kill()
            await worker.exited
            duration_ms = (time.perf_counter() - t0) * 1000
            status = "timeout"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            message = f"Task timed out after {timeout:.2f} seconds"
            extra_log = f"{stamp}Z {request_id} {message}\n"
            body = json.dumps(
                {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: {message}",
                }
            ).encode()
        except WorkerDied as died:
            healthy = False
            duration_ms = (time.perf_counter() - t0) * 1000
            status = "crash"
            error = exit_error(died, request_id)
            body = json.dumps(error).encode()
            extra_log = f"{error['errorMessage']}\n{error['errorType']}\n"
        except BaseException:
            worker.kill()  # cancelled mid-invocation: its state is unknown
            pool.release(worker, healthy=False)
            raise
        output = worker.take_log() + extra_log
        pool.release(worker, healthy=healthy)
        return self._finish(
            fn,
            request_id,
            started_at,
            lease.cold,
            init_ms,
            status,
            body,
            output,
            duration_ms,
            worker,
        )

    def _finish(
        self,
        fn: DeployedFunction,
        request_id: str,
        started_at: float,
        cold: bool,
        init_ms: float | None,
        status: str,
        body: bytes,
        output: str,
        duration_ms: float,
        worker: WorkerProcess | None,
        max_memory_mb: int = 0,  # when no worker ran it (wasm)
    ) -> InvocationResult:
        if worker is not None:
            max_memory_mb = -(-worker.reported_memory_kb // 1024)
        if worker is not None and status in ("crash", "timeout"):  # it could not report its peak
            max_memory_mb = max(max_memory_mb, worker.peak_memory_mb())
        if output and not output.endswith("\n"):
            output += "\n"
        log = (
            f"START RequestId: {request_id} Version: {fn.version}\n"
            f"{output}"
            f"END RequestId: {request_id}\n"
            + report_line(request_id, duration_ms, fn.config.memory_size, max_memory_mb, init_ms)
        )
        self.logs.add(
            InvocationRecord(
                seq=self.logs.next_seq(),
                function=fn.name,
                version=fn.version,
                request_id=request_id,
                started_at=started_at,
                status=status,
                cold=cold,
                duration_ms=duration_ms,
                init_ms=init_ms,
                max_memory_mb=max_memory_mb,
                log=log,
            )
        )
        return InvocationResult(
            request_id=request_id,
            version=fn.version,
            payload=body,
            function_error=None if status == "success" else "Unhandled",
            status=status,
            log=log,
            duration_ms=duration_ms,
            max_memory_mb=max_memory_mb,
            cold=cold,
            init_ms=init_ms,
        )

    async def close(self) -> None:
        if self._wasm is not None:
            await self._wasm.close()
        await self.pools.close()
