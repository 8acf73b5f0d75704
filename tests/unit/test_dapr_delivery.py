"""Dapr pub/sub's delivery rules on the durable queue, with a scripted invoker in place of
real workers (the real path is in tests/integration/test_dapr_api.py and
test_dapr_pubsub_crash.py): throttled deliveries do not count as attempts, RETRY ends in the
dead-letter topic, a subscriber's reservedConcurrency bounds its deliveries at once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from faasbox.config import load_service
from faasbox.dapr.pubsub import (
    DAPR_QUEUE,
    PubSub,
    Subscription,
    queue_subscription,
    subscription_queue,
)
from faasbox.errors import TooManyRequests
from faasbox.events.store import EventStore
from faasbox.execution.invoker import InvocationResult
from faasbox.registry import Registry
from faasbox.registry.models import DeployedFunction
from faasbox.registry.services import deploy_service
from tests.support import SERVICES, wait_until_async

SUBSCRIBER = "orders-dev-subscriber"  # topic orders, deadLetterTopic orders-dead
DEAD = "orders-dev-dead"
SLOW = "daprslow-dev-worker"  # topic work, reservedConcurrency 2


def result(payload: dict[str, Any]) -> InvocationResult:
    return InvocationResult("r", "$LATEST", json.dumps(payload).encode(), None, "success",
                            "", 1.0, 128, False, None)  # fmt: skip


class ScriptedInvoker:
    """Answers each function's deliveries from a script; past its end, SUCCESS."""

    def __init__(self, script: dict[str, list[Any]]) -> None:
        self.script = script
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.running: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.gate = asyncio.Event()
        self.gate.set()

    async def invoke(self, fn: DeployedFunction, payload: bytes) -> InvocationResult:
        self.calls.append((fn.name, json.loads(payload)))
        self.running[fn.name] += 1
        self.most_at_once[fn.name] = max(self.most_at_once[fn.name], self.running[fn.name])
        try:
            await self.gate.wait()
            steps = self.script.get(fn.name) or []
            step = steps.pop(0) if steps else "SUCCESS"
            if isinstance(step, Exception):
                raise step
            return result({"status": step})
        finally:
            self.running[fn.name] -= 1


def scenario(data_dir: Path, script: dict[str, list[Any]], body: Any) -> Any:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "dapr-apps" / "orders"))
    deploy_service(registry, load_service(SERVICES / "dapr-slow"))
    store = EventStore(data_dir / "registry.sqlite3")
    invoker = ScriptedInvoker(script)
    pubsub = PubSub("app", [], registry, invoker, store, max_in_flight=8)  # type: ignore[arg-type]

    async def run() -> None:
        pubsub.start()
        try:
            await body(pubsub, invoker, store)
        finally:
            await pubsub.stop()
            store.close()

    asyncio.run(run())


def test_throttling_does_not_count_and_retries_end_in_the_dead_letter_topic(
    data_dir: Path,
) -> None:
    throttled = TooManyRequests("Rate Exceeded.")
    script = {SUBSCRIBER: [throttled, throttled, "RETRY", "RETRY", "RETRY"]}

    async def body(pubsub: PubSub, invoker: ScriptedInvoker, store: EventStore) -> None:
        pubsub.publish("pubsub", "orders", b'{"id": 1}', "application/json")
        await wait_until_async(lambda: any(n == DEAD for n, _ in invoker.calls), 30, "dead letter")
        await wait_until_async(lambda: not store.counts(DAPR_QUEUE), 30, "the queue emptied")
        to_subscriber = [e for n, e in invoker.calls if n == SUBSCRIBER]
        assert len(to_subscriber) == 5  # two throttled, then three attempts
        assert len({e["id"] for e in to_subscriber}) == 1
        (dead,) = [e for n, e in invoker.calls if n == DEAD]
        assert dead["topic"] == "orders-dead" and dead["id"] == to_subscriber[0]["id"]
        assert dead["data"] == {"id": 1}

    scenario(data_dir, script, body)


def test_drop_and_success_delete_and_reserved_concurrency_holds(data_dir: Path) -> None:
    async def body(pubsub: PubSub, invoker: ScriptedInvoker, store: EventStore) -> None:
        invoker.gate.clear()  # deliveries wait until the test lets them go
        for n in range(6):
            pubsub.publish("pubsub", "work", json.dumps({"n": n}).encode(), "application/json")
        pubsub.publish("pubsub", "orders", b'{"id": 2}', "application/json")
        assert store.counts(DAPR_QUEUE)  # committed before publish returned
        await wait_until_async(lambda: invoker.running[SLOW] == 2, 30, "two deliveries")
        await wait_until_async(lambda: invoker.running[SUBSCRIBER] == 1, 30, "the other topic")
        invoker.gate.set()
        await wait_until_async(lambda: not store.counts(DAPR_QUEUE), 30, "the queue emptied")
        assert invoker.most_at_once[SLOW] == 2  # its reservedConcurrency
        assert sorted(e["data"]["n"] for n, e in invoker.calls if n == SLOW) == list(range(6))

    scenario(data_dir, {SUBSCRIBER: ["DROP"]}, body)


def test_a_subscription_queue_names_its_pubsub_topic_and_function() -> None:
    sub = Subscription("pubsub", "orders/eu", "orders-dev-subscriber")
    assert subscription_queue(sub) == "dapr:pubsub/orders/eu/orders-dev-subscriber"
    assert queue_subscription(subscription_queue(sub)) == ("pubsub", "orders/eu", sub.function)
