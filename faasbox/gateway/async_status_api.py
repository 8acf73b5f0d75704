"""Where asynchronous invocations are, for the CLI and the console (management API):

- GET /_faasbox/async/invocations?function=NAME&limit=N
      {"invocations": [status, ...] newest first, "counts": {state: n}}
- GET /_faasbox/async/invocations/{requestId}
      status: {requestId, function, qualifier, source, state, attempts, createdAt,
               lastError, destination}

`state` is queued | running | retrying | succeeded | failed; `attempts` counts runs that
ended in a function error or timeout; `destination` is where the invocation record (or the
DLQ message) went, if anywhere. Finished invocations are kept for an hour.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote

from faasbox.errors import InvalidParameterValue, ResourceNotFound, UnknownOperation
from faasbox.events.dispatcher import EventQueue
from faasbox.events.store import FUNCTION_QUEUE, function_queue
from faasbox.gateway.http import Scope, Send, respond_json

PREFIX = "/_faasbox/async/invocations"
MAX_LIMIT = 1000


async def serve_async_status(scope: Scope, send: Send, events: EventQueue) -> None:
    path: str = scope["path"]
    rest = path[len(PREFIX) :].strip("/")
    if scope["method"] != "GET" or "/" in rest:
        raise UnknownOperation(f"faasbox does not serve {scope['method']} {path}")
    if rest:
        event = events.status(unquote(rest))
        if event is None:
            raise ResourceNotFound(f"No asynchronous invocation with request id {rest}")
        await respond_json(send, 200, event.status())
        return
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise InvalidParameterValue("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameterValue(f"limit must be from 1 to {MAX_LIMIT}")
    function = query.get("function")
    queue = function_queue(function) if function else FUNCTION_QUEUE
    invocations = [e.status() for e in events.store.recent(queue, limit)]
    counts = events.store.counts(queue)
    await respond_json(send, 200, {"invocations": invocations, "counts": counts})
