"""The async dispatcher with real workers and a clock the test moves: MaximumEventAge drops
an event unrun (EventAgeExceeded, to the failure destination)."""

from __future__ import annotations

import json
from pathlib import Path

from faasbox.config import load_service
from faasbox.events.dispatcher import AsyncSettings, EventQueue
from faasbox.events.invoke_config import AsyncConfig
from faasbox.events.store import function_queue
from faasbox.execution.invoker import Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service
from tests.support import SERVICES, run_with_invoker, wait_until_async

FLAKY = "asynctest-dev-flaky"
SINK = "asynctest-dev-sink"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_an_event_older_than_its_maximum_age_is_dropped_to_on_failure_unrun(
    data_dir: Path,
) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "async"))
    clock = Clock()

    async def scenario(invoker: Invoker) -> None:
        events = EventQueue(registry, invoker, AsyncSettings(retry_delay_s=1.0), clock=clock)
        events.configs.put(FLAKY, None, AsyncConfig(2, 60, None, f"{SINK}"))
        old = events.enqueue(FLAKY, None, b'{"collector": "http://127.0.0.1:9/"}', source="test")
        clock.now += 61  # the event waited in the queue (the server was down, say)
        events.start()
        try:
            gone = await wait_until_async(
                lambda: (e := events.status(old)) is not None and e.state == "failed" and e,
                30,
                "the old event to be dropped",
            )
            assert gone.attempts == 0, "it never ran"
            assert gone.last_error == "EventAgeExceeded"
            assert gone.destination == f"function:{SINK}"
            (record_event,) = [e for e in events.store.recent(function_queue(SINK), 10)]
            record = json.loads(record_event.payload)
            assert record["requestContext"]["condition"] == "EventAgeExceeded"
            assert record["requestContext"]["approximateInvokeCount"] == 0
            assert record["requestPayload"] == {"collector": "http://127.0.0.1:9/"}
            assert "responseContext" not in record
        finally:
            await events.close()

    run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario)
