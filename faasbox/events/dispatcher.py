"""`EventQueue`: accepting Event invocations durably, and running them as Lambda does.

`enqueue` commits the event to the store (faasbox.events.store) and returns its request id:
only then is the caller told 202. The dispatcher, a task on the server's event loop, leases
ready events and runs each through the invoker, at most as many at once per function as its
reserved concurrency (else the worker budget) allows, so queued events wait their turn in the
store instead of meeting the synchronous queue's timeout; one still throttled goes back to
the store without counting as an attempt.

After a run, Lambda's rules (faasbox.events.invoke_config): a function error or timeout is
retried after `retry_delay_s` and then twice that (Lambda: about 1 and 2 minutes) up to
MaximumRetryAttempts; an event older than MaximumEventAgeInSeconds is dropped; what finally
succeeded or failed goes to its destination (another function, as an async invocation of
it, or a queue) as an invocation record, and a failure also to the DLQ (`onError`).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from faasbox.errors import ResourceNotFound, ServiceError, TooManyRequests
from faasbox.events import records
from faasbox.events.invoke_config import AsyncConfig, InvokeConfigStore
from faasbox.events.lease_dispatcher import LeaseDispatcher
from faasbox.events.store import FUNCTION_QUEUE, EventStore, QueuedEvent, function_queue
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.registry import Registry
from faasbox.registry.models import LATEST, DeployedFunction, split_function_name

log = logging.getLogger("faasbox.events")

THROTTLED_BACKOFF_S = 0.2  # a throttled event is taken again this soon
RETAIN_S = 3600.0  # finished events stay visible (status) this long
PRUNE_EVERY_S = 60.0


class QueueSink(Protocol):
    """Where destinations and DLQs that are queues (arn:aws:sqs:...) are delivered."""

    def deliver(
        self, queue_arn: str, body: str, attributes: dict[str, str], declared: dict[str, Any]
    ) -> bool:
        """Put a message on the queue; False when there is no such queue. `declared`: the
        sending function's queues (FunctionConfig.queues), which its ARN may name."""
        ...


@dataclass(frozen=True)
class AsyncSettings:
    retry_delay_s: float = 60.0  # the first retry's delay; the second waits twice as long
    max_in_flight: int = 8  # events running at once, all functions together


