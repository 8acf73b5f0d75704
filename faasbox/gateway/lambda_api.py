"""The Lambda Invoke API, as boto3 calls it: POST /2015-03-31/functions/{name}/invocations,
and InvokeWithResponseStream, POST /2021-11-15/functions/{name}/response-streaming-invocations."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from faasbox.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    RequestTooLarge,
)
from faasbox.events.dispatcher import EventQueue
from faasbox.execution.invoker import Invoker
from faasbox.gateway import eventstream
from faasbox.gateway.http import Scope, Send, header, respond
from faasbox.lambda_ import ids
from faasbox.lambda_.limits import ASYNC_PAYLOAD_LIMIT
from faasbox.registry import Registry
from faasbox.registry.models import DeployedFunction, split_function_name

INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")  # in the order AWS lists them
STREAM_INVOCATION_TYPES = ("RequestResponse", "DryRun")
LOG_TAIL_BYTES = 4096
EVENT_STREAM = b"application/vnd.amazon.eventstream"
STREAM_EVENT_BYTES = 1 << 20  # a PayloadChunk's payload at most (the encoding allows 16 MB)


@dataclass(frozen=True, slots=True)
class Call:
    """What an Invoke request asks for, checked."""

    invocation_type: str
    fn: DeployedFunction
    qualifier: str | None  # as invoked: the caller's Qualifier, or the version in NAME:1
    invoked_arn: str
    client_context: dict[str, Any] | None


class InvokeApi:
    def __init__(self, registry: Registry, invoker: Invoker, events: EventQueue) -> None:
        self.registry = registry
        self.invoker = invoker
        self.events = events

    async def __call__(
        self, scope: Scope, send: Send, name: str, request_id: str, payload: bytes
    ) -> None:
        """Invoke; `payload` was read (and authenticated) by the gateway within 6 MB."""
        call = self._call(scope, name, payload, INVOCATION_TYPES)
        invocation_type, fn, qualifier = call.invocation_type, call.fn, call.qualifier
        client_context, invoked_arn = call.client_context, call.invoked_arn
        base_headers = [(b"x-amzn-requestid", request_id.encode())]

        if invocation_type == "DryRun":
            await respond(send, 204, b"", None, base_headers)
            return
        if invocation_type == "Event":
            # Committed to the durable queue before the 202: accepted means it will run.
            self.events.enqueue(
                fn.name,
                qualifier,
                payload,
                source="lambda-api",
                request_id=request_id,
                invoked_arn=invoked_arn,
                client_context=client_context,
            )
            await respond(send, 202, b"", None, base_headers)
            return

        result = await self.invoker.invoke(
            fn,
            payload,
            request_id=request_id,
            invoked_arn=invoked_arn,
            client_context=client_context,
        )
        headers = [*base_headers, (b"x-amz-executed-version", result.version.encode())]
        if result.function_error:
            headers.append((b"x-amz-function-error", result.function_error.encode()))
        if (header(scope, b"x-amz-log-type") or "").lower() == "tail":
            tail = result.log.encode()[-LOG_TAIL_BYTES:]
            headers.append((b"x-amz-log-result", base64.b64encode(tail)))
        await respond(send, 200, result.payload, b"application/json", headers)

    def _call(self, scope: Scope, name: str, payload: bytes, allowed: tuple[str, ...]) -> Call:
        """The function, invocation type and context an Invoke request names, or the AWS
        error for what is wrong with it."""
        name = unquote(name)
        query = parse_qs(scope["query_string"].decode("latin-1"))
        qualifier = query.get("Qualifier", [None])[0]
        invocation_type = header(scope, b"x-amz-invocation-type") or "RequestResponse"
        if invocation_type not in allowed:
            raise InvalidParameterValue(
                f"1 validation error detected: Value '{invocation_type}' at 'invocationType' "
                "failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(allowed)}]"
            )
        fn = self.registry.get(name, qualifier)
        if invocation_type == "Event" and len(payload) > ASYNC_PAYLOAD_LIMIT:
            raise RequestTooLarge(too_large_message(ASYNC_PAYLOAD_LIMIT))
        _check_json(payload)
        client_context = _client_context(header(scope, b"x-amz-client-context"))
        # As invoked: qualified when the caller named a version (Qualifier, or NAME:1).
        qualifier = qualifier or split_function_name(name)[1]
        invoked_arn = fn.arn if qualifier is None else f"{fn.arn}:{qualifier}"
        return Call(invocation_type, fn, qualifier, invoked_arn, client_context)

    async def stream(
        self, scope: Scope, send: Send, name: str, request_id: str, payload: bytes
    ) -> None:
        """InvokeWithResponseStream: the response as an event stream of PayloadChunks (sent
        as the function makes them, for a function that streams; else its whole result in
        one) ended by InvokeComplete, which carries the error of a failed invocation."""
        call = self._call(scope, name, payload, STREAM_INVOCATION_TYPES)
        fn, client_context, invoked_arn = call.fn, call.client_context, call.invoked_arn
        invocation_type = call.invocation_type
        base_headers = [(b"x-amzn-requestid", request_id.encode())]
        if invocation_type == "DryRun":
            await respond(send, 204, b"", None, base_headers)
            return
        response = EventStreamResponse(
            send, [*base_headers, (b"x-amz-executed-version", fn.version.encode())]
        )
        result = await self.invoker.invoke(  # throttling raises before anything is sent
            fn,
            payload,
            request_id=request_id,
            invoked_arn=invoked_arn,
            client_context=client_context,
            stream=response.chunk,
        )
        if not result.streamed and not result.function_error:
            await response.chunk(result.payload)
        tail = None
        if (header(scope, b"x-amz-log-type") or "").lower() == "tail":
            tail = base64.b64encode(result.log.encode()[-LOG_TAIL_BYTES:]).decode()
        error_code = error_details = None
        if result.function_error:
            error_code = result.error_type or result.function_error
            error_details = _error_message(result.payload)
        await response.complete(eventstream.invoke_complete(error_code, error_details, tail))


class EventStreamResponse:
    """The HTTP response of InvokeWithResponseStream, started at its first event."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        self._send = send
        self._headers = headers
        self._started = False
        self._gone = False  # the caller went away: the function still runs to its end

    async def _write(self, data: bytes, more: bool) -> None:
        if self._gone:
            return
        try:
            if not self._started:
                self._started = True
                await self._send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", EVENT_STREAM), *self._headers],
                    }
                )
            await self._send({"type": "http.response.body", "body": data, "more_body": more})
        except OSError:  # a disconnect mid-stream (the server's transport says so)
            self._gone = True

    async def chunk(self, data: bytes) -> None:
        for start in range(0, max(len(data), 1), STREAM_EVENT_BYTES):
            await self._write(
                eventstream.payload_chunk(data[start : start + STREAM_EVENT_BYTES]), True
            )

    async def complete(self, event: bytes) -> None:
        await self._write(event, False)


def _error_message(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")
    message = doc.get("errorMessage") if isinstance(doc, dict) else None
    if isinstance(message, str):
        return message
    return payload.decode("utf-8", "replace")


def too_large_message(limit: int) -> str:
    return f"Request must be smaller than {limit} bytes for the InvokeFunction operation"


def _check_json(payload: bytes) -> None:
    if not payload.strip():
        return
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidRequestContent(
            f"Could not parse request body into json: Could not parse payload into json: {e}"
        ) from None


def _client_context(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, RecursionError) as e:
        raise InvalidRequestContent(f"Client context must be base64-encoded JSON: {e}") from None
    if not isinstance(data, dict):
        raise InvalidRequestContent("Client context must be a JSON object")
    return data


def new_request_id() -> str:
    return ids.uuid4()
