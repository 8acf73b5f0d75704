"""An invocation's log as Lambda writes it: START, the function's output, END, REPORT."""

from __future__ import annotations

import math


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


def invocation_log(
    request_id: str,
    version: str,
    output: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None,
) -> str:
    if output and not output.endswith("\n"):
        output += "\n"
    return (
        f"START RequestId: {request_id} Version: {version}\n"
        f"{output}"
        f"END RequestId: {request_id}\n"
        + report_line(request_id, duration_ms, memory_mb, max_memory_mb, init_ms)
    )
