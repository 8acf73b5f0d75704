"""What the gateway does around every HTTP request: its trace id, its access log line.

The trace id (faasbox.lambda_.tracing) comes from the request's `X-Amzn-Trace-Id`, or is
made new; the invocations the request causes see it as `_X_AMZN_TRACE_ID`, and the response
carries it back. The access log is one line per request on the `faasbox.access` logger
(method, path without its query, which may hold keys, status, duration, request id), which
`faasbox serve` prints unless `--quiet`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from faasbox.gateway.http import Receive, Scope, Send, header
from faasbox.lambda_ import tracing

_ACCESS = "faasbox.access"
access_log = logging.getLogger(_ACCESS)

Handler = Callable[[Scope, Receive, Send, str], Awaitable[None]]


def access_line(
    client: str, method: str, path: str, status: int, duration_ms: float, request_id: str
) -> str:
    return f'{client} "{method} {path}" {status or "-"} {duration_ms:.2f} ms {request_id}'


def _raw_path(scope: Scope) -> str:
    """The path as sent (percent-escapes kept: a decoded one could forge log lines)."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else str(scope["path"]).encode("unicode_escape").decode()


async def observed(
    scope: Scope, receive: Receive, send: Send, handler: Handler, request_id: str
) -> None:
    """Serve one request with `handler`, under its trace id, and log it."""
    started = time.perf_counter()
    trace = tracing.trace_id_from(header(scope, tracing.HEADER))
    tracing.current_trace.set(trace)  # this request's task only (a context of its own)
    trace_header = (tracing.HEADER, trace.encode())
    status = 0

    async def send_traced(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = message.get("headers") or ()
            for name, _ in headers:
                if name.lower() == tracing.HEADER:
                    break  # the function set its own
            else:
                message = {**message, "headers": [*headers, trace_header]}
        await send(message)

    try:
        await handler(scope, receive, send_traced, request_id)
    finally:
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            line = access_line(
                client[0] if client else "-",
                scope["method"],
                _raw_path(scope),
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )
            # A record made directly: Logger.info would walk the stack for the caller's file
            # and line, which the access log never prints (a few µs per request).
            access_log.handle(logging.LogRecord(_ACCESS, logging.INFO, "", 0, line, None, None))
