"""How a wasm run becomes Lambda's result: the payload, the error object, the log lines.

| what happened | errorType |
|---|---|
| exit code other than 0 | `Runtime.ExitError` (`exit status N`; stderr's tail as stackTrace) |
| a trap | `Runtime.WasmTrap` (wasmtime's reason; the wasm backtrace as stackTrace) |
| the deadline | `Sandbox.Timedout` (`Task timed out after N.NN seconds`) |
| the fuel budget | `Runtime.OutOfFuel` |
| initial memory over memorySize | `Runtime.OutOfMemory` |
| stdout over 6 MB | `Function.ResponseSizeTooLarge` |
| no usable module / bad options | `Runtime.InvalidEntrypoint` / `Runtime.WasmConfigError` |
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from typing import Any

import wasmtime

from faasbox.execution.api import Outcome
from faasbox.execution.logs import LOG_CAP
from faasbox.execution.wasm.http import proxy_response
from faasbox.execution.wasm.options import WasmOptions
from faasbox.lambda_ import faults
from faasbox.registry.models import DeployedFunction

MIB = 1 << 20
STDERR_TAIL_LINES = 10


@dataclass
class Run:
    """What happened in the thread."""

    exit_code: int | None = None
    trap: str | None = None
    trap_frames: tuple[str, ...] = ()
    timed_out: bool = False
    out_of_fuel: bool = False
    instantiate_error: str | None = None
    stdout: bytes = b""
    stdout_over: bool = False
    stderr: bytes = b""
    stderr_over: bool = False
    memory_bytes: int = 0
    duration_ms: float = 0.0


def reason(message: str) -> str:
    """wasmtime's own words for a trap, without its backtrace: the last cause."""
    cause = message.rsplit("Caused by:", 1)[-1].strip()
    return cause.splitlines()[0].strip() if cause else "unknown trap"


def frames(trap: wasmtime.Trap) -> list[str]:
    frames = []
    with contextlib.suppress(Exception):
        for frame in trap.frames:
            name = frame.func_name or f"wasm function {frame.func_index}"
            frames.append(f"{frame.module_name or 'module'}!{name} @ {frame.module_offset:#x}")
    return frames


def fault(request_id: str, error_type: str, message: str) -> Outcome:
    body = {"errorType": error_type, "errorMessage": message, "requestId": request_id}
    return Outcome(
        status="error",
        payload=json.dumps({**body, "stackTrace": []}).encode(),
        output=f"[ERROR] {error_type}: {message}\n",
        duration_ms=0.0,
        max_memory_mb=0,
    )


def timed_out(
    fn: DeployedFunction,
    request_id: str,
    duration_ms: float,
    log: str,
    memory_mb: int = 0,
    init_ms: float | None = None,
) -> Outcome:
    payload, line = faults.timed_out(request_id, fn.config.timeout)
    return Outcome(
        "timeout", payload, log + line, duration_ms, memory_mb, init_ms is not None, init_ms
    )


def outcome(
    fn: DeployedFunction,
    request_id: str,
    options: WasmOptions,
    run: Run,
    http_event: bool,
    init_ms: float | None,
) -> Outcome:
    log = run.stderr.decode("utf-8", "replace")
    if log and not log.endswith("\n"):
        log += "\n"
    if run.stderr_over:
        log += f"[faasbox: stderr past {LOG_CAP} bytes was dropped]\n"
    memory_mb = max(1, math.ceil(run.memory_bytes / MIB)) if run.memory_bytes else 0
    cold = init_ms is not None

    def done(status: str, payload: bytes, extra: str = "") -> Outcome:
        return Outcome(status, payload, log + extra, run.duration_ms, memory_mb, cold, init_ms)

    def error(status: str, error_type: str, message: str, trace: list[str]) -> Outcome:
        body: dict[str, Any] = {
            "errorType": error_type,
            "errorMessage": message,
            "requestId": request_id,
            "stackTrace": trace,
        }
        return done(status, json.dumps(body).encode(), f"{message}\n{error_type}\n")

    if run.timed_out:
        return timed_out(fn, request_id, run.duration_ms, log, memory_mb, init_ms)
    prefix = f"RequestId: {request_id} Error: "
    if run.instantiate_error is not None:
        if "memory" in run.instantiate_error and "limit" in run.instantiate_error.lower():
            return error(
                "crash",
                "Runtime.OutOfMemory",
                f"{prefix}the module needs more linear memory than memorySize "
                f"({fn.config.memory_size} MB) allows",
                [run.instantiate_error],
            )
        return error(
            "crash", "Runtime.WasmTrap", f"{prefix}instantiation failed", [run.instantiate_error]
        )
    if run.out_of_fuel:
        return error(
            "crash",
            "Runtime.OutOfFuel",
            f"{prefix}the program used its whole fuel budget (wasm.fuel: {options.fuel})",
            list(run.trap_frames),
        )
    if run.trap is not None:
        return error(
            "crash", "Runtime.WasmTrap", f"{prefix}wasm trap: {run.trap}", list(run.trap_frames)
        )
    if run.exit_code:
        tail = run.stderr.decode("utf-8", "replace").rstrip("\n").splitlines()
        exited = faults.exit_error(run.exit_code, request_id)
        return error(
            "crash", exited["errorType"], exited["errorMessage"], tail[-STDERR_TAIL_LINES:]
        )
    if run.stdout_over:
        return error("error", faults.RESPONSE_TOO_LARGE, faults.response_too_large_message(), [])
    if http_event:
        return done("success", proxy_response(run.stdout, options.content_type))
    return done("success", run.stdout)
