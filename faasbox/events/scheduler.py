"""The scheduler: fires each enabled schedule rule of the deployed functions at its times.

Each fire is an asynchronous (Event) invocation of the rule's function with the rule's event.
Fire times are computed from the rules and the clock, never stored: ticks that passed while
the server was down are not replayed (as EventBridge does not replay a rule's missed ticks),
and ticks a busy or suspended loop overslept are fired once, late, not once each. A rate rule
counts from its function's LastModified (its deploy), so a restart does not shift it.

Gateways that share one database each run a scheduler over the same rules and fire each tick
once between them: a tick's invocation has a request id made from the rule and the tick
(`tick_request_id`), and the durable queue takes a request id once, so the gateways that come
second find it taken and do nothing. The claim and the invocation are one row committed in one
transaction: a gateway killed at any moment neither loses a tick nor fires it twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from faasbox.errors import ResourceNotFound
from faasbox.events.schedules import ScheduleRule, all_rules, scheduled_event, target_payload
from faasbox.registry import DeployedFunction, Registry

if TYPE_CHECKING:
    from faasbox.events.dispatcher import EventQueue

log = logging.getLogger("faasbox.events")

# How long the loop sleeps at most before it looks at the clock again (a wall clock that
# jumps is noticed within this).
MAX_SLEEP_S = 30.0

# Invoke `fn` asynchronously with `payload`; `request_id` names the invocation. False when
# an invocation of that request id was already accepted (another gateway fired the tick).
FireFn = Callable[[DeployedFunction, bytes, str], Awaitable[bool]]
TICK_NAMESPACE = uuid.UUID("6f1d2c1e-52c3-4e53-9d0c-5c1e0b7f2a11")


def tick_request_id(rule: ScheduleRule, fire_time: datetime) -> str:
    """The request id of a rule's invocation for one tick: the same on every gateway."""
    return str(uuid.uuid5(TICK_NAMESPACE, f"{rule.arn} {fire_time.isoformat()}"))


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def event_invocation(events: EventQueue) -> FireFn:
    """The one seam between schedules and asynchronous invocation: each fire is an Event
    invocation committed to the durable queue (retries, destinations, as any async call)."""

    async def fire(fn: DeployedFunction, payload: bytes, request_id: str) -> bool:
        return events.enqueue_once(
            fn.name, None, payload, source="schedule", request_id=request_id, invoked_arn=fn.arn
        )

    return fire


@dataclass
class Entry:
    rule: ScheduleRule
    start: datetime  # what a rate counts from
    next_fire: datetime | None
    last_fire: datetime | None = None
    last_request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.rule.name,
            "arn": self.rule.arn,
            "function": self.rule.function,
            "expression": self.rule.expression,
            "enabled": self.rule.enabled,
            "description": self.rule.description,
            "nextFire": _iso(self.next_fire) if self.rule.enabled else None,
            "lastFire": _iso(self.last_fire),
            "lastRequestId": self.last_request_id,
        }


class Scheduler:
    def __init__(self, registry: Registry, fire: FireFn, clock: Clock | None = None) -> None:
        self.registry = registry
        self.fire = fire
        self.clock: Clock = clock or SystemClock()
        self._entries: dict[str, Entry] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self.reload()
        registry.on_change(self._on_change)

    def reload(self) -> None:
        """Take the rules of the functions deployed now; a rule that did not change keeps
        its next fire time."""
        now = self.clock.now()
        functions = {fn.name: fn for fn in self.registry.all()}
        entries: dict[str, Entry] = {}
        for rule in all_rules(functions.values()):
            start = _parse_time(functions[rule.function].last_modified) or now
            old = self._entries.get(rule.name)
            if old is not None and old.rule == rule and old.start == start:
                entries[rule.name] = old
                continue
            entries[rule.name] = Entry(rule, start, rule.schedule.next_after(now, start))
        with self._lock:
            self._entries = entries
        if self._changed is not None:
            self._changed.set()

    def entries(self) -> list[Entry]:
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.rule.name)

    def due(self, now: datetime) -> list[tuple[ScheduleRule, datetime]]:
        """The rules due at `now`, each once with the tick it fires for; their next fire
        times move past `now`."""
        fires: list[tuple[ScheduleRule, datetime]] = []
        with self._lock:
            for entry in self._entries.values():
                if entry.next_fire is None or entry.next_fire > now:
                    continue
                if entry.rule.enabled:
                    fires.append((entry.rule, entry.next_fire))
                    entry.last_fire = entry.next_fire
                entry.next_fire = entry.rule.schedule.next_after(now, entry.start)
        return fires

    async def tick(self) -> list[str]:
        """Fire what is due now; returns the request ids of the ticks' invocations (started
        here, or by another gateway that fired the tick first)."""
        started: list[str] = []
        for rule, fire_time in self.due(self.clock.now()):
            fn = self._function(rule)
            if fn is None:
                continue
            request_id = tick_request_id(rule, fire_time)
            event = scheduled_event(rule, fire_time, request_id)
            payload = target_payload(rule, event)
            with self._lock:
                entry = self._entries.get(rule.name)
                if entry is not None:
                    entry.last_request_id = request_id
            task = asyncio.get_running_loop().create_task(self._fire(fn, payload, request_id))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            started.append(request_id)
        return started

    def start(self) -> None:
        """Run on the current event loop until close()."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._task = self._loop.create_task(self._run())

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        assert self._changed is not None
        while True:
            await self.tick()
            now = self.clock.now()
            upcoming = [e.next_fire for e in self.entries() if e.next_fire and e.rule.enabled]
            wait = min([(t - now).total_seconds() for t in upcoming] + [MAX_SLEEP_S])
            self._changed.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep(max(wait, 0.0)))
            woken = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Cancelled, not awaited: awaiting them under suppress(CancelledError) also
                # swallowed a `close` that landed here, and the loop ran on.
                sleeper.cancel()
                woken.cancel()

    async def _fire(self, fn: DeployedFunction, payload: bytes, request_id: str) -> None:
        try:
            if await self.fire(fn, payload, request_id):
                log.info("schedule fired: %s (%s)", fn.name, request_id)
        except Exception:  # one failed fire must not stop the others
            log.exception("schedule invocation %s of %s failed to start", request_id, fn.name)

    def _function(self, rule: ScheduleRule) -> DeployedFunction | None:
        try:
            return self.registry.get(rule.function)
        except ResourceNotFound:  # removed since the rule was read
            return None

    def _on_change(self, _change: object) -> None:
        # Deploys run in a thread; the rules are read again on the loop's thread.
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self.reload)
        else:
            self.reload()


def _parse_time(text: str) -> datetime | None:
    """Lambda's LastModified (2024-01-01T00:00:00.000+0000) as a datetime."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None
