"""A function's environments as a lane of the budget (faasbox.execution.lane), on their own:
what a fake subclass starts, with no process or actor behind it."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from faasbox.errors import TooManyRequests
from faasbox.execution.admission import Budget
from faasbox.execution.lane import EnvironmentLane
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import DeployedFunction
from tests.support import wait_until_async
from tests.unit.test_admission import function

numbers = itertools.count(1)


@dataclass(eq=False)
class Env:
    number: int = field(default_factory=lambda: next(numbers))
    alive: bool = True
    warm: bool = False  # provisioned
    last_used: float = 0.0


class FakeLane(EnvironmentLane[Env, Env]):
    """Its starts end when `started` is set; it records what it stopped."""

    def __init__(
        self,
        tmp_path: Path,
        budget: Budget,
        max_workers: int = 2,
        fn: DeployedFunction | None = None,
    ) -> None:
        settings = RuntimeSettings(data_dir=tmp_path, max_workers=max_workers, queue_timeout_s=5)
        super().__init__(fn or function(), settings, budget)
        self.started = asyncio.Event()
        self.stopped: list[Env] = []
        budget.join(self)

    def _usable(self, env: Env) -> bool:
        return env.alive

    def _warm(self, env: Env) -> Env:
        return env

    async def _start(self, deadline: float) -> Env:
        self.starting += 1
        await self.started.wait()
        self.starting -= 1
        env = Env()
        self.busy.add(env)
        return env

    def _adopted(self, env: Env) -> None:
        self.release(env)

    def _stop(self, env: Env) -> None:
        self.stopped.append(env)

    def _keeps_warm(self, env: Env, evicted: int) -> bool:
        return env.warm


def test_an_environment_that_died_serving_is_stopped_not_handed_to_a_waiter(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        budget = Budget(concurrency=4)
        lane = FakeLane(tmp_path, budget, max_workers=1)
        lane.started.set()
        first = await lane.acquire()
        waiting = asyncio.ensure_future(lane.acquire())  # at the lane's limit: it queues
        await wait_until_async(lambda: len(lane.queue) == 1, 10, "the request to queue")
        first.alive = False  # its process exited as its invocation ended
        lane.release(first)
        second = await waiting
        assert second is not first and lane.stopped == [first]
        assert lane.busy == {second} and (budget.live, budget.busy) == (1, 1)

    asyncio.run(scenario())


def test_a_busy_environment_that_frees_first_serves_and_the_new_one_joins_the_lane(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        budget = Budget(concurrency=4)
        lane = FakeLane(tmp_path, budget)
        lane.started.set()
        first = await lane.acquire()
        lane.started.clear()
        scaling = asyncio.ensure_future(lane.acquire())  # a start, racing `first`
        await wait_until_async(lambda: lane.starting == 1, 10, "the start to begin")
        lane.release(first)
        assert await scaling is first
        lane.started.set()
        await wait_until_async(lambda: len(lane.idle) == 1, 10, "the new one to join")
        assert lane.busy == {first} and lane.idle != [first]
        assert (budget.live, budget.busy) == (2, 1)

    asyncio.run(scenario())


def test_reaping_stops_the_idle_but_the_provisioned_and_draining_stops_all(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        budget = Budget(concurrency=4)
        lane = FakeLane(tmp_path, budget, max_workers=3)
        lane.started.set()
        envs = [await lane.acquire() for _ in range(3)]
        envs[0].warm = True
        for env in envs:
            lane.release(env)
        now = max(env.last_used for env in envs) + 1
        assert lane.oldest_idle() == envs[0].last_used
        assert lane.evict_idle(older_than=now) == 2
        assert lane.idle == [envs[0]] and lane.stopped == envs[1:]
        lane.draining = True
        assert lane.evict_idle() == 1 and lane.stopped == [*envs[1:], envs[0]]
        assert (budget.live, budget.busy) == (0, 0)

    asyncio.run(scenario())


def test_a_flooded_lane_takes_turns_with_another_at_the_concurrency_cap(tmp_path: Path) -> None:
    async def scenario() -> None:
        budget = Budget(concurrency=2, live_limit=4)
        a, b = FakeLane(tmp_path, budget), FakeLane(tmp_path, budget)
        a.started.set()
        b.started.set()
        b_env = await b.acquire()
        b.release(b_env)  # b's environment waits idle
        a_envs = [await a.acquire(), await a.acquire()]  # a runs at the cap
        flood = [asyncio.ensure_future(a.acquire()) for _ in range(3)]
        await wait_until_async(lambda: len(a.queue) == 3, 10, "a's flood to queue")
        turn = asyncio.ensure_future(b.acquire())  # refused: both running slots are a's
        await wait_until_async(lambda: len(b.queue) == 1, 10, "b's request to queue")
        a.release(a_envs[0])  # b was refused: the slot is b's, not a's next request's
        assert a.take_idle() is None  # nor one of a's arriving meanwhile
        assert await turn is b_env and not any(f.done() for f in flood)
        assert (budget.busy, len(a.idle)) == (2, 1)
        b.release(b_env)  # nobody else waits in b: a's turn
        assert await flood[0] is a_envs[0]
        a.release(a_envs[0])
        a.release(a_envs[1])
        for waiting in flood[1:]:  # nobody else waits: a's own are handed its environments
            a.release(await waiting)
        assert (budget.live, budget.busy) == (3, 0) and len(a.idle) == 2

    asyncio.run(scenario())


def test_a_request_cancelled_as_it_is_handed_a_running_slot_passes_it_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        budget = Budget(concurrency=1, live_limit=4)
        a, b, c = (FakeLane(tmp_path, budget) for _ in range(3))
        for lane in (a, b, c):
            lane.started.set()
        a_env = await a.acquire()
        turns = [asyncio.ensure_future(lane.acquire()) for lane in (b, c)]
        await wait_until_async(lambda: len(b.queue) == len(c.queue) == 1, 10, "both to queue")
        a.release(a_env)  # b, refused first, is handed the slot...
        turns[0].cancel()  # ...and cancelled before it could use it: c has it
        c_env = await turns[1]
        assert budget.busy == 1 and c.busy == {c_env}
        c.release(c_env)
        assert (budget.live, budget.busy) == (2, 0)

    asyncio.run(scenario())


class SlowStarts(FakeLane):
    """Starts that take a moment, and free their slot when cancelled, as real ones do; a
    request that finds every environment busy waits 1 ms before one more start."""

    def __init__(self, tmp_path: Path, budget: Budget, chance: random.Random) -> None:
        super().__init__(tmp_path, budget, max_workers=3)
        self.chance = chance
        self.scale_up_after_s = 0.001

    async def _start(self, deadline: float) -> Env:
        self.starting += 1
        try:
            await asyncio.sleep(self.chance.random() / 1000)
        except BaseException:
            self.starting -= 1
            self.budget.free(busy=True, lane=self)
            raise
        self.starting -= 1
        env = Env()
        self.busy.add(env)
        return env


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_slots_come_back_whatever_requests_do_meanwhile(tmp_path: Path, seed: int) -> None:
    """150 requests of three functions at a cap of 3: some cancelled while they wait, some
    ending with their environment dead. At no moment do more than 3 run, and once all are
    done every running slot is free and every live one held by an idle environment."""
    chance = random.Random(seed)

    async def scenario() -> None:
        budget = Budget(concurrency=3, live_limit=5)
        lanes = [SlowStarts(tmp_path, budget, chance) for _ in range(3)]
        running: set[Env] = set()
        most = 0
        throttled = 0

        async def request(lane: SlowStarts) -> None:
            nonlocal most, throttled
            try:
                env = await lane.acquire()
            except TooManyRequests:
                throttled += 1
                return
            running.add(env)
            most = max(most, len(running))
            try:
                await asyncio.sleep(chance.random() / 500)
            finally:  # cancelled mid-invocation too, as the executors give it back
                running.discard(env)
                env.alive = chance.random() > 0.1  # some die as their invocation ends
                lane.release(env)

        tasks: list[asyncio.Future[None]] = []
        for _ in range(150):  # a queue holds 100: none is throttled for a full one
            tasks.append(asyncio.ensure_future(request(chance.choice(lanes))))
            if chance.random() < 0.3:
                await asyncio.sleep(chance.choice([0, 0.0005]))
            pending = [t for t in tasks if not t.done()]
            if pending and chance.random() < 0.3:
                chance.choice(pending).cancel()  # a caller gone: waiting, starting, running
        await asyncio.gather(*tasks, return_exceptions=True)
        assert most <= 3 and throttled == 0
        assert budget.busy == 0 and not any(lane.busy or lane.starting for lane in lanes)
        assert budget.live == sum(len(lane.idle) for lane in lanes) <= 5

    asyncio.run(scenario())


def test_a_reserved_concurrency_counts_every_version_of_the_function(tmp_path: Path) -> None:
    async def scenario() -> None:
        budget = Budget(concurrency=4)
        latest = function(reserved=1)
        v1 = FakeLane(tmp_path, budget, fn=dataclasses.replace(latest, version="1"))
        v2 = FakeLane(tmp_path, budget, fn=dataclasses.replace(latest, version="2"))
        for lane in (v1, v2):
            lane.started.set()
        first = await v1.acquire()
        waiting = asyncio.ensure_future(v2.acquire())  # the function's one is v1's
        await wait_until_async(lambda: len(v2.queue) == 1, 10, "v2's request to queue")
        assert v2.size == 0 and budget.busy == 1
        v1.release(first)  # idle, so stopped to make room: v2 starts its own
        second = await waiting
        assert v1.stopped == [first] and v2.busy == {second}
        assert (budget.live, budget.busy) == (1, 1)
        v2.release(second)
        third = await v1.acquire()  # v2's idle one makes room the same way
        assert v2.stopped == [second] and v1.busy == {third}
        v1.release(third)
        budget.leave(v2)
        assert v1.reservation is not None and v1.reservation.lanes == [v1]

    asyncio.run(scenario())


def test_a_version_waiting_at_the_reservation_is_served_when_the_other_ones_frees(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        budget = Budget(concurrency=4)
        latest = function(reserved=1)
        v1 = FakeLane(tmp_path, budget, fn=dataclasses.replace(latest, version="1"))
        v2 = FakeLane(tmp_path, budget, fn=dataclasses.replace(latest, version="2"))
        other_fn = dataclasses.replace(latest.config, name="other")
        other = FakeLane(tmp_path, budget, fn=dataclasses.replace(latest, config=other_fn))
        for lane in (v1, v2, other):
            lane.started.set()
        held, unrelated = await v1.acquire(), await other.acquire()
        waiting = asyncio.ensure_future(v2.acquire())
        await wait_until_async(lambda: len(v2.queue) == 1, 10, "v2's request to queue")
        other.release(unrelated)  # another function's slot frees: no use to v2 yet
        v1.release(held)  # now there is room: v2 must not wait out its queue
        served = await asyncio.wait_for(waiting, 1)
        assert v2.busy == {served} and v1.stopped == [held]

    asyncio.run(scenario())