class EventQueue(LeaseDispatcher):
    prefix = FUNCTION_QUEUE
    kind = "async invocation"

    def __init__(
        self,
        registry: Registry,
        invoker: Invoker,
        settings: AsyncSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        database = registry.database
        super().__init__(registry, EventStore(database), settings.max_in_flight, clock=clock)
        self.invoker = invoker
        self.settings = settings
        self.crash_backoff_s = settings.retry_delay_s
        self.configs = InvokeConfigStore(database)
        self.queues: QueueSink | None = None
        self._last_prune = 0.0

    # -- the entry point ---------------------------------------------------------------------

    def enqueue(
        self,
        function: str,
        qualifier: str | None,
        payload: bytes,
        *,
        source: str,
        request_id: str | None = None,
        invoked_arn: str | None = None,
        client_context: dict[str, Any] | None = None,
    ) -> str:
        """Accept an Event invocation of `function` (as invoked: `qualifier`) durably: when
        this returns, the event is committed and will run at least once. `source` says who
        sent it ("lambda-api", "schedule", "destination", ...). Thread-safe. Raises
        ResourceNotFound for a function (or version) that does not exist."""
        fn = self.registry.get(function, qualifier)
        request_id = request_id or str(uuid.uuid4())
        if invoked_arn is None:
            invoked_arn = fn.arn if qualifier is None else f"{fn.arn}:{qualifier}"
        self.store.put(
            request_id,
            function_queue(fn.name),
            payload,
            source=source,
            qualifier=qualifier,
            invoked_arn=invoked_arn,
            client_context=client_context,
            now=self._clock(),
        )
        self.nudge()
        return request_id

    def enqueue_once(
        self,
        function: str,
        qualifier: str | None,
        payload: bytes,
        *,
        source: str,
        request_id: str,
        invoked_arn: str | None = None,
    ) -> bool:
        """`enqueue` unless an invocation of `request_id` was accepted already (by any
        gateway on the database): whether this call accepted it."""
        fn = self.registry.get(function, qualifier)
        accepted = self.store.put_if_absent(
            request_id,
            function_queue(fn.name),
            payload,
            source=source,
            qualifier=qualifier,
            invoked_arn=invoked_arn or fn.arn,
            now=self._clock(),
        )
        if accepted:
            self.nudge()
        return accepted

    def status(self, request_id: str) -> QueuedEvent | None:
        return self.store.get(request_id)

    # -- the dispatcher (faasbox.events.lease_dispatcher) -----------------------------------

    def function_of(self, queue: str) -> str:
        return queue.removeprefix(FUNCTION_QUEUE)

    async def handle(self, message: QueuedEvent, function: str) -> None:
        await self._run_once(message)

    def on_idle(self) -> None:
        now = self._clock()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self.store.prune(FUNCTION_QUEUE, now - RETAIN_S)

    async def _run_once(self, event: QueuedEvent) -> None:
        try:
            fn = self.registry.get(event.function, event.qualifier)
        except ResourceNotFound as e:
            log.warning("async invocation %s dropped: %s", event.id, e.message)
            self.store.finish(
                event.id, "failed", failed_run=False, error=e.message, destination=None
            )
            return
        config = self.configs.effective(fn, event.qualifier)
        if self._clock() - event.created_at > config.maximum_event_age_s:
            self._failed(event, fn, config, records.EVENT_AGE_EXCEEDED, None, failed_run=False)
            return
        try:
            result = await self.invoker.invoke(
                fn,
                event.payload,
                request_id=event.id,
                invoked_arn=event.invoked_arn,
                client_context=event.client_context,
            )
        except TooManyRequests:  # waits in the store, not in the invoker's queue
            self.store.release(event.id, self._clock() + THROTTLED_BACKOFF_S)
            return
        except ServiceError as e:  # a function that cannot run at all: retrying won't help
            log.warning("async invocation %s of %s failed: %s", event.id, fn.name, e.message)
            self.store.finish(
                event.id, "failed", failed_run=True, error=e.message, destination=None
            )
            return
        if result.function_error is None:
            destination = self._deliver_record(
                event, fn, config.on_success, records.SUCCESS, result, event.attempts + 1
            )
            self.store.finish(
                event.id, "succeeded", failed_run=False, error=None, destination=destination
            )
            return
        runs = event.attempts + 1
        error = result.error_type or result.function_error
        if runs <= config.maximum_retry_attempts:
            delay = self.settings.retry_delay_s * runs
            log.info(
                "async invocation %s of %s failed (%s): retry in %.0f s",
                event.id,
                fn.name,
                error,
                delay,
            )
            self.store.retry(event.id, self._clock() + delay, error)
            return
        self._failed(event, fn, config, records.RETRIES_EXHAUSTED, result, failed_run=True)

    def _failed(
        self,
        event: QueuedEvent,
        fn: DeployedFunction,
        config: AsyncConfig,
        condition: str,
        result: InvocationResult | None,
        *,
        failed_run: bool,
    ) -> None:
        runs = event.attempts + (1 if failed_run else 0)
        error = condition if result is None else (result.error_type or result.function_error)
        delivered = [
            d
            for d in (
                self._deliver_record(event, fn, config.on_failure, condition, result, runs),
                self._deliver_dead_letter(
                    event, fn, config.dead_letter, error or condition, result
                ),
            )
            if d
        ]
        log.info("async invocation %s of %s failed for good: %s", event.id, fn.name, condition)
        self.store.finish(
            event.id,
            "failed",
            failed_run=failed_run,
            error=error,
            destination=", ".join(delivered) or None,
        )

    # -- destinations ------------------------------------------------------------------------

    def _deliver_record(
        self,
        event: QueuedEvent,
        fn: DeployedFunction,
        destination: str | None,
        condition: str,
        result: InvocationResult | None,
        runs: int,
    ) -> str | None:
        if not destination:
            return None
        record = records.invocation_record(
            request_id=event.id,
            function_arn=f"{fn.arn}:{event.qualifier or LATEST}",
            condition=condition,
            invoke_count=runs,
            request_payload=event.payload,
            executed_version=result.version if result is not None else None,
            function_error=result.function_error if result is not None else None,
            response_payload=result.payload if result is not None else None,
            now=self._clock(),
        )
        return self._send(fn, destination, json.dumps(record), {})

    def _deliver_dead_letter(
        self,
        event: QueuedEvent,
        fn: DeployedFunction,
        dead_letter: str | None,
        error: str,
        result: InvocationResult | None,
    ) -> str | None:
        """Lambda's DLQ gets the event itself, with what went wrong as message attributes."""
        if not dead_letter:
            return None
        message = _error_message(result.payload) if result is not None else error
        attributes = {"RequestID": event.id, "ErrorCode": "200", "ErrorMessage": message}
        return self._send(fn, dead_letter, event.payload.decode("utf-8", "replace"), attributes)

    def _send(
        self, fn: DeployedFunction | None, destination: str, body: str, attributes: dict[str, str]
    ) -> str | None:
        """Deliver to a function (an async invocation of it) or a queue; what was reached,
        for the event's status, or None (logged) when the destination does not exist."""
        if destination.startswith("arn:aws:sqs:"):
            declared = fn.config.queues if fn is not None else {}
            if self.queues is not None and self.queues.deliver(
                destination, body, attributes, declared
            ):
                return destination
            log.warning("destination %s: no such queue; the record is dropped", destination)
            return None
        target = self._target_function(fn, destination)
        if target is None:
            log.warning("destination %s: no such function; the record is dropped", destination)
            return None
        name, qualifier = target
        self.enqueue(name, qualifier, body.encode(), source="destination")
        return f"function:{name}"

    def _target_function(
        self, source: DeployedFunction | None, destination: str
    ) -> tuple[str, str | None] | None:
        """A function's name, ARN, or (as the Serverless Framework writes it) its key in the
        source's serverless.yml."""
        name, qualifier = split_function_name(destination)
        if source is not None and source.config.service and ":" not in destination:
            for other in self.registry.all():
                if other.config.service == source.config.service and other.config.key == name:
                    return other.name, None
        try:
            return self.registry.get(name, qualifier).name, qualifier
        except ServiceError:
            return None

    async def close(self) -> None:
        await self.stop()
        self.store.close()
        self.configs.close()


def _error_message(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")[:1024]
    if isinstance(doc, dict) and isinstance(doc.get("errorMessage"), str):
        return str(doc["errorMessage"])
    return payload.decode("utf-8", "replace")[:1024]
