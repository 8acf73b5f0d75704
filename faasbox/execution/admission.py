"""Admission, once for every executor: the global budget, and the queue of requests
waiting for one function version, with its 429.

`Budget` has two caps, shared by every executor. `concurrency` (`max_workers`) bounds the
execution environments running at once, busy or starting, all functions together: Lambda's
account concurrency, here sized by the cores. `live_limit` (`max_live_workers`) bounds the live
ones, idle ones too, by memory: an idle worker costs memory, not CPU, so many functions can
each keep theirs warm. A request that needs a new environment at the live cap takes the slot
of the least recently used idle environment of another function (LRU eviction); at the
concurrency cap it waits. A request the budget refused is handed the running slot that frees
next (`RUNNING`): passed on, not freed, so no request arriving meanwhile can take it first.
The functions that wait take turns: a function whose own queue never empties gives its slot
to another's waiting request rather than to its own next one, so a flooded function cannot
starve the others. The invoker makes one budget and hands it to every executor.

`Reservation` is a function's `reservedConcurrency`, counted over the lanes of all its
versions together, as on Lambda: at the limit an idle environment of another version is
stopped to make room, and a request that finds every one busy waits until one of them is
given back: its version's lane then takes its turn as a refused one.

`Queue` is one function version's waiting requests: FIFO, at most `queue_limit` of them, each
for at most `queue_timeout_s`; one that cannot wait gets Lambda's 429 (TooManyRequests, with
the reserved-concurrency reason when the function has a reserved concurrency). An executor's
per-function lane (a process pool, a wasm function's slots) hands what frees up to its queue's
first waiter, or wakes it to try again when a slot frees somewhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from faasbox.errors import TooManyRequests
from faasbox.execution.settings import RuntimeSettings
from faasbox.lambda_.faults import throttled
from faasbox.registry.models import DeployedFunction

T = TypeVar("T")


class RunningSlot:
    """A running slot of the budget handed to a woken request: counted busy already, it is
    the request's to use (`take_idle`, `reserve(running=True)`) or to `give_back`."""

    def __repr__(self) -> str:
        return "RUNNING"


RUNNING = RunningSlot()


class Lane(Protocol):
    """One function version's share of the budget, as an executor keeps it."""

    def wake_one(self, running: RunningSlot | None = None) -> bool:
        """Hand one waiting request a running slot, or (None) tell it a slot may be free;
        False if none is waiting, or none could use it (the function is at its own limit)."""
        ...

    def oldest_idle(self) -> float | None:
        """When its least recently used idle environment was last used; None if none is."""
        ...

    def evict_oldest_idle(self) -> None:
        """Stop that environment, giving its live slot to the caller (not back to the
        budget)."""
        ...


class Counted(Lane, Protocol):
    """A lane whose environments count against its function's reservation."""

    @property
    def size(self) -> int:
        """Its environments: idle, busy and starting (a wasm function's: running)."""
        ...

    def has_idle(self) -> bool: ...

    def has_waiters(self) -> bool: ...

    def stop_one_idle(self) -> bool:
        """Stop its least recently used idle environment, freeing its slots; False if none
        is idle."""
        ...


class Reservation:
    """A function's reserved concurrency, over every version's lane (`lanes`)."""

    def __init__(self, limit: int, budget: Budget) -> None:
        self.limit = limit
        self.lanes: list[Counted] = []
        self.budget = budget

    def used(self) -> int:
        return sum(lane.size for lane in self.lanes)

    def room(self, requester: Counted, *, make: bool) -> bool:
        """Whether `requester` may start one more environment; with `make`, an idle one of
        another version is stopped when that is what it takes (else: whether one could
        be)."""
        if self.used() < self.limit:
            return True
        for lane in self.lanes:
            if lane is not requester and (lane.stop_one_idle() if make else lane.has_idle()):
                return True
        return False

    def give_turns(self, releasing: Counted) -> None:
        """An environment of `releasing` is given back: the other versions' waiting
        requests, which wait for just that, take their turns for its slot."""
        for lane in self.lanes:
            if lane is not releasing and lane.has_waiters():
                self.budget.refuse(lane)


