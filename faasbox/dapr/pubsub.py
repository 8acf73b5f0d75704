"""Dapr's pub/sub on faasbox: a published event becomes a CloudEvents 1.0 envelope (unless
`rawPayload`) and is delivered to every function subscribed to its topic in serverless.yml
(`- dapr: {pubsub: pubsub, topic: orders, deadLetterTopic: orders-dead}`). The function gets
the envelope as its event and answers as a Dapr app answers: `{"status": "SUCCESS"}` (or
nothing), `RETRY` (delivered again, with backoff, up to MAX_ATTEMPTS; then to the dead-letter
topic if one is named) or `DROP` (given up, logged). A failed invocation counts as RETRY.

Delivery runs in the server's event loop through `deliver` below: the one seam to rewire
onto the durable queue (issue 13) - until then, events in flight are lost if the server stops.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from faasbox.dapr.components import DEFAULT_PUBSUB, Component
from faasbox.dapr.errors import INVALID_ARGUMENT, DaprError
from faasbox.errors import ServiceError
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.registry import Registry
from faasbox.registry.models import DeployedFunction

log = logging.getLogger("faasbox.dapr")

SUCCESS, RETRY, DROP = "SUCCESS", "RETRY", "DROP"
MAX_ATTEMPTS = 3
RETRY_BACKOFF_S = 0.2  # doubled after each attempt
CLOUDEVENTS_JSON = "application/cloudevents+json"


@dataclass(frozen=True)
class Subscription:
    pubsub: str
    topic: str
    function: str
    dead_letter_topic: str | None = None


def subscriptions(registry: Registry) -> list[Subscription]:
    found = []
    for fn in registry.all():
        for event in fn.config.events:
            body = event.get("dapr")
            if isinstance(body, dict):
                found.append(
                    Subscription(
                        str(body.get("pubsub", DEFAULT_PUBSUB)),
                        str(body["topic"]),
                        fn.name,
                        body.get("deadLetterTopic"),
                    )
                )
    return found


async def deliver(invoker: Invoker, fn: DeployedFunction, envelope: bytes) -> InvocationResult:
    """One delivery attempt of an event to a subscribed function (the async invocation path:
    to be moved onto the durable queue when it lands)."""
    return await invoker.invoke(fn, envelope)


def verdict(result: InvocationResult) -> str:
    """What the subscriber asked for: SUCCESS, RETRY or DROP."""
    if result.function_error:
        return RETRY
    try:
        answer = json.loads(result.payload)
    except ValueError:
        return SUCCESS
    status = answer.get("status") if isinstance(answer, dict) else None
    if not status:
        return SUCCESS  # no status: as Dapr takes a 2xx without one
    if isinstance(status, str) and status.upper() in (SUCCESS, RETRY, DROP):
        return status.upper()
    log.warning("dapr: a subscriber answered the unknown status %r: retried", status)
    return RETRY


def envelope(
    app_id: str, pubsub: str, topic: str, data: bytes, content_type: str, raw: bool
) -> bytes:
    """The event as a subscriber receives it: a CloudEvent, or the payload itself (raw)."""
    if raw:
        return data
    if content_type.startswith(CLOUDEVENTS_JSON):
        try:
            event = json.loads(data)
        except ValueError:
            raise DaprError(
                400,
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
                "the body is not a CloudEvent in JSON",
                INVALID_ARGUMENT,
            ) from None
        if not isinstance(event, dict):
            raise DaprError(
                400,
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
                "a CloudEvent is a JSON object",
                INVALID_ARGUMENT,
            )
    else:
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": app_id,
            "type": "com.dapr.event.sent",
            "datacontenttype": content_type,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
        }
        event.update(_data_field(data, content_type))
    event.setdefault("id", str(uuid.uuid4()))
    event.update({"topic": topic, "pubsubname": pubsub})
    return json.dumps(event).encode()


def _data_field(data: bytes, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        try:
            return {"data": json.loads(data)}
        except ValueError:
            pass
    if content_type.startswith("text/"):
        try:
            return {"data": data.decode()}
        except UnicodeDecodeError:
            pass
    return {"data_base64": base64.b64encode(data).decode()}


class PubSub:
    def __init__(
        self, app_id: str, components: list[Component], registry: Registry, invoker: Invoker
    ) -> None:
        self.app_id = app_id
        self.names = {DEFAULT_PUBSUB, *(c.name for c in components if c.is_pubsub)}
        self.registry = registry
        self.invoker = invoker
        self._tasks: set[asyncio.Task[None]] = set()

    def subscriptions(self) -> list[Subscription]:
        return subscriptions(self.registry)

    def publish(
        self, pubsub: str, topic: str, data: bytes, content_type: str, raw: bool = False
    ) -> None:
        """Accept the event and start delivering it; returns once it is accepted."""
        if not pubsub:
            raise DaprError(404, "ERR_PUBSUB_EMPTY", "pubsub name is empty", INVALID_ARGUMENT)
        if pubsub not in self.names:
            raise DaprError(
                400, "ERR_PUBSUB_NOT_FOUND", f"pubsub {pubsub} not found", INVALID_ARGUMENT
            )
        if not topic:
            raise DaprError(
                404, "ERR_TOPIC_EMPTY", f"topic is empty in pubsub {pubsub}", INVALID_ARGUMENT
            )
        event = envelope(self.app_id, pubsub, topic, data, content_type or "text/plain", raw)
        for sub in self.subscriptions():
            if sub.pubsub == pubsub and sub.topic == topic:
                task = asyncio.get_running_loop().create_task(self._deliver(sub, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, sub: Subscription, event: bytes) -> None:
        delay = RETRY_BACKOFF_S
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                fn = self.registry.get(sub.function)
            except ServiceError:  # undeployed meanwhile
                log.warning("dapr: %s is gone; an event on %s is dropped", sub.function, sub.topic)
                return
            try:
                outcome = verdict(await deliver(self.invoker, fn, event))
            except ServiceError as e:  # not run (too many requests, ...): tried again
                log.info("dapr: an event on %s for %s not run: %s", sub.topic, sub.function, e)
                outcome = RETRY
            if outcome == SUCCESS:
                return
            if outcome == DROP:
                log.warning("dapr: %s dropped an event on topic %s", sub.function, sub.topic)
                return
            if attempt < MAX_ATTEMPTS:
                await asyncio.sleep(delay)  # backoff between attempts, not a wait for a result
                delay *= 2
        log.warning(
            "dapr: %s asked to retry an event on topic %s %d times",
            sub.function,
            sub.topic,
            MAX_ATTEMPTS,
        )
        if sub.dead_letter_topic:
            self.publish(sub.pubsub, sub.dead_letter_topic, event, CLOUDEVENTS_JSON, raw=False)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
