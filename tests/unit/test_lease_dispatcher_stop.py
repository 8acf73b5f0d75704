"""`LeaseDispatcher.stop` ends the dispatcher however its cancel lines up with a wake-up.

On Python 3.11, `asyncio.wait_for(event.wait(), t)` returns normally when the task is
cancelled just after the event was set, so a dispatcher loop built on it ran on after
`stop` (a hang CI once met in tests/unit/test_dapr_delivery.py). Each case here nudges the
dispatcher, lets the loop turn a different number of times, then stops it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from faasbox.events.lease_dispatcher import LeaseDispatcher
from faasbox.events.store import EventStore, Message
from faasbox.registry import Registry
from tests.support import stops_after_a_wake_up


class IdleDispatcher(LeaseDispatcher):
    prefix = "test-stop:"

    def function_of(self, queue: str) -> str:
        return queue.removeprefix(self.prefix)

    async def handle(self, message: Message, function: str) -> None:
        raise AssertionError("no message is ever queued here")


@pytest.mark.parametrize("turns", range(8))
def test_stop_returns_when_its_cancel_meets_a_wake_up(data_dir: Path, turns: int) -> None:
    store = EventStore(data_dir / "registry.sqlite3")
    dispatcher = IdleDispatcher(Registry(data_dir), store, max_in_flight=4)

    async def run() -> bool:
        dispatcher.start()
        await asyncio.sleep(0.05)  # the loop is in its idle wait
        return await stops_after_a_wake_up(dispatcher.nudge, dispatcher.stop, turns)

    try:
        assert asyncio.run(run()), f"stop did not return ({turns} turns after the nudge)"
    finally:
        store.close()
