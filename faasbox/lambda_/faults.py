"""What Lambda calls each way an invocation can fail, and the error objects it answers.

| errorType | when |
|---|---|
| `Sandbox.Timedout` | the function's timeout ("Task timed out after N.NN seconds") |
| `Function.ResponseSizeTooLarge` | a result over the sync payload limit |
| `Runtime.ExitError` | the runtime exited ("exit status N", "signal: killed") |
| `Runtime.InitTimeout` | INIT did not finish in time |
| `TooManyRequestsException` (429) | throttling: the global limit, or the function's reserved one |
"""

from __future__ import annotations

import json
import signal
import time
from typing import Any

from faasbox.errors import TooManyRequests
from faasbox.lambda_.limits import SYNC_PAYLOAD_LIMIT

TIMED_OUT = "Sandbox.Timedout"
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
EXIT_ERROR = "Runtime.ExitError"
INIT_TIMEOUT = "Runtime.InitTimeout"
RESERVED_LIMIT_EXCEEDED = "ReservedFunctionConcurrentInvocationLimitExceeded"

# Go's names for signals, which Lambda's runtime API uses in "signal: killed".
SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
    signal.SIGHUP: "hangup",
    signal.SIGPIPE: "broken pipe",
}


def timed_out(request_id: str, timeout_s: float) -> tuple[bytes, str]:
    """The error object of a timeout, and the line Lambda logs for it."""
    message = f"Task timed out after {timeout_s:.2f} seconds"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    payload = json.dumps(
        {"errorType": TIMED_OUT, "errorMessage": f"RequestId: {request_id} Error: {message}"}
    ).encode()
    return payload, f"{stamp}Z {request_id} {message}\n"


def response_too_large_message() -> str:
    return (
        f"Response payload size exceeded maximum allowed payload size ({SYNC_PAYLOAD_LIMIT} bytes)."
    )


def response_too_large() -> bytes:
    return json.dumps(
        {"errorMessage": response_too_large_message(), "errorType": RESPONSE_TOO_LARGE}
    ).encode()


def exit_description(returncode: int) -> str:
    """`exit status 1`, or `signal: killed` for a process killed by SIGKILL."""
    if returncode < 0:
        sig = -returncode
        try:
            name = SIGNAL_NAMES.get(signal.Signals(sig), f"signal {sig}")
        except ValueError:
            name = f"signal {sig}"
        return f"signal: {name}"
    return f"exit status {returncode}"


def exit_error(returncode: int, request_id: str | None = None) -> dict[str, Any]:
    prefix = f"RequestId: {request_id} Error: " if request_id else ""
    return {
        "errorType": EXIT_ERROR,
        "errorMessage": f"{prefix}Runtime exited with error: {exit_description(returncode)}",
    }


def init_timeout(timeout_s: float) -> dict[str, Any]:
    return {
        "errorType": INIT_TIMEOUT,
        "errorMessage": f"INIT did not finish within {timeout_s:.2f} seconds",
        "stackTrace": [],
    }


def throttled(reserved: bool) -> TooManyRequests:
    """The 429 of a function at its reserved concurrency, or of the global limit."""
    if reserved:
        return TooManyRequests("Rate Exceeded.", RESERVED_LIMIT_EXCEEDED)
    return TooManyRequests("Rate Exceeded.")
