"""The global budget and the per-function queue (faasbox.execution.admission), on their own:
slots, LRU eviction across lanes, FIFO hand-over, and Lambda's 429s."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from faasbox.errors import TooManyRequests
from faasbox.execution.admission import RUNNING, Budget, Queue, RunningSlot
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import LATEST, DeployedFunction, FunctionConfig
from tests.support import wait_until_async


def function(reserved: int | None = None) -> DeployedFunction:
    return DeployedFunction(
        config=FunctionConfig(name="f", handler="h.h", reserved_concurrency=reserved),
        version=LATEST,
        code_sha256="x",
        code_dir=Path("/nonexistent"),
        code_size=0,
        last_modified="",
        revision_id="r",
    )


class FakeLane:
    """A lane with idle environments last used at the given times, and `waiting` requests
    it wakes unless `at_its_limit`, recording what each was `handed`."""

    def __init__(self, *idle: float) -> None:
        self.idle = sorted(idle)
        self.evicted: list[float] = []
        self.woken = 0
        self.handed: list[RunningSlot | None] = []
        self.waiting = 0
        self.at_its_limit = False

    def wake_one(self, running: RunningSlot | None = None) -> bool:
        if self.waiting and not self.at_its_limit:
            self.waiting -= 1
            self.woken += 1
            self.handed.append(running)
            return True
        return False

    def oldest_idle(self) -> float | None:
        return self.idle[0] if self.idle else None

    def evict_oldest_idle(self) -> None:
        self.evicted.append(self.idle.pop(0))


def lanes(budget: Budget, *made: FakeLane) -> tuple[FakeLane, ...]:
    for lane in made:
        budget.join(lane)
    return made


def test_at_the_live_cap_a_new_environment_evicts_the_lru_idle_of_another_lane() -> None:
    budget = Budget(concurrency=2, live_limit=2)
    a, b, c = lanes(budget, FakeLane(5.0), FakeLane(3.0, 9.0), FakeLane())
    assert budget.reserve(c) and budget.reserve(c)
    assert (budget.live, budget.busy) == (2, 2)
    budget.vacate()
    budget.vacate()  # both idle now: live, not running
    assert (budget.live, budget.busy) == (2, 0)
    assert budget.reserve(c)  # at the live cap: b's environment idle since 3.0 goes
    assert b.evicted == [3.0] and (budget.live, budget.busy) == (2, 1)
    budget.vacate()
    assert budget.reserve(b)  # never its own: a's (5.0), though b's 9.0 is idle too
    assert a.evicted == [5.0]
    budget.vacate()
    assert budget.reserve(a) and b.evicted == [3.0, 9.0]
    budget.vacate()
    assert not budget.reserve(a)  # nothing idle in another lane: every live slot is held
    assert (budget.live, budget.busy) == (2, 0)


def test_idle_environments_stay_live_while_others_run_up_to_the_concurrency_cap() -> None:
    budget = Budget(concurrency=1, live_limit=3)
    a, b = lanes(budget, FakeLane(), FakeLane())
    assert budget.reserve(a)
    budget.vacate()  # a's environment waits idle
    assert budget.reserve(b)  # room for b's own: a's is not evicted
    assert a.evicted == [] and (budget.live, budget.busy) == (2, 1)
    assert not budget.occupy(a)  # a's idle one may not run: one runs already
    assert not budget.reserve(a)  # nor a new one
    a.waiting = 1
    budget.vacate()  # b's is idle: a, refused, is handed its running slot, still counted
    assert a.handed == [RUNNING] and budget.busy == 1
    assert not budget.occupy(b)  # so nothing arriving meanwhile can take it


def test_the_live_cap_is_never_under_the_concurrency_cap() -> None:
    assert Budget(concurrency=4, live_limit=2).live_limit == 4
    assert Budget(concurrency=4).live_limit == 4


def test_refused_lanes_are_woken_in_turn_and_a_lane_at_its_own_limit_is_passed_over() -> None:
    budget = Budget(concurrency=1, live_limit=8)
    a, b, c, d = lanes(budget, FakeLane(), FakeLane(), FakeLane(), FakeLane())
    assert budget.reserve(a)
    for lane in (b, c, d):
        lane.waiting = 2
        assert not budget.reserve(lane)
    c.at_its_limit = True
    woken = []
    for _ in range(4):
        budget.vacate()  # a running slot frees, and passes to a woken request
        woken.append([lane.woken for lane in (b, c, d)])
        assert budget.busy == 1
    assert woken == [[1, 0, 0], [1, 0, 1], [2, 0, 1], [2, 0, 2]]
    budget.vacate()  # nobody left who can use it: it is free
    assert budget.busy == 0


def test_a_gone_environments_slots_go_to_a_refused_lane_then_to_its_own() -> None:
    budget = Budget(concurrency=1, live_limit=1)
    a, b = lanes(budget, FakeLane(), FakeLane())
    assert budget.reserve(a)
    b.waiting = 1
    assert not budget.reserve(b)
    a.waiting = 1
    budget.free(busy=True, lane=a)  # a's running environment crashed: b was refused first
    assert (a.woken, b.handed) == (0, [RUNNING]) and (budget.live, budget.busy) == (0, 1)
    assert budget.reserve(b, running=True)  # b starts one in the slot it was handed
    assert (budget.live, budget.busy) == (1, 1)
    budget.free(busy=True, lane=b)  # nobody waits in b: a's turn
    assert a.handed == [RUNNING] and (budget.live, budget.busy) == (0, 1)
    budget.give_back()  # a's request had no use for it
    assert budget.busy == 0
    budget.leave(b)
    b.waiting = 1
    assert budget.reserve(a)
    budget.free(busy=True, lane=a)
    assert b.woken == 1 and budget.busy == 0  # gone from the budget: not woken


def test_a_lane_with_requests_waiting_gives_its_running_slot_to_a_refused_lane() -> None:
    budget = Budget(concurrency=1, live_limit=4)
    a, b = lanes(budget, FakeLane(), FakeLane())
    assert budget.reserve(a)
    assert not budget.others_refused(a)
    b.waiting = 1
    assert not budget.occupy(b)  # b's idle one may not run beside a's
    assert budget.others_refused(a) and not budget.others_refused(b)
    a.waiting = 5  # a flood: a's queue never empties
    budget.vacate(waiting=a)  # a's environment is idle; b was refused first
    assert (b.handed, a.woken) == ([RUNNING], 0)
    budget.vacate()  # b's is idle again, nobody waits in b: a's turn
    assert a.handed == [RUNNING] and budget.busy == 1


def test_provisioning_needs_only_a_live_slot_and_a_closing_budget_gives_none() -> None:
    budget = Budget(concurrency=1, live_limit=2)
    (a,) = lanes(budget, FakeLane())
    assert budget.reserve(a)
    assert not budget.reserve(a)
    assert budget.reserve(a, provisioning=True)  # kept warm whatever runs
    assert not budget.reserve(a, provisioning=True)  # but not past the live cap
    budget.vacate()
    budget.vacate()
    budget.closing = True
    assert not budget.reserve(a) and not budget.reserve(a, provisioning=True)


def settings(tmp_path: Path, **changes: Any) -> RuntimeSettings:
    return RuntimeSettings(data_dir=tmp_path, max_workers=1, **changes)


def test_the_queue_hands_over_first_come_first_served(tmp_path: Path) -> None:
    async def scenario() -> list[str | None]:
        queue: Queue[str] = Queue(function(), settings(tmp_path, queue_timeout_s=5.0))
        deadline = queue.deadline()
        first = asyncio.ensure_future(queue.wait(deadline, lambda _: None))
        second = asyncio.ensure_future(queue.wait(deadline, lambda _: None))
        await wait_until_async(lambda: len(queue) == 2, 10, "both requests to queue")
        assert queue.hand("worker")
        assert queue.wake_one()
        assert not queue.hand("spare")  # nobody is waiting any more
        return [await first, await second]

    assert asyncio.run(scenario()) == ["worker", None]


@pytest.mark.parametrize(
    ("reserved", "reason"),
    [
        (None, "ConcurrentInvocationLimitExceeded"),
        (2, "ReservedFunctionConcurrentInvocationLimitExceeded"),
    ],
)
def test_the_queue_throttles_when_full_or_past_its_deadline(
    tmp_path: Path, reserved: int | None, reason: str
) -> None:
    async def scenario() -> list[TooManyRequests]:
        queue: Queue[str] = Queue(
            function(reserved), settings(tmp_path, queue_timeout_s=0.5, queue_limit=1)
        )
        errors = []
        waiting = asyncio.ensure_future(queue.wait(queue.deadline(), lambda _: None))
        # Queued well within its deadline (0.5 s: room for a loaded machine's scheduling).
        await wait_until_async(lambda: len(queue) == 1, 10, "the first request to queue")
        try:
            await queue.wait(queue.deadline(), lambda _: None)  # the queue is full
        except TooManyRequests as e:
            errors.append(e)
        try:
            await waiting  # nothing was handed within the deadline
        except TooManyRequests as e:
            errors.append(e)
        assert len(queue) == 0
        return errors

    errors = asyncio.run(scenario())
    assert len(errors) == 2
    for error in errors:
        assert error.status == 429 and error.message == "Rate Exceeded."
        assert error.reason == reason
