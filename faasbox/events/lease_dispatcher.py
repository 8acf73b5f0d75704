"""`LeaseDispatcher`: the loop that runs a family of the durable queue's queues (those named
`prefix...`, faasbox.events.store) inside the server, shared by the async invocations
(`function:NAME`, faasbox.events.dispatcher) and Dapr's pub/sub (`dapr:PUBSUB/TOPIC/FUNCTION`,
faasbox.dapr.pubsub).

A task on the server's event loop leases ready messages and hands each to `handle`, at most
as many at once per function as its reserved concurrency (else `max_in_flight` for all of
them) allows, so what waits for room waits in the store. A subclass says which function a
queue feeds (`function_of`) and what one message's run is (`handle`: it deletes, retries or
releases the message itself). At start, the leases of the previous server (killed or
stopped while running messages) are released, so those run again at once: at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable

from faasbox.errors import ResourceNotFound
from faasbox.events.store import EventStore, Message
from faasbox.registry import Registry

log = logging.getLogger("faasbox.events")

LEASE_MARGIN_S = 120.0  # a lease outlasts the function's timeout by this much
IDLE_POLL_S = 1.0  # the longest the dispatcher sleeps without a wake-up
FAILED_RUN_BACKOFF_S = 60.0  # a message whose handling crashed is taken again this late


class LeaseDispatcher:
    prefix: str  # the queues this dispatcher runs
    kind: str = "queued message"  # for logs

    def __init__(
        self,
        registry: Registry,
        store: EventStore,
        max_in_flight: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store = store
        self.max_in_flight = max_in_flight
        self._clock = clock
        self.crash_backoff_s = FAILED_RUN_BACKOFF_S
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._in_flight: Counter[str] = Counter()

    # -- what a subclass says ------------------------------------------------------------------

    def function_of(self, queue: str) -> str:
        """The function a queue's messages are delivered to."""
        raise NotImplementedError

    async def handle(self, message: Message, function: str) -> None:
        """Run one leased message; delete, retry or release it in the store."""
        raise NotImplementedError

    def on_idle(self) -> None:
        """Called on each turn of the loop (housekeeping such as pruning)."""

    # -- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        """On the server's loop, at startup: what the previous server was running when it
        stopped (or was killed) runs again, and the dispatcher starts."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        released = self.store.release_leases(self.prefix)
        if released:
            log.info("%d %ss interrupted by the last stop run again", released, self.kind)
        self._task = self._loop.create_task(self._dispatch())

    def nudge(self) -> None:
        """Something became ready: look now rather than at the next poll. Thread-safe."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _dispatch(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                self._take_ready()
                self.on_idle()
                timeout = self._sleep_for()
            except Exception:  # a database hiccup (busy, disk): try again shortly
                log.exception("the %s dispatcher could not read the queue", self.kind)
                timeout = IDLE_POLL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _take_ready(self) -> None:
        now = self._clock()
        for queue in self.store.ready_queues(self.prefix, now):
            function = self.function_of(queue)
            room = self._room(function)
            if room <= 0:
                continue
            for message in self.store.take(queue, room, self._lease_s(function), now):
                self._in_flight[function] += 1
                task = asyncio.get_running_loop().create_task(self._run(message, function))
                self._running[message.id] = task

    def _room(self, function: str) -> int:
        free = self.max_in_flight - sum(self._in_flight.values())
        try:
            reserved = self.registry.get(function, None).config.reserved_concurrency
        except ResourceNotFound:
            reserved = None  # taken, then given up by `handle`: the function is gone
        if reserved is not None:
            free = min(free, reserved - self._in_flight[function])
        return free

    def _lease_s(self, function: str) -> float:
        try:
            return self.registry.get(function, None).config.timeout + LEASE_MARGIN_S
        except ResourceNotFound:
            return LEASE_MARGIN_S

    def _sleep_for(self) -> float:
        due = self.store.next_visible(self.prefix)
        now = self._clock()
        if due is None or due <= now:  # nothing due, or only what waits for room: a wake-up
            return IDLE_POLL_S
        return max(0.01, min(due - now, IDLE_POLL_S))

    async def _run(self, message: Message, function: str) -> None:
        try:
            await self.handle(message, function)
        except asyncio.CancelledError:
            raise  # the server stops: the lease is released at its next start
        except Exception:
            log.exception("%s %s of %s", self.kind, message.id, function)
            with contextlib.suppress(Exception):
                self.store.release(message.id, self._clock() + self.crash_backoff_s)
        finally:
            self._running.pop(message.id, None)
            self._in_flight[function] -= 1
            if self._in_flight[function] <= 0:
                del self._in_flight[function]
            self.nudge()

    async def stop(self) -> None:
        """Cancel the loop and the runs in flight (their leases are released at the next
        start); the store stays open."""
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
