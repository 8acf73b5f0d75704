"""The SQS API, in the JSON protocol current botocore and the AWS CLI speak: POST / with
`X-Amz-Target: AmazonSQS.<Operation>` and a JSON body, SigV4-signed for service `sqs` with
faasbox's access keys. Errors are SQS's: `{"__type": "com.amazonaws.sqs#<Shape>", "message"}`
with the older query code in `x-amzn-query-error`, which botocore maps to its exceptions.

Queue URLs are `http://<host the client used>/<account>/<name>`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from faasbox.errors import ServiceError
from faasbox.events.sqs import (
    MAX_BATCH,
    MAX_WAIT_S,
    QueueService,
    SqsError,
    invalid,
    no_such_queue,
)
from faasbox.events.sqs_shapes import message_json
from faasbox.gateway.http import Scope, Send, header, respond
from faasbox.registry.models import ACCOUNT_ID

TARGET_PREFIX = "AmazonSQS."
CONTENT_TYPE = b"application/x-amz-json-1.0"
BODY_LIMIT = 1 << 20  # a batch of ten 256 KB messages, in JSON
Body = dict[str, Any]


def is_sqs_request(scope: Scope) -> bool:
    return scope["method"] == "POST" and (header(scope, b"x-amz-target") or "").startswith(
        TARGET_PREFIX
    )


class SqsApi:
    def __init__(self, queues: QueueService) -> None:
        self.queues = queues
        self._operations: dict[str, Callable[[Scope, Body], Awaitable[Body]]] = {
            "CreateQueue": self._create_queue,
            "GetQueueUrl": self._get_queue_url,
            "ListQueues": self._list_queues,
            "DeleteQueue": self._delete_queue,
            "SendMessage": self._send_message,
            "SendMessageBatch": self._send_message_batch,
            "ReceiveMessage": self._receive_message,
            "DeleteMessage": self._delete_message,
            "DeleteMessageBatch": self._delete_message_batch,
            "ChangeMessageVisibility": self._change_message_visibility,
            "GetQueueAttributes": self._get_queue_attributes,
            "SetQueueAttributes": self._set_queue_attributes,
            "PurgeQueue": self._purge_queue,
        }

    async def __call__(self, scope: Scope, send: Send, request_id: str, raw: bytes) -> None:
        headers = [(b"x-amzn-requestid", request_id.encode())]
        target = (header(scope, b"x-amz-target") or "")[len(TARGET_PREFIX) :]
        try:
            operation = self._operations.get(target)
            if operation is None:
                raise SqsError(
                    "InvalidAction",
                    f"The action {target} is not valid for this endpoint.",
                    "InvalidAction",
                )
            result = await operation(scope, _body(raw))
        except ServiceError as e:
            await respond_error(send, request_id, e)
            return
        await respond(send, 200, json.dumps(result).encode(), CONTENT_TYPE, headers)

    # -- queues ------------------------------------------------------------------------------

    async def _create_queue(self, scope: Scope, body: Body) -> Body:
        queue = self.queues.create(body.get("QueueName"), body.get("Attributes"))
        return {"QueueUrl": _url(scope, queue.name)}

    async def _get_queue_url(self, scope: Scope, body: Body) -> Body:
        name = _string(body, "QueueName")
        if not self.queues.exists(name):
            raise no_such_queue()
        return {"QueueUrl": _url(scope, name)}

    async def _list_queues(self, scope: Scope, body: Body) -> Body:
        names = self.queues.names(str(body.get("QueueNamePrefix") or ""))
        limit = body.get("MaxResults")
        start = int(body["NextToken"]) if str(body.get("NextToken", "")).isdigit() else 0
        if limit is not None and (type(limit) is not int or not 1 <= limit <= 1000):
            raise invalid("MaxResults must be from 1 to 1000.")
        page = names[start : start + limit] if limit else names[start:]
        result: Body = {"QueueUrls": [_url(scope, n) for n in page]} if page else {}
        if limit and start + limit < len(names):
            result["NextToken"] = str(start + limit)
        return result

    async def _delete_queue(self, scope: Scope, body: Body) -> Body:
        self.queues.delete(_queue(body))
        return {}

    async def _get_queue_attributes(self, scope: Scope, body: Body) -> Body:
        wanted = body.get("AttributeNames") or []
        return {"Attributes": self.queues.attributes(_queue(body), [str(w) for w in wanted])}

    async def _set_queue_attributes(self, scope: Scope, body: Body) -> Body:
        self.queues.set_attributes(_queue(body), body.get("Attributes"))
        return {}

    async def _purge_queue(self, scope: Scope, body: Body) -> Body:
        self.queues.purge(_queue(body))
        return {}

    # -- messages ----------------------------------------------------------------------------

    async def _send_message(self, scope: Scope, body: Body) -> Body:
        (result,) = self.queues.send(
            _queue(body),
            [(body.get("MessageBody"), body.get("DelaySeconds"), body.get("MessageAttributes"))],
        )
        return result

    async def _send_message_batch(self, scope: Scope, body: Body) -> Body:
        name = _queue(body)
        entries = _entries(body)
        successful, failed = [], []
        for entry in entries:  # each entry stands alone, as on SQS
            try:
                (result,) = self.queues.send(
                    name,
                    [
                        (
                            entry.get("MessageBody"),
                            entry.get("DelaySeconds"),
                            entry.get("MessageAttributes"),
                        )
                    ],
                )
                successful.append({"Id": entry["Id"], **result})
            except SqsError as e:
                if e.aws_type == "QueueDoesNotExist":
                    raise
                failed.append(_failure(entry["Id"], e))
        return {"Successful": successful, "Failed": failed}

    async def _receive_message(self, scope: Scope, body: Body) -> Body:
        name = _queue(body)
        limit = body.get("MaxNumberOfMessages", 1)
        if type(limit) is not int or not 1 <= limit <= MAX_BATCH:
            raise invalid(
                f"Value {limit} for parameter MaxNumberOfMessages is invalid. Reason: Must be "
                f"between 1 and {MAX_BATCH}, if provided."
            )
        wait = body.get("WaitTimeSeconds")
        if wait is not None and (type(wait) is not int or not 0 <= wait <= MAX_WAIT_S):
            raise invalid(
                f"Value {wait} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 "
                f"and <= {MAX_WAIT_S}, if provided."
            )
        visibility = body.get("VisibilityTimeout")
        if visibility is not None and (type(visibility) is not int or visibility < 0):
            raise invalid(f"Value {visibility} for parameter VisibilityTimeout is invalid.")
        system = [
            str(a)
            for a in [*(body.get("AttributeNames") or []),
                      *(body.get("MessageSystemAttributeNames") or [])]
        ]  # fmt: skip
        custom = [str(a) for a in body.get("MessageAttributeNames") or []]
        messages = await self.queues.receive(name, limit, visibility, wait)
        if not messages:
            return {}
        return {"Messages": [message_json(m, system, custom) for m in messages]}

    async def _delete_message(self, scope: Scope, body: Body) -> Body:
        receipt = _string(body, "ReceiptHandle")
        (found,) = self.queues.delete_messages(_queue(body), [receipt])
        if not found and not _looks_like_receipt(receipt):
            raise _bad_receipt(receipt)
        return {}

    async def _delete_message_batch(self, scope: Scope, body: Body) -> Body:
        name = _queue(body)
        entries = _entries(body)
        receipts = [str(e.get("ReceiptHandle", "")) for e in entries]
        found = self.queues.delete_messages(name, receipts)
        successful, failed = [], []
        for entry, receipt, ok in zip(entries, receipts, found, strict=True):
            if ok or _looks_like_receipt(receipt):
                successful.append({"Id": entry["Id"]})
            else:
                failed.append(_failure(entry["Id"], _bad_receipt(receipt)))
        return {"Successful": successful, "Failed": failed}

    async def _change_message_visibility(self, scope: Scope, body: Body) -> Body:
        receipt = _string(body, "ReceiptHandle")
        if not self.queues.change_visibility(_queue(body), receipt, body.get("VisibilityTimeout")):
            if not _looks_like_receipt(receipt):
                raise _bad_receipt(receipt)
            raise SqsError(
                "MessageNotInflight",
                "Message does not exist or is not available for visibility timeout change.",
                "AWS.SimpleQueueService.MessageNotInflight",
            )
        return {}


async def respond_error(send: Send, request_id: str, error: ServiceError) -> None:
    """An error as SQS's JSON protocol answers it (a signature refused, too)."""
    shape = error.aws_type.removesuffix("Exception") if error.status == 403 else error.aws_type
    query_code = getattr(error, "query_code", shape)
    body = {"__type": f"com.amazonaws.sqs#{shape}", "message": error.message}
    headers = [
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amzn-query-error", f"{query_code};Sender".encode()),
    ]
    await respond(send, error.status, json.dumps(body).encode(), CONTENT_TYPE, headers)


