"""`LeaseDispatcher`: the loop that runs a family of the durable queue's queues (those named
`prefix...`, faasbox.events.store) inside the server, shared by the async invocations
(`function:NAME`, faasbox.events.dispatcher) and Dapr's pub/sub (`dapr:PUBSUB/TOPIC/FUNCTION`,
faasbox.dapr.pubsub).

A task on the server's event loop leases ready messages and hands each to `handle`, at most
as many at once per function as its reserved concurrency (else `max_in_flight` for all of
them) allows, so what waits for room waits in the store. A subclass says which function a
queue feeds (`function_of`) and what one message's run is (`handle`: it deletes, retries or
releases the message itself).

Any number of gateways on one database run the same queues: each leases under its own
instance id (faasbox.events.gateways), and releases only its own leases (when it stops) and
those of gateways known to be gone (at start and every RECLAIM_S: a gateway killed on this
machine), so what a killed gateway was running runs again at once; a live gateway's leases
are never taken, so a message runs on one gateway at a time. Leases of a gateway on another
machine that died end on their own (timeout + LEASE_MARGIN_S): at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable

from faasbox.errors import ResourceNotFound
from faasbox.events import gateways
from faasbox.events.store import EventStore, Message
from faasbox.registry import Registry

log = logging.getLogger("faasbox.events")

LEASE_MARGIN_S = 120.0  # a lease outlasts the function's timeout by this much
IDLE_POLL_S = 1.0  # the longest the dispatcher sleeps without a wake-up
FAILED_RUN_BACKOFF_S = 60.0  # a message whose handling crashed is taken again this late
RECLAIM_S = 2.0  # how often the leases of gateways found gone are released


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
        self.instance = gateways.this_instance()
        self._next_reclaim = 0.0

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
        """On the server's loop, at startup: what gone gateways (this one's predecessor
        killed or stopped while running messages) were running runs again, and the
        dispatcher starts."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.store.register(self.instance)
        released = self.store.release_gone(self.prefix, unowned=True)
        if released:
            log.info("%d %ss interrupted by a gateway's stop run again", released, self.kind)
        self._next_reclaim = time.monotonic() + RECLAIM_S
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
                self._reclaim()
                self._take_ready()
                self.on_idle()
                timeout = self._sleep_for()
            except Exception:  # a database hiccup (busy, disk): try again shortly
                log.exception("the %s dispatcher could not read the queue", self.kind)
                timeout = IDLE_POLL_S
            # asyncio.timeout, not wait_for: on 3.11 wait_for returns normally when the
            # cancel from `stop` lands just after a nudge set the event, and the loop would
            # then run on forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _reclaim(self) -> None:
        if time.monotonic() < self._next_reclaim:
            return
        self._next_reclaim = time.monotonic() + RECLAIM_S
        released = self.store.release_gone(self.prefix)
        if released:
            log.info("%d %ss of a gateway that is gone run again", released, self.kind)

    def _take_ready(self) -> None:
        now = self._clock()
        for queue in self.store.ready_queues(self.prefix, now):
            function = self.function_of(queue)
            room = self._room(function)
            if room <= 0:
                continue
            lease_s = self._lease_s(function)
            for message in self.store.take(queue, room, lease_s, now, self.instance.id):
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
            raise  # the server stops: `stop` releases the lease
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
        """Cancel the loop and the runs in flight, and release their leases (they run
        again, on another gateway or at the next start); the store stays open."""
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._loop is not None:
            with contextlib.suppress(Exception):  # else: released when found gone
                self.store.release_owned(self.prefix, self.instance)
