"""Unit tests of faasbox.events.scheduler and schedules: which rules fire when, with which
event, on an injected clock (no waiting for real minutes); the registry is a real one on
tmp_path, the invocations are recorded instead of run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from faasbox.events.dispatcher import AsyncSettings, EventQueue
from faasbox.events.scheduler import Scheduler, event_invocation
from faasbox.events.store import function_queue
from faasbox.registry.models import DeployedFunction, FunctionConfig
from faasbox.registry.registry import Registry
from tests.support import stops_after_a_wake_up, wait_until_async


class FakeClock:
    """A clock the test moves; sleepers wake when it passes their time."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        await future

    def advance(self, delta: timedelta) -> None:
        self._now += delta
        for wake, future in self._sleepers:
            if wake <= self._now and not future.done():
                future.set_result(None)
        self._sleepers = [(w, f) for w, f in self._sleepers if not f.done()]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, str]] = []

    async def __call__(self, fn: DeployedFunction, payload: bytes, request_id: str) -> bool:
        self.calls.append((fn.name, json.loads(payload), request_id))
        return True


EVENTS: list[dict[str, Any]] = [
    {"schedule": "rate(1 minute)"},
    {"schedule": {"rate": "rate(1 minute)", "enabled": False, "name": "off"}},
    {"schedule": {"rate": ["rate(1 minute)"], "name": "resources", "inputPath": "$.resources"}},
    {
        "schedule": {
            "rate": "rate(1 minute)",
            "name": "transformed",
            "inputTransformer": {
                "inputPathsMap": {"when": "$.time", "where": "$.region"},
                "inputTemplate": (
                    '{"at": "<when>", "region": <where>, "rule": "<aws.events.rule-name>"}'
                ),
            },
        }
    },
    {"http": {"path": "/hello", "method": "get"}},
]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    registry = Registry(tmp_path / "data")
    src = tmp_path / "src"
    src.mkdir()
    (src / "handler.py").write_text("def run(event, context):\n    return event\n")
    deploy(registry, src, EVENTS)
    yield registry
    registry.close()


def deploy(registry: Registry, src: Path, events: list[dict[str, Any]]) -> None:
    config = FunctionConfig(
        name="cron-dev-tick", handler="handler.run", service="cron", key="tick", events=events
    )
    registry.deploy([config], registry.store_directory(src), replace_service="cron")


def deployed_at(registry: Registry) -> datetime:
    modified = registry.get("cron-dev-tick").last_modified
    return datetime.strptime(modified, "%Y-%m-%dT%H:%M:%S.%f%z")


def test_rules_are_named_and_listed_with_their_next_fire(registry: Registry) -> None:
    start = deployed_at(registry)
    scheduler = Scheduler(registry, Recorder(), FakeClock(start))
    listed = {e["name"]: e for e in (entry.to_dict() for entry in scheduler.entries())}
    assert sorted(listed) == [
        "cron-dev-tick-schedule-1",
        "off",
        "resources",
        "transformed",
    ]
    first = listed["cron-dev-tick-schedule-1"]
    assert first["arn"] == "arn:aws:events:us-east-1:000000000000:rule/cron-dev-tick-schedule-1"
    assert first["expression"] == "rate(1 minute)"
    assert first["nextFire"] == (start + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert listed["off"]["enabled"] is False and listed["off"]["nextFire"] is None


def test_a_rate_fires_each_minute_with_eventbridges_scheduled_event(registry: Registry) -> None:
    start = deployed_at(registry)
    clock, recorder = FakeClock(start), Recorder()
    scheduler = Scheduler(registry, recorder, clock)

    async def scenario() -> None:
        clock.advance(timedelta(seconds=59))
        assert await scheduler.tick() == []
        clock.advance(timedelta(seconds=1))
        fired = await scheduler.tick()
        assert len(fired) == 3  # the three enabled rate rules; not the disabled one
        await wait_until_async(lambda: len(recorder.calls) == 3, 10, "the fires to be invoked")
        clock.advance(timedelta(seconds=1))
        assert await scheduler.tick() == []  # once per tick

    asyncio.run(scenario())
    by_rule = {
        tuple(sorted(payload)) if isinstance(payload, dict) else "list": payload
        for _, payload, _ in recorder.calls
    }
    event = next(p for _, p, _ in recorder.calls if isinstance(p, dict) and "detail-type" in p)
    tick = start + timedelta(minutes=1)
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": tick.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/cron-dev-tick-schedule-1"],
        "detail": {},
    }
    assert len(event["id"]) == 36  # a UUID, as EventBridge's
    # inputPath: the part of the event it names.
    assert ["arn:aws:events:us-east-1:000000000000:rule/resources"] in by_rule.values()
    # inputTransformer: the template, its placeholders filled (strings in quotes, JSON outside).
    assert {
        "at": tick.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "rule": "transformed",
    } in by_rule.values()
    assert all(name == "cron-dev-tick" for name, _, _ in recorder.calls)
    assert len({request_id for _, _, request_id in recorder.calls}) == 3


