"""X-Ray trace ids as Lambda passes them: `_X_AMZN_TRACE_ID` in the function, the
`X-Amzn-Trace-Id` header on the way in and out.

A request that carries a well-formed `X-Amzn-Trace-Id` (a `Root=1-<8 hex>-<24 hex>` field)
keeps it; any other gets a new Root id whose first part is the epoch second in hex, as X-Ray
makes them. The gateway sets `current_trace` per request; the invoker reads it, so every way
into a function (routes, Invoke, authorizers, async invocations) carries the same id.
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar

from faasbox.lambda_ import ids

HEADER = b"x-amzn-trace-id"
MAX_LENGTH = 256  # longer headers are not trace ids of X-Ray's making
ROOT = re.compile(r"(?:^|;)\s*Root=1-[0-9a-f]{8}-[0-9a-f]{24}(?:;|$)")
PRINTABLE = re.compile(r"[\x21-\x7e]*")

# The trace id of the request being served (None outside a request: a schedule, say).
current_trace: ContextVar[str | None] = ContextVar("faasbox_trace_id", default=None)


def new_trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{ids.random_hex(12)};Sampled=0"


def trace_id_from(header_value: str | None) -> str:
    """The incoming header's value when it is a trace id, else a new one."""
    if (
        header_value
        and len(header_value) <= MAX_LENGTH
        and PRINTABLE.fullmatch(header_value)
        and ROOT.search(header_value)
    ):
        return header_value
    return new_trace_id()
