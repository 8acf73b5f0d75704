"""`sqs` events: functions driven by faasbox's queues, as Lambda's SQS event source mapping.

For each `sqs` event of a deployed function ($LATEST), a poller long-polls the queue, takes
up to `batchSize` messages (waiting up to `maximumBatchingWindow` seconds to fill a batch),
invokes the function with SQS's event (`{"Records": [...]}`) and deletes what succeeded: the
whole batch, or with `functionResponseType: ReportBatchItemFailures` all but the
`batchItemFailures` the function returned. What failed stays on the queue and is received
again once its visibility timeout runs out, until its RedrivePolicy moves it to a DLQ.

The queues a service declares (AWS::SQS::Queue resources) are created at deploy, here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from faasbox.errors import ServiceError
from faasbox.events.sqs import QueueService, SqsError
from faasbox.events.sqs_shapes import REGION, md5_hex, queue_arn, resolve_queue
from faasbox.events.store import Message
from faasbox.execution.invoker import Invoker
from faasbox.registry import Registry
from faasbox.registry.models import ACCOUNT_ID, DeployedFunction

log = logging.getLogger("faasbox.events")

DEFAULT_BATCH_SIZE = 10
POLL_WAIT_S = 20  # one long poll; the poller then polls again
RECEIVE_LIMIT = 10  # messages per receive, as on SQS; a larger batch takes several
ERROR_PAUSE_S = 1.0  # after an unexpected error (the queue deleted, say), before polling again


@dataclass(frozen=True)
class Mapping:
    function: str
    queue: str
    batch_size: int
    window_s: float
    report_failures: bool


def mappings_of(fn: DeployedFunction) -> list[Mapping]:
    found = []
    for event in fn.config.events:
        body = event.get("sqs")
        if body is None:
            continue
        spec = body if isinstance(body, dict) else {"arn": body}
        if spec.get("enabled") is False:
            continue
        found.append(
            Mapping(
                fn.name,
                resolve_queue(spec["arn"], fn.config.queues),
                int(spec.get("batchSize", DEFAULT_BATCH_SIZE)),
                float(spec.get("maximumBatchingWindow", 0)),
                spec.get("functionResponseType") == "ReportBatchItemFailures",
            )
        )
    return found


def sqs_record(message: Message, queue: str) -> dict[str, Any]:
    """One message as Lambda's SQS event carries it."""
    body = message.body.decode("utf-8", "replace")
    attributes: dict[str, Any] = message.attributes.get("MessageAttributes") or {}
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": str(int(message.created_at * 1000)),
            "SenderId": ACCOUNT_ID,
            "ApproximateFirstReceiveTimestamp": str(int((message.first_received_at or 0) * 1000)),
        },
        "messageAttributes": {
            name: {
                **(
                    {"binaryValue": value["BinaryValue"]}
                    if "BinaryValue" in value
                    else {"stringValue": value.get("StringValue")}
                ),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in attributes.items()
        },
        "md5OfBody": md5_hex(body),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn(queue),
        "awsRegion": REGION,
    }


def failed_items(payload: bytes, ids: set[str]) -> set[str] | None:
    """The message ids a ReportBatchItemFailures response names; None when the response
    is malformed (Lambda then treats the whole batch as failed)."""
    try:
        doc = json.loads(payload) if payload.strip() else None
    except ValueError:
        return set()  # not a response naming failures: the batch succeeded
    if not isinstance(doc, dict) or doc.get("batchItemFailures") is None:
        return set()
    failures = doc["batchItemFailures"]
    if not isinstance(failures, list):
        return None
    named = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return None
        named.add(identifier)
    return named


class SqsEventSources:
    def __init__(self, registry: Registry, invoker: Invoker, queues: QueueService) -> None:
        self.registry = registry
        self.invoker = invoker
        self.queues = queues
        self._pollers: dict[Mapping, asyncio.Task[None]] = {}
        self._started = False

    def start(self) -> None:
        """On the server's loop: the pollers of every deployed function start."""
        self._started = True
        self.refresh()

    def refresh(self) -> None:
        """After a deploy: the declared queues exist, and a poller runs for each mapping."""
        wanted: set[Mapping] = set()
        for fn in self.registry.all():
            try:  # a deploy never fails here: its config was checked when loaded
                self._create_queues(fn)
                wanted.update(mappings_of(fn))
            except (KeyError, TypeError, ValueError) as e:
                log.warning("sqs events of %s not started: %s", fn.name, e)
        if not self._started:
            return
        for mapping in [m for m in self._pollers if m not in wanted]:
            self._pollers.pop(mapping).cancel()
        for mapping in wanted - set(self._pollers):
            self._pollers[mapping] = asyncio.get_running_loop().create_task(self._poll(mapping))

    def _create_queues(self, fn: DeployedFunction) -> None:
        for declared in fn.config.queues.values():
            attributes = dict(declared["attributes"])
            if "RedrivePolicy" in attributes:
                policy = json.loads(attributes["RedrivePolicy"])
                target = resolve_queue(policy["deadLetterTargetArn"], fn.config.queues)
                policy["deadLetterTargetArn"] = queue_arn(target)
                attributes["RedrivePolicy"] = json.dumps(policy)
            try:
                self.queues.ensure(declared["name"], attributes)
            except ServiceError as e:
                log.warning("queue %s of %s not created: %s", declared["name"], fn.name, e.message)

    async def _poll(self, mapping: Mapping) -> None:
        while True:
            try:
                await self._poll_once(mapping)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the queue deleted, the function removed: try again
                if not isinstance(e, SqsError):
                    log.exception("sqs event source %s -> %s", mapping.queue, mapping.function)
                await asyncio.sleep(ERROR_PAUSE_S)

    async def _poll_once(self, mapping: Mapping) -> None:
        messages = await self.queues.receive(
            mapping.queue, min(RECEIVE_LIMIT, mapping.batch_size), None, POLL_WAIT_S
        )
        if not messages:
            return
        if mapping.window_s > 0:  # fill the batch for up to the batching window
            loop = asyncio.get_running_loop()
            deadline = loop.time() + mapping.window_s
            while len(messages) < mapping.batch_size and (left := deadline - loop.time()) > 0:
                want = min(RECEIVE_LIMIT, mapping.batch_size - len(messages))
                more = await self.queues.receive(mapping.queue, want, None, left)
                taken = {m.id for m in messages}  # one whose lease ran out meanwhile: once
                messages += [m for m in more if m.id not in taken]
        fn = self.registry.get(mapping.function)
        event = {"Records": [sqs_record(m, mapping.queue) for m in messages]}
        result = await self.invoker.invoke(fn, json.dumps(event).encode())
        if result.function_error is not None:
            return  # all of it comes back after its visibility timeout
        ids = {m.id for m in messages}
        failed = failed_items(result.payload, ids) if mapping.report_failures else set()
        if failed is None:
            log.warning("%s returned malformed batchItemFailures: the batch failed", fn.name)
            return
        done = [m.receipt for m in messages if m.id not in failed and m.receipt]
        with contextlib.suppress(SqsError):  # the queue was deleted meanwhile
            self.queues.delete_messages(mapping.queue, done)

    async def close(self) -> None:
        tasks = list(self._pollers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pollers.clear()
