"""The global budget and the per-function queue (faasbox.execution.admission), on their own:
slots, LRU eviction across lanes, FIFO hand-over, and Lambda's 429s."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from faasbox.errors import TooManyRequests
from faasbox.execution.admission import Budget, Queue
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
    """A lane with idle environments last used at the given times."""

    def __init__(self, *idle: float) -> None:
        self.idle = sorted(idle)
        self.evicted: list[float] = []
        self.woken = 0
        self.waiting = 0

    def wake_one(self) -> bool:
        if self.waiting:
            self.waiting -= 1
            self.woken += 1
            return True
        return False

    def oldest_idle(self) -> float | None:
        return self.idle[0] if self.idle else None

    def evict_oldest_idle(self) -> None:
        self.evicted.append(self.idle.pop(0))


def test_the_budget_counts_slots_then_evicts_the_lru_idle_of_another_lane() -> None:
    budget = Budget(2)
    a, b, c = FakeLane(5.0), FakeLane(3.0, 9.0), FakeLane()
    for lane in (a, b, c):
        budget.join(lane)
    assert budget.reserve(c) and budget.reserve(c)
    assert budget.used == 2
    assert budget.reserve(c)  # at the cap: b's environment idle since 3.0 goes
    assert b.evicted == [3.0] and budget.used == 2
    assert budget.reserve(b)  # never its own: a's (5.0), though b's 9.0 is idle too
    assert a.evicted == [5.0]
    assert budget.reserve(a) and b.evicted == [3.0, 9.0]
    assert not budget.reserve(a)  # nothing idle anywhere: every slot is in use
    assert budget.used == 2


def test_a_freed_slot_wakes_one_waiter_anywhere_and_a_closing_budget_gives_none() -> None:
    budget = Budget(1)
    a, b = FakeLane(), FakeLane()
    b.waiting = 2
    budget.join(a)
    budget.join(b)
    assert budget.reserve(a)
    assert not budget.reserve(a)
    budget.free()
    assert budget.used == 0 and b.woken == 1 and b.waiting == 1
    budget.leave(b)
    budget.free()
    assert b.woken == 1  # gone from the budget: not woken
    budget.closing = True
    assert not budget.reserve(a)


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
