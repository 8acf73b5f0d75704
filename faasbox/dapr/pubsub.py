"""Dapr's pub/sub on faasbox: a published event becomes a CloudEvents 1.0 envelope (unless
`rawPayload`) and is delivered to every function subscribed to its topic in serverless.yml
(`- dapr: {pubsub: pubsub, topic: orders, deadLetterTopic: orders-dead}`). The function gets
the envelope as its event and answers as a Dapr app answers: `{"status": "SUCCESS"}` (or
nothing), `RETRY` (delivered again, with backoff, up to MAX_ATTEMPTS; then to the dead-letter
topic if one is named) or `DROP` (given up, logged). A failed invocation counts as RETRY.

At least once, through the durable queue (faasbox.events.store): `publish` commits one
message per subscription (queue `dapr:PUBSUB/TOPIC/FUNCTION`), all in one transaction, before
the publisher is answered; the delivery loop (faasbox.events.lease_dispatcher, as for the
async invocations) leases them and invokes the subscriber through `deliver`. A server killed
with events undelivered delivers them after its restart; only an event being delivered at
the kill can be delivered twice.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from faasbox.dapr.components import DEFAULT_PUBSUB, Component
from faasbox.dapr.errors import INVALID_ARGUMENT, DaprError
from faasbox.errors import ServiceError, TooManyRequests
from faasbox.events.lease_dispatcher import LeaseDispatcher
from faasbox.events.store import EventStore, Message
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.registry import Registry
from faasbox.registry.models import DeployedFunction

log = logging.getLogger("faasbox.dapr")

SUCCESS, RETRY, DROP = "SUCCESS", "RETRY", "DROP"
MAX_ATTEMPTS = 3
RETRY_BACKOFF_S = 0.2  # doubled after each attempt
THROTTLED_BACKOFF_S = 0.2  # a throttled delivery is tried again this soon
DAPR_QUEUE = "dapr:"
CLOUDEVENTS_JSON = "application/cloudevents+json"


@dataclass(frozen=True)
class Subscription:
    pubsub: str
    topic: str
    function: str
    dead_letter_topic: str | None = None


def subscription_queue(sub: Subscription) -> str:
    """The durable queue of one subscription's undelivered events."""
    return f"{DAPR_QUEUE}{sub.pubsub}/{sub.topic}/{sub.function}"


def queue_subscription(queue: str) -> tuple[str, str, str]:
    """(pubsub, topic, function) of a subscription's queue (a topic may hold slashes; pubsub
    and function names do not)."""
    pubsub, rest = queue.removeprefix(DAPR_QUEUE).split("/", 1)
    topic, function = rest.rsplit("/", 1)
    return pubsub, topic, function


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
    """One delivery attempt of an event to a subscribed function."""
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


class PubSub(LeaseDispatcher):
    prefix = DAPR_QUEUE
    kind = "pub/sub event"

    def __init__(
        self,
        app_id: str,
        components: list[Component],
        registry: Registry,
        invoker: Invoker,
        store: EventStore,
        max_in_flight: int,
    ) -> None:
        """`store`: the server's durable queue (shared with the async invocations, which
        open and close it)."""
        super().__init__(registry, store, max_in_flight)
        self.app_id = app_id
        self.names = {DEFAULT_PUBSUB, *(c.name for c in components if c.is_pubsub)}
        self.invoker = invoker

    def subscriptions(self) -> list[Subscription]:
        return subscriptions(self.registry)

    def publish(
        self, pubsub: str, topic: str, data: bytes, content_type: str, raw: bool = False
    ) -> None:
        """Accept the event: returns once it is committed for each subscriber."""
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
        self.store.put_fanout(self._messages(pubsub, topic, event, raw), source="dapr")
        self.nudge()

    def _messages(
        self, pubsub: str, topic: str, event: bytes, raw: bool
    ) -> list[tuple[str, str, bytes, dict[str, Any] | None]]:
        """The event, once for each subscription of the topic."""
        return [
            (
                str(uuid.uuid4()),
                subscription_queue(sub),
                event,
                {"deadLetterTopic": sub.dead_letter_topic, "raw": raw},
            )
            for sub in self.subscriptions()
            if sub.pubsub == pubsub and sub.topic == topic
        ]

    # -- delivery (faasbox.events.lease_dispatcher) ------------------------------------------

    def function_of(self, queue: str) -> str:
        return queue_subscription(queue)[2]

    async def handle(self, message: Message, function: str) -> None:
        pubsub, topic, _ = queue_subscription(message.queue)
        try:
            fn = self.registry.get(function)
        except ServiceError:  # undeployed meanwhile
            log.warning("dapr: %s is gone; an event on %s is dropped", function, topic)
            self._delete(message)
            return
        try:
            result = await deliver(self.invoker, fn, message.body)
        except TooManyRequests:  # waits in the store, without counting as an attempt
            self.store.release(message.id, self._clock() + THROTTLED_BACKOFF_S)
            return
        except ServiceError as e:  # not run at all: counted as a retry
            log.info("dapr: an event on %s for %s not run: %s", topic, function, e.message)
            outcome, error = RETRY, e.message
        else:
            outcome = verdict(result)
            error = result.error_type or result.function_error or f"the subscriber said {outcome}"
        if outcome == DROP:
            log.warning("dapr: %s dropped an event on topic %s", function, topic)
        if outcome in (SUCCESS, DROP):
            self._delete(message)
            return
        runs = message.attempts + 1
        if runs < MAX_ATTEMPTS:  # backoff: RETRY_BACKOFF_S, then doubled
            self.store.retry(message.id, self._clock() + RETRY_BACKOFF_S * 2 ** (runs - 1), error)
            return
        log.warning("dapr: %s asked to retry an event on topic %s %d times", function, topic, runs)
        dead_letter = message.attributes.get("deadLetterTopic")
        raw = bool(message.attributes.get("raw"))
        replacements = []
        if dead_letter:
            event = message.body if raw else envelope(
                self.app_id, pubsub, dead_letter, message.body, CLOUDEVENTS_JSON, raw=False
            )  # fmt: skip
            replacements = self._messages(pubsub, dead_letter, event, raw)
        consumed = (message.queue, message.receipt) if message.receipt else None
        self.store.put_fanout(replacements, source="dapr-dead-letter", consumed=consumed)
        self.nudge()

    def _delete(self, message: Message) -> None:
        if message.receipt:
            self.store.delete_received(message.queue, [message.receipt])