def test_cron_input_is_sent_as_given(registry: Registry, tmp_path: Path) -> None:
    cron = {"schedule": {"rate": "cron(0/2 * ? * MON-FRI *)", "input": {"key1": "value1"}}}
    deploy(registry, tmp_path / "src", [cron])
    # Wednesday 2 December 2026, 01:09:30: the cron fires at 01:10, 01:12, ...
    clock, recorder = FakeClock(datetime(2026, 12, 2, 1, 9, 30, tzinfo=UTC)), Recorder()
    scheduler = Scheduler(registry, recorder, clock)
    [cron] = [e for e in scheduler.entries() if e.rule.expression.startswith("cron")]
    assert cron.next_fire == datetime(2026, 12, 2, 1, 10, tzinfo=UTC)

    async def scenario() -> None:
        clock.advance(timedelta(seconds=30))
        await scheduler.tick()
        await wait_until_async(lambda: recorder.calls, 10, "the cron fire")

    asyncio.run(scenario())
    assert [p for _, p, _ in recorder.calls if p == {"key1": "value1"}] == [{"key1": "value1"}]
    assert cron.next_fire == datetime(2026, 12, 2, 1, 12, tzinfo=UTC)


def test_missed_ticks_are_not_replayed(registry: Registry) -> None:
    start = deployed_at(registry)
    clock, recorder = FakeClock(start), Recorder()
    scheduler = Scheduler(registry, recorder, clock)
    # A loop that overslept ten ticks fires each rule once, then moves on.
    clock.advance(timedelta(minutes=10, seconds=30))
    fires = scheduler.due(clock.now())
    assert len(fires) == 3
    assert all(tick == start + timedelta(minutes=1) for _, tick in fires)
    [entry] = [e for e in scheduler.entries() if e.rule.name == "cron-dev-tick-schedule-1"]
    assert entry.next_fire == start + timedelta(minutes=11)
    # A server started after a downtime starts from now: nothing of the downtime fires.
    later = FakeClock(start + timedelta(hours=5, seconds=30))
    restarted = Scheduler(registry, recorder, later)
    assert restarted.due(later.now()) == []
    [entry] = [e for e in restarted.entries() if e.rule.name == "cron-dev-tick-schedule-1"]
    assert entry.next_fire == start + timedelta(hours=5, minutes=1)


def test_the_loop_fires_on_the_clock_and_follows_deploys(
    registry: Registry, tmp_path: Path
) -> None:
    start = deployed_at(registry)
    clock, recorder = FakeClock(start), Recorder()

    async def scenario() -> None:
        scheduler = Scheduler(registry, recorder, clock)
        scheduler.start()
        try:
            await wait_until_async(lambda: clock._sleepers, 10, "the scheduler to sleep")
            clock.advance(timedelta(minutes=1))
            await wait_until_async(lambda: len(recorder.calls) == 3, 10, "three fires")
            # A deploy without the schedules removes their rules.
            await asyncio.to_thread(deploy, registry, tmp_path / "src", EVENTS[-1:])
            await wait_until_async(lambda: not scheduler.entries(), 10, "the rules to go")
            clock.advance(timedelta(minutes=5))
            assert await scheduler.tick() == []
        finally:
            await scheduler.close()

    asyncio.run(scenario())
    assert len(recorder.calls) == 3


def test_two_gateways_on_one_database_fire_each_tick_once(
    registry: Registry, tmp_path: Path
) -> None:
    """Two gateways' schedulers, each with its own registry and queue on one data dir (as two
    `faasbox serve` processes), over 10 ticks on a shared fake clock: each rule's tick is one
    queued invocation, whichever gateway came first."""
    start = deployed_at(registry)
    clock = FakeClock(start)
    other = Registry(tmp_path / "data")
    queues = [
        EventQueue(r, None, AsyncSettings())  # type: ignore[arg-type]  # enqueue needs no invoker
        for r in (registry, other)
    ]
    schedulers = [Scheduler(q.registry, event_invocation(q), clock) for q in queues]

    async def scenario() -> None:
        for _ in range(10):
            clock.advance(timedelta(minutes=1))
            for scheduler in schedulers:
                await scheduler.tick()
            await asyncio.sleep(0)  # let the fires (tasks) run
        for scheduler in schedulers:
            await scheduler.close()

    try:
        asyncio.run(scenario())
        queued = queues[0].store.recent(function_queue("cron-dev-tick"), 1000)
        # Three enabled rules, ten ticks each: thirty invocations, none twice.
        assert len(queued) == 30
        assert len({m.id for m in queued}) == 30
        assert {m.source for m in queued} == {"schedule"}
        ticks = sorted(json.loads(m.body)["time"] for m in queued if b"Scheduled Event" in m.body)
        assert ticks == [
            (start + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ") for n in range(1, 11)
        ]
    finally:
        for q in queues:
            q.store.close()
            q.configs.close()
        other.close()


@pytest.mark.parametrize("turns", range(8))
def test_close_returns_when_its_cancel_meets_a_wake_up(registry: Registry, turns: int) -> None:
    """A reload wakes the loop; `close` a few loop turns later still ends it (a cancel that
    lands while the loop tidies up its wake-up must not be taken for the wake-up's own)."""
    scheduler = Scheduler(registry, Recorder(), FakeClock(deployed_at(registry)))

    async def run() -> bool:
        scheduler.start()
        for _ in range(5):
            await asyncio.sleep(0)  # the loop is waiting for its clock or a change
        return await stops_after_a_wake_up(scheduler.reload, scheduler.close, turns)

    assert asyncio.run(run()), f"close did not return ({turns} turns after the reload)"
