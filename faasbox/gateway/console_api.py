"""The management endpoints the console (faasbox/web) needs beyond the CLI's, and the page's
one public fact sheet.

Under /_faasbox/ (signed like the rest of the management API):
- GET    stats?minutes=60                               each function's newest invocation and
                                                        the window's invocations and errors
- GET    functions/{name}/stats?minutes=60              per-minute buckets (invocations, errors,
                                                        throttles, p50/p99 duration)
- GET    functions/{name}/test-events                   its saved test events
- PUT    functions/{name}/test-events/{event}           save one (the body is the JSON event)
- DELETE functions/{name}/test-events/{event}           delete one

Public, for the page before anyone signs in (nothing a caller could not learn from the routes
themselves): GET /ui/server.json?post=PATH... says whether the management API needs a
signature, the largest file the image view can send, and which of the given paths a public
POST route serves (so "Try it" offers only what is deployed, without running anything).
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs

from faasbox.errors import InvalidParameterValue
from faasbox.execution.invoker import Invoker
from faasbox.execution.stats import (
    MAX_MINUTES,
    first_minute,
    minute_buckets,
    summary,
    window_start,
)
from faasbox.gateway.http import Scope, Send, respond_json
from faasbox.gateway.routes import RouteTable
from faasbox.lambda_.limits import SYNC_PAYLOAD_LIMIT
from faasbox.registry import DeployChange, Registry
from faasbox.registry.test_events import TestEventStore, checked_name, parsed_event

DEFAULT_MINUTES = 60
# A binary body travels base64 inside the API Gateway event, which must fit Lambda's 6 MB
# payload: 3 raw bytes per 4 base64 characters, less room for the event's other fields.
EVENT_ROOM = 32 * 1024
MAX_RAW_BODY = (SYNC_PAYLOAD_LIMIT - EVENT_ROOM) * 3 // 4
MAX_PROBED_PATHS = 10


def _minutes(scope: Scope) -> int:
    query = parse_qs(scope["query_string"].decode("latin-1"))
    raw = query.get("minutes", [str(DEFAULT_MINUTES)])[0]
    try:
        minutes = int(raw)
    except ValueError:
        minutes = 0
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidParameterValue(
            f"Invalid minutes {raw!r}: expected a whole number from 1 to {MAX_MINUTES}"
        )
    return minutes


class ConsoleApi:
    def __init__(self, registry: Registry, invoker: Invoker) -> None:
        self.registry = registry
        self.invoker = invoker
        self.test_events = TestEventStore(registry.database)
        registry.on_change(self._forget_removed)

    def _forget_removed(self, change: DeployChange) -> None:
        for name in change.removed:
            self.test_events.forget(name)

    async def __call__(self, scope: Scope, send: Send, parts: list[str], body: bytes) -> bool:
        """Serve the request if it is one of the console's; False (nothing sent) otherwise."""
        method = scope["method"]
        if parts == ["stats"] and method == "GET":
            await self._all_stats(scope, send)
        elif len(parts) == 3 and parts[0] == "functions" and parts[2] == "stats":
            if method != "GET":
                return False
            await self._stats(scope, send, parts[1])
        elif len(parts) in (3, 4) and parts[0] == "functions" and parts[2] == "test-events":
            await self._test_events(send, method, parts[1], parts[3:], body)
        else:
            return False
        return True

    async def _all_stats(self, scope: Scope, send: Send) -> None:
        minutes = _minutes(scope)
        now = time.time()
        logs, first = self.invoker.logs, first_minute(now, minutes)
        # Memory only, a lookup per minute of the window per function: fine on the loop.
        rows = {
            fn.name: summary(
                logs.status_counts(fn.name, first, minutes), logs.newest_point(fn.name)
            ).to_dict()
            for fn in self.registry.all()
        }
        await respond_json(send, 200, {"minutes": minutes, "now": now, "functions": rows})

    async def _stats(self, scope: Scope, send: Send, name: str) -> None:
        fn = self.registry.get(name)
        minutes = _minutes(scope)
        now = time.time()
        points = self.invoker.logs.points(fn.name, window_start(now, minutes))
        buckets = minute_buckets(points, now, minutes)
        await respond_json(
            send,
            200,
            {
                "function": fn.name,
                "minutes": minutes,
                "now": now,
                "buckets": [b.to_dict() for b in buckets],
            },
        )

    async def _test_events(
        self, send: Send, method: str, name: str, rest: list[str], body: bytes
    ) -> None:
        fn = self.registry.get(name)
        if not rest and method == "GET":
            events = await asyncio.to_thread(self.test_events.list, fn.name)
            await respond_json(
                send, 200, {"function": fn.name, "events": [e.to_dict() for e in events]}
            )
        elif rest and method == "PUT":
            event_name = checked_name(rest[0])
            saved = await asyncio.to_thread(
                self.test_events.save, fn.name, event_name, parsed_event(body)
            )
            await respond_json(send, 200, saved.to_dict())
        elif rest and method == "DELETE":
            await asyncio.to_thread(self.test_events.delete, fn.name, rest[0])
            await respond_json(send, 200, {"deleted": rest[0]})
        else:
            target = "/".join(["functions", name, "test-events", *rest])
            await respond_json(send, 404, {"message": f"No management route {method} /{target}"})


async def server_facts(scope: Scope, send: Send, table: RouteTable, auth: bool) -> None:
    """GET /ui/server.json: what the page must know before its first signed request."""
    query = parse_qs(scope["query_string"].decode("latin-1"))
    paths = query.get("post", [])[:MAX_PROBED_PATHS]
    served = []
    for path in paths:
        match = table.match("POST", path)
        if match is None:
            continue
        route = match.route
        # A route the page can call as anyone: no API key, no authorizer, not the catch-all.
        if not route.private and route.authorizer is None and route.path != "$default":
            served.append(path)
    await respond_json(
        send,
        200,
        {"auth": auth, "maxUploadBytes": MAX_RAW_BODY, "postRoutes": served},
        [(b"cache-control", b"no-store")],
    )
