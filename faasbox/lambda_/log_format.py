"""Lambda's log formats: Text (START/END/REPORT lines) or JSON (structured records), and the
log levels of its advanced logging controls (`LoggingConfig`).

A function's logging config is kept in LoggingConfig's own shape (`LogFormat`,
`ApplicationLogLevel`, `SystemLogLevel`, `LogGroup`), as the Lambda API reads and returns it.
In JSON, the runtime writes the application's `logging` records as JSON (faasbox's worker:
`timestamp`, `level`, `message`, `logger`, `requestId`) and drops those below
`ApplicationLogLevel` (told by `AWS_LAMBDA_LOG_LEVEL`); the platform writes `platform.start`
and `platform.report` records (`time`, `type`, `record`) unless `SystemLogLevel` is WARN,
since both are INFO records.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

TEXT = "Text"
JSON = "JSON"
LOG_FORMATS = (TEXT, JSON)
APPLICATION_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")
DEFAULT_LEVEL = "INFO"  # both levels' default in JSON
# The system levels at which the platform's INFO records (start, report) are written.
_PLATFORM_INFO_AT = ("DEBUG", "INFO")


def is_json(config: dict[str, str]) -> bool:
    return config.get("LogFormat") == JSON


def lambda_logging_config(config: dict[str, str], log_group: str) -> dict[str, str]:
    """LoggingConfig as GetFunctionConfiguration returns it: the levels only in JSON."""
    shown = {
        "LogFormat": config.get("LogFormat", TEXT),
        "LogGroup": config.get("LogGroup") or log_group,
    }
    if is_json(config):
        shown["ApplicationLogLevel"] = config.get("ApplicationLogLevel", DEFAULT_LEVEL)
        shown["SystemLogLevel"] = config.get("SystemLogLevel", DEFAULT_LEVEL)
    return shown


def runtime_env(config: dict[str, str]) -> dict[str, str]:
    """What the function's runtime is told: Lambda sets these two in JSON only."""
    if not is_json(config):
        return {}
    return {
        "AWS_LAMBDA_LOG_FORMAT": JSON,
        "AWS_LAMBDA_LOG_LEVEL": config.get("ApplicationLogLevel", DEFAULT_LEVEL),
    }


def iso_time(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _platform(epoch: float, kind: str, record: dict[str, Any]) -> str:
    return json.dumps({"time": iso_time(epoch), "type": kind, "record": record}) + "\n"


def json_invocation_log(
    config: dict[str, str],
    handler_started_at: float,
    request_id: str,
    version: str,
    output: str,
    status: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None,
) -> str:
    """An invocation's log in JSON: platform.start, the function's output (JSON records of
    its logging calls, and whatever else it wrote), platform.report."""
    if output and not output.endswith("\n"):
        output += "\n"
    if config.get("SystemLogLevel", DEFAULT_LEVEL) not in _PLATFORM_INFO_AT:
        return output
    metrics: dict[str, Any] = {
        "durationMs": round(duration_ms, 3),
        "billedDurationMs": max(1, math.ceil(duration_ms)),
        "memorySizeMB": memory_mb,
        "maxMemoryUsedMB": max_memory_mb,
    }
    if init_ms is not None:
        metrics["initDurationMs"] = round(init_ms, 3)
    # The Telemetry API's statuses: success, error (the handler's), timeout, failure.
    shown_status = "failure" if status == "crash" else status
    report: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": shown_status}
    if status != "success":
        report["errorType"] = _platform_error(status)
    return (
        _platform(
            handler_started_at, "platform.start", {"requestId": request_id, "version": version}
        )
        + output
        + _platform(handler_started_at + duration_ms / 1000, "platform.report", report)
    )


def _platform_error(status: str) -> str:
    # Lambda's report names why an invocation failed: a handler error, a timeout, a crash.
    return {"timeout": "Sandbox.Timedout", "crash": "Runtime.ExitError"}.get(
        status, "Runtime.HandlerError"
    )