def _body(raw: bytes) -> Body:
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SqsError("InvalidParameterValue", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise SqsError("InvalidParameterValue", "The request body must be a JSON object.")
    return data


def _string(body: Body, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise SqsError(
            "MissingParameter",
            f"The request must contain the parameter {key}.",
            "MissingParameter",
        )
    return value


def _queue(body: Body) -> str:
    """The queue a QueueUrl names (its last path segment)."""
    return _string(body, "QueueUrl").rstrip("/").rsplit("/", 1)[-1]


def _entries(body: Body) -> list[Body]:
    entries = body.get("Entries")
    if not isinstance(entries, list) or not entries:
        raise SqsError(
            "EmptyBatchRequest",
            "There should be at least one SendMessageBatchRequestEntry in the request.",
            "AWS.SimpleQueueService.EmptyBatchRequest",
        )
    if len(entries) > MAX_BATCH:
        raise SqsError(
            "TooManyEntriesInBatchRequest",
            f"Maximum number of entries per request are {MAX_BATCH}. You have sent {len(entries)}.",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        )
    ids = [e.get("Id") if isinstance(e, dict) else None for e in entries]
    if any(not isinstance(i, str) or not i for i in ids):
        raise SqsError(
            "InvalidBatchEntryId",
            "A batch entry id must be a non-empty string.",
            "AWS.SimpleQueueService.InvalidBatchEntryId",
        )
    if len(set(ids)) != len(ids):
        raise SqsError(
            "BatchEntryIdsNotDistinct",
            "Two or more batch entries in the request have the same Id.",
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        )
    return entries


def _failure(entry_id: str, error: SqsError) -> Body:
    return {"Id": entry_id, "SenderFault": True, "Code": error.aws_type, "Message": error.message}


def _looks_like_receipt(receipt: str) -> bool:
    return len(receipt) == 48 and all(c in "0123456789abcdef" for c in receipt)


def _bad_receipt(receipt: str) -> SqsError:
    return SqsError(
        "ReceiptHandleIsInvalid",
        f'The input receipt handle "{receipt}" is not a valid receipt handle.',
        "ReceiptHandleIsInvalid",
    )


def _url(scope: Scope, name: str) -> str:
    host = header(scope, b"host") or "localhost"
    return f"http://{host}/{ACCOUNT_ID}/{name}"
