"""Admission of one wasm function version: at most its concurrency running, each instance
holding a slot of the invoker's global budget, then a bounded wait and 429
(faasbox.execution.admission), as for process pools; and the thread pool its instances run on."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from faasbox.execution.admission import Budget, Queue, RunningSlot
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import DeployedFunction


class Slots:
    """One function version's running instances: at most `limit`, each a budget slot,
    live and busy while it runs."""

    def __init__(self, fn: DeployedFunction, settings: RuntimeSettings, budget: Budget) -> None:
        self.fn = fn
        self.budget = budget
        reserved = fn.config.reserved_concurrency
        self.limit = settings.max_workers if reserved is None else reserved
        # reservedConcurrency is the function's: its versions' instances count together.
        self.reservation = None if reserved is None else budget.reservation(fn.name, reserved, self)
        self.active = 0
        self.invocations = 0
        self.queue: Queue[bool] = Queue(fn, settings)  # handed True: a running slot passes on
        self.threads = ThreadPoolExecutor(
            max_workers=max(1, self.limit), thread_name_prefix=f"wasm-{fn.name}"
        )
        self.last_used = time.monotonic()
        self.retired = False
        budget.join(self)

    async def acquire(self) -> None:
        deadline = self.queue.deadline()
        running = False  # handed the budget's running slot: ours to use or to give back
        try:
            while True:
                if self._room(make=True) and self.budget.reserve(self, running=running):
                    running = False
                    self.active += 1
                    break
                if running:  # of no use here (at its own limit): the next lane's turn
                    running = False
                    self.budget.give_back()
                if self.limit == 0:
                    raise self.queue.throttled()
                handed = await self.queue.wait(deadline, self._give_back)
                if isinstance(handed, RunningSlot):
                    running = True
                elif handed:
                    break  # handed this function's slot: `active` is unchanged
                # None: a live slot was freed somewhere; go round and try to take it.
        finally:
            if running:
                self.budget.give_back()
        self.invocations += 1

    def _give_back(self, handed: bool | RunningSlot) -> None:
        """What was handed to a request cancelled at that very moment."""
        if isinstance(handed, RunningSlot):
            self.budget.give_back()
        else:
            self.release()

    def release(self) -> None:
        self.last_used = time.monotonic()
        if self.reservation is not None:
            self.reservation.give_turns(self)  # other versions may wait for this one
        if not self.budget.others_refused(self) and self.queue.hand(True):
            return  # the slot passes on
        # Another function's refused request has the running slot first (Budget.free).
        self.active -= 1
        self.budget.free(busy=True, lane=self)
        if self.retired and self.active == 0:
            self._stop()

    def retire(self) -> None:
        """No new callers (a redeploy replaced this version): the threads stop once the
        invocations running or queued here are done."""
        self.retired = True
        if self.active == 0 and not self.queue:
            self._stop()

    def _stop(self) -> None:
        self.budget.leave(self)
        self.threads.shutdown(wait=False)

    # -- its share of the budget (faasbox.execution.admission.Lane) -------------------------

    def wake_one(self, running: RunningSlot | None = None) -> bool:
        if not self._room():
            return False  # at its own limit: its waiters wait for its own slots
        return self.queue.hand(running)

    def _room(self, make: bool = False) -> bool:
        """Whether one more instance may run: under `limit`, which with a reserved
        concurrency counts every version's instances."""
        if self.reservation is None:
            return self.active < self.limit
        return self.reservation.room(self, make=make)

    # -- its share of its function's reservation (faasbox.execution.admission.Counted) -------

    @property
    def size(self) -> int:
        return self.active

    def has_idle(self) -> bool:
        return False  # an instance lives for one invocation

    def has_waiters(self) -> bool:
        return bool(self.queue.waiters)

    def stop_one_idle(self) -> bool:
        return False

    def oldest_idle(self) -> float | None:
        return None  # an instance lives for one invocation: nothing idle to give up

    def evict_oldest_idle(self) -> None:
        raise AssertionError("wasm slots keep no idle instances")