class Budget:
    """The global caps on running and on live execution environments, shared by every
    executor. An environment is counted live from `reserve` to `free`, and busy while it
    starts (from `reserve`) and while it serves (from `occupy`, to `vacate`)."""

    def __init__(self, concurrency: int, live_limit: int | None = None) -> None:
        self.concurrency = concurrency
        self.live_limit = max(concurrency, live_limit or 0)
        self.live = 0
        self.busy = 0
        self.closing = False
        self._lanes: dict[Lane, None] = {}  # an ordered set
        # The lanes with a request the budget refused, oldest refusal first: woken in turn.
        self._refused: dict[Lane, None] = {}
        self._reservations: dict[str, Reservation] = {}

    def reservation(self, function: str, limit: int, lane: Counted) -> Reservation:
        """`function`'s reservation, with `lane` counted in it; `limit` as last deployed
        (reserved concurrency is the function's, not a version's)."""
        reservation = self._reservations.get(function)
        if reservation is None:
            reservation = self._reservations[function] = Reservation(limit, self)
        reservation.limit = limit
        reservation.lanes.append(lane)
        return reservation

    def refuse(self, requester: Lane) -> None:
        """`requester` has a request waiting for a slot to free: woken in turn, as one the
        budget refused."""
        self._refused[requester] = None

    def join(self, lane: Lane) -> None:
        self._lanes[lane] = None

    def leave(self, lane: Lane) -> None:
        self._lanes.pop(lane, None)
        self._refused.pop(lane, None)
        for name, reservation in list(self._reservations.items()):
            reservation.lanes = [counted for counted in reservation.lanes if counted is not lane]
            if not reservation.lanes:
                del self._reservations[name]

    def reserve(
        self, requester: Lane, *, provisioning: bool = False, running: bool = False
    ) -> bool:
        """A slot for a new environment of `requester`, busy from its start, evicting another
        lane's LRU idle environment at the live cap; False (the requester is woken when one
        frees) at the concurrency cap, or when every live slot is held by a busy environment
        or by the requester's own. Provisioning starts environments that wait idle: it needs
        only a live slot. `running`: the requester was handed its running slot (`RUNNING`)
        and needs only the live one; refused, it still holds the running one."""
        if self.closing:
            return False
        if self.busy >= self.concurrency and not (provisioning or running):
            self._refused[requester] = None
            return False
        if self.live < self.live_limit:
            self.live += 1
        elif not self._evict_for(requester):
            self._refused[requester] = None
            return False
        if not running:
            self.busy += 1
        return True

    def _evict_for(self, requester: Lane) -> bool:
        oldest: Lane | None = None
        since = 0.0
        for lane in self._lanes:
            if lane is not requester:
                used = lane.oldest_idle()
                if used is not None and (oldest is None or used < since):
                    oldest, since = lane, used
        if oldest is None:
            return False
        oldest.evict_oldest_idle()  # its live slot passes to the requester
        return True

    def occupy(self, requester: Lane) -> bool:
        """An idle environment of `requester` is to serve: False at the concurrency cap (the
        requester is handed a running slot when one frees)."""
        if self.busy < self.concurrency:
            self.busy += 1
            return True
        self._refused[requester] = None
        return False

    def others_refused(self, lane: Lane) -> bool:
        """Whether a lane other than `lane` has a request the budget refused: then `lane`
        gives its running slot up rather than hand it to its own next request."""
        if self._refused:
            for refused in self._refused:
                if refused is not lane:
                    return True
        return False

    def vacate(self, waiting: Lane | None = None) -> None:
        """A busy environment is idle again: its running slot passes to a refused request.
        `waiting`: its lane, which has requests waiting too; they take their turn after the
        lanes refused before them."""
        if waiting is not None:
            self._refused.pop(waiting, None)
            self._refused[waiting] = None
        self.give_back()

    def give_back(self) -> None:
        """A running slot is free: handed on to the lane refused longest ago that can use
        it (that lane then waits behind the others), else free."""
        while self._refused:
            lane = next(iter(self._refused))
            del self._refused[lane]
            if lane.wake_one(RUNNING):
                self._refused[lane] = None  # its other waiters: after the other lanes'
                return
        self.busy -= 1

    def free(self, busy: bool, lane: Lane | None = None) -> None:
        """An environment is gone, busy (serving or starting) or idle: its slots go to a
        refused request, or to one waiting in `lane`, its own, after the lanes refused
        before it."""
        self.live -= 1
        if busy:
            self.vacate(lane)
            return
        if lane is not None and lane.wake_one():
            return
        if self._refused:
            self.wake()

    def wake(self) -> None:
        """Tell one refused request that a live slot may be free: the lanes take turns."""
        while self._refused:
            lane = next(iter(self._refused))
            del self._refused[lane]
            if lane.wake_one():
                self._refused[lane] = None  # its other waiters: after the other lanes'
                return


class Queue(Generic[T]):
    """The requests waiting for one function version: handed a `T` (a warm worker, a slot)
    or the budget's `RUNNING` slot by `hand`, or None by `wake_one` (a live slot freed
    elsewhere: try again)."""

    def __init__(self, fn: DeployedFunction, settings: RuntimeSettings) -> None:
        self.waiters: deque[asyncio.Future[T | RunningSlot | None]] = deque()
        self.max_waiting = settings.queue_limit
        self.timeout_s = settings.queue_timeout_s
        self.reserved = fn.config.reserved_concurrency is not None

    def __len__(self) -> int:
        return len(self.waiters)

    def throttled(self) -> TooManyRequests:
        return throttled(self.reserved)

    def deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timeout_s

    async def wait(
        self, deadline: float, give_back: Callable[[T | RunningSlot], None]
    ) -> T | RunningSlot | None:
        """Wait until handed something or woken, until `deadline` (the loop's clock); a 429
        when the queue is full or the deadline passes. `give_back` returns what was handed
        to a caller cancelled at that very moment."""
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if len(self.waiters) >= self.max_waiting or remaining <= 0:
            raise self.throttled()
        waiter: asyncio.Future[T | RunningSlot | None] = loop.create_future()
        self.waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=remaining)
        except asyncio.CancelledError:
            if waiter.done() and (handed := waiter.result()) is not None:
                give_back(handed)
            waiter.cancel()
            raise
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
            raise self.throttled()
        return waiter.result()

    def join(self) -> asyncio.Future[T | RunningSlot | None]:
        """Wait beside the queue's requests, outside its limit and deadline: for a request
        that has a start of its own under way and takes whichever comes first. The caller
        ends the wait with `withdraw`."""
        waiter: asyncio.Future[T | RunningSlot | None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return waiter

    def withdraw(self, waiter: asyncio.Future[T | RunningSlot | None]) -> None:
        """Stop waiting with a `join`ed waiter that was handed nothing yet."""
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def hand(self, item: T | RunningSlot | None) -> bool:
        """Give `item` to the first request still waiting; False if none is."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return True
        return False

    def wake_one(self) -> bool:
        return self.hand(None)
