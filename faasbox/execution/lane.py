"""One function version's execution environments, as an executor keeps them: the lane of the
invoker's global budget (faasbox.execution.admission) that a process pool (worker processes)
and a Ray pool (host actors) each are.

An `EnvironmentLane` hands out an idle environment when it has one (the most recently used:
its caches are warmest), starts a new one while the function is under its concurrency limit
and the budget has a slot (racing it against a busy one that frees first, which then serves
the request while the new one joins the lane), and otherwise queues the request until its
deadline, then answers 429. Idle environments are stopped when reaped, drained or evicted
for another lane, but the provisioned ones when only reaping. What an environment is, how
one starts and stops, and what a request is given, are its subclass's.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar

from faasbox.execution.admission import Budget, Queue, RunningSlot
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import DeployedFunction


class Reusable(Protocol):
    """An execution environment that serves invocation after invocation."""

    last_used: float  # when an invocation last gave it back (time.monotonic)


E = TypeVar("E", bound=Reusable)  # the environment: a worker process, a host actor
A = TypeVar("A")  # what a request acquires: the environment itself, or a lease of it


class EnvironmentLane(ABC, Generic[E, A]):
    """The environments of one function version: `idle` (least recently used first), `busy`
    (serving, or handed over to a waiting request), and `starting` ones, at most `limit`
    (its reserved concurrency, else the budget's); each holds a slot of `budget`."""

    def __init__(
        self,
        fn: DeployedFunction,
        settings: RuntimeSettings,
        budget: Budget,
        scale_up_after_s: float | None = None,
    ) -> None:
        self.fn = fn
        self.budget = budget
        self.idle: list[E] = []
        self.busy: set[E] = set()
        self.starting = 0
        self.queue: Queue[E] = Queue(fn, settings)
        self.draining = False
        reserved = fn.config.reserved_concurrency
        self.limit = settings.max_workers if reserved is None else reserved
        # reservedConcurrency is the function's: its versions' environments count together.
        self.reservation = None if reserved is None else budget.reservation(fn.name, reserved, self)
        # How long a request that finds every environment busy, and a start already under
        # way, waits for one to free before it starts one more; None: it starts one at once.
        self.scale_up_after_s = scale_up_after_s

    # -- what a subclass says --------------------------------------------------------------

    @abstractmethod
    def _usable(self, env: E) -> bool:
        """Whether an environment can serve: its process or actor is still there."""

    @abstractmethod
    def _warm(self, env: E) -> A:
        """What `acquire` gives for a warm environment (idle, or handed over)."""

    @abstractmethod
    async def _start(self, deadline: float) -> A:
        """A new environment for the caller, which has `reserve`d its slot: counted in
        `starting` until it is ready, then `busy`. A start that fails frees the slot
        (`Budget.free`) and cleans up after itself. `deadline` (the loop's clock) is the
        request's, for a start that may wait its turn."""

    @abstractmethod
    def _adopted(self, started: A) -> None:
        """An environment started for a request that a warm one served: it joins the lane
        (`release`)."""

    @abstractmethod
    def _stop(self, env: E) -> None:
        """Stop an environment and forget it; its slots are the caller's to free or pass."""

    @abstractmethod
    def _keeps_warm(self, env: E, evicted: int) -> bool:
        """Whether reaping spares an environment idle too long, `evicted` older ones stopped
        already: a provisioned one."""

    # -- the environments ------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.busy) + self.starting

    def _room(self, make: bool = False) -> bool:
        """Whether one more environment may start: under `limit`, which with a reserved
        concurrency counts every version's environments; `make`: stopping an idle one of
        another version if that is what it takes."""
        if self.reservation is None:
            return self.size < self.limit
        return self.reservation.room(self, make=make)

    def take_idle(self, running: bool = False) -> E | None:
        """An idle environment, now busy; None if there is none, or the budget's concurrency
        is all running (then `acquire`). `running`: the caller holds a running slot."""
        while self.idle:
            env = self.idle[-1]  # the most recently used: its caches are warmest
            if not self._usable(env):  # it died while idle
                self.idle.pop()
                self._discard(env, busy=False)
            elif running or self.budget.occupy(self):
                self.idle.pop()
                self.busy.add(env)
                return env
            else:
                return None
        return None

    async def acquire(self) -> A:
        """An environment: idle, new (a start), or handed over after a wait; else a 429."""
        deadline = self.queue.deadline()
        patient = self.scale_up_after_s is not None  # it waits once before a second start
        running = False  # handed the budget's running slot: ours to use or to give back
        try:
            while True:
                env = self.take_idle(running)
                if env is not None:
                    running = False
                    return self._warm(env)
                if patient and not running and self.busy and self.starting and self._room():
                    # A start is already under way: rather than one more per busy arrival,
                    # give a busy environment (or that start) `scale_up_after_s` to free.
                    patient = False
                    handed = await self._wait_briefly()
                    if isinstance(handed, RunningSlot):
                        running = True
                    elif handed is not None:
                        return self._warm(handed)
                    continue
                room = self._room(make=True)
                if room and self.budget.reserve(self, running=running):
                    running = False
                    if not self.busy:
                        return await self._start(deadline)  # nothing to race: wait for it
                    return await self._scale_up(deadline)
                if running:  # of no use here (at its own limit): the next lane's turn
                    running = False
                    self.budget.give_back()
                if self.limit == 0:
                    raise self.queue.throttled()
                handed = await self.queue.wait(deadline, self._give_back)
                if isinstance(handed, RunningSlot):
                    running = True
                elif handed is not None:
                    return self._warm(handed)
                # None: a live slot was freed somewhere; go round and try to take it.
        finally:
            if running:
                self.budget.give_back()

    def _give_back(self, handed: E | RunningSlot) -> None:
        """What was handed to a request cancelled at that very moment."""
        if isinstance(handed, RunningSlot):
            self.budget.give_back()
        else:
            self.release(handed)

    async def _wait_briefly(self) -> E | RunningSlot | None:
        """An environment or a running slot handed over within `scale_up_after_s`, else
        None (also when woken for a slot freed elsewhere: the caller goes round and may
        start one)."""
        waiter = self.queue.join()
        try:
            await asyncio.wait({waiter}, timeout=self.scale_up_after_s)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and (handed := waiter.result()) is not None:
                self._give_back(handed)  # handed at the moment of cancelling
            self.queue.withdraw(waiter)
            raise
        if waiter.done() and not waiter.cancelled():
            return waiter.result()
        self.queue.withdraw(waiter)
        return None

    async def _scale_up(self, deadline: float) -> A:
        """Start an environment for this request, but let a busy one that frees first serve
        it; the new one joins the lane when it is ready (`_adopted`).

        Under steady load a warm environment frees in a few ms while a start takes from 5 ms
        (a worker process on a quiet machine) to a second or more (an actor): a request that
        waited for its own start paid that in the tail at every scale-up."""
        start = asyncio.ensure_future(self._start(deadline))
        try:
            while True:
                waiter = self.queue.join()
                pending: set[asyncio.Future[Any]] = {start, waiter}
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    env = waiter.result()
                    if isinstance(env, RunningSlot):
                        self.budget.give_back()  # this request has its start: pass it on
                        continue
                    if env is not None:
                        start.add_done_callback(self._adopt)
                        return self._warm(env)
                    # Woken for a slot freed elsewhere: this request has its start; pass it on.
                    self.budget.wake()
                    continue
                self.queue.withdraw(waiter)
                return start.result()  # raises what the start raised
        except asyncio.CancelledError:
            handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
            if handed is not None:
                self._give_back(handed)  # handed at the moment of cancelling
            self.queue.withdraw(waiter)
            start.add_done_callback(self._adopt)
            raise

    def _adopt(self, start: asyncio.Future[A]) -> None:
        if start.cancelled() or start.exception() is not None:
            return  # _start cleaned up after itself
        self._adopted(start.result())

    def release(self, env: E, healthy: bool = True) -> None:
        """Give an environment back after an invocation; an unhealthy or dead one is
        stopped, not reused (the next request that needs one starts another)."""
        env.last_used = time.monotonic()
        if self.reservation is not None:
            self.reservation.give_turns(self)  # other versions may wait for this one
        if not healthy or self.draining or not self._usable(env):
            self.busy.discard(env)
            self._discard(env, busy=True)
            return
        waiting = bool(self.queue.waiters)
        if waiting and not self.budget.others_refused(self) and self.queue.hand(env):
            return  # still busy: the waiter's now
        # Idle; its running slot goes to another function's refused request first, if any,
        # so that one whose queue never empties takes turns with the others.
        self.busy.discard(env)
        self.idle.append(env)
        self.budget.vacate(self if waiting else None)

    def _discard(self, env: E, busy: bool) -> None:
        self._stop(env)
        self.budget.free(busy, lane=self)

    # -- its share of the budget (faasbox.execution.admission.Lane) -------------------------

    def wake_one(self, running: RunningSlot | None = None) -> bool:
        if not self.idle and not self._room():
            return False  # at its own limit: its waiters wait for its own environments
        return self.queue.hand(running)

    # -- its share of its function's reservation (faasbox.execution.admission.Counted) -------

    def has_idle(self) -> bool:
        return any(not self._keeps_warm(env, 0) for env in self.idle)

    def has_waiters(self) -> bool:
        return bool(self.queue.waiters)

    def stop_one_idle(self) -> bool:
        for env in self.idle:  # least recently used first; never a provisioned one
            if not self._keeps_warm(env, 0):
                self.idle.remove(env)
                self._discard(env, busy=False)
                return True
        return False

    def oldest_idle(self) -> float | None:
        return min((e.last_used for e in self.idle), default=None)

    def evict_oldest_idle(self) -> None:
        env = min(self.idle, key=lambda e: e.last_used)
        self.idle.remove(env)
        self._stop(env)  # its live slot passes to the caller

    # -- provisioned concurrency, and reaping ----------------------------------------------

    @property
    def provisioned(self) -> int:
        """Environments kept warm whatever the traffic (provisionedConcurrency), unless
        draining."""
        if self.draining:
            return 0
        return min(self.fn.config.provisioned_concurrency or 0, self.limit)

    def evict_idle(self, older_than: float | None = None) -> int:
        """Stop idle environments (all, or those idle since before `older_than`), keeping
        the provisioned ones when only reaping."""
        keep: list[E] = []
        evicted = 0
        for env in sorted(self.idle, key=lambda e: e.last_used):
            if older_than is None or (
                env.last_used < older_than and not self._keeps_warm(env, evicted)
            ):
                self._discard(env, busy=False)
                evicted += 1
            else:
                keep.append(env)
        self.idle = keep
        return evicted
