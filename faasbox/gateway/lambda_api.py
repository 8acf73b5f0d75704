"""The Lambda Invoke API: POST /2015-03-31/functions/{name}/invocations, as boto3 calls it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote

from faasbox.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    RequestTooLarge,
    ServiceError,
)
from faasbox.execution.invoker import Invoker
from faasbox.gateway.http import Scope, Send, header, respond
from faasbox.lambda_.limits import ASYNC_PAYLOAD_LIMIT
from faasbox.registry import Registry
from faasbox.registry.models import split_function_name

log = logging.getLogger("faasbox.gateway")

INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
LOG_TAIL_BYTES = 4096


class InvokeApi:
    def __init__(self, registry: Registry, invoker: Invoker) -> None:
        self.registry = registry
        self.invoker = invoker
        self._background: set[asyncio.Task[Any]] = set()

    async def __call__(
        self, scope: Scope, send: Send, name: str, request_id: str, payload: bytes
    ) -> None:
        """Invoke; `payload` was read (and authenticated) by the gateway within 6 MB."""
        name = unquote(name)
        query = parse_qs(scope["query_string"].decode("latin-1"))
        qualifier = query.get("Qualifier", [None])[0]
        invocation_type = header(scope, b"x-amz-invocation-type") or "RequestResponse"
        if invocation_type not in INVOCATION_TYPES:
            raise InvalidParameterValue(
                f"1 validation error detected: Value '{invocation_type}' at 'invocationType' "
                "failed to satisfy constraint: Member must satisfy enum value set: "
                "[Event, RequestResponse, DryRun]"
            )
        fn = self.registry.get(name, qualifier)
        if invocation_type == "Event" and len(payload) > ASYNC_PAYLOAD_LIMIT:
            raise RequestTooLarge(too_large_message(ASYNC_PAYLOAD_LIMIT))
        _check_json(payload)
        client_context = _client_context(header(scope, b"x-amz-client-context"))
        # As invoked: qualified when the caller named a version (Qualifier, or NAME:1).
        qualifier = qualifier or split_function_name(name)[1]
        invoked_arn = fn.arn if qualifier is None else f"{fn.arn}:{qualifier}"
        base_headers = [(b"x-amzn-requestid", request_id.encode())]

        if invocation_type == "DryRun":
            await respond(send, 204, b"", None, base_headers)
            return
        if invocation_type == "Event":
            task = asyncio.get_running_loop().create_task(
                self._run_event(
                    fn.name, qualifier, payload, request_id, invoked_arn, client_context
                )
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
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

    async def _run_event(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        request_id: str,
        invoked_arn: str,
        client_context: dict[str, Any] | None,
    ) -> None:
        try:
            fn = self.registry.get(name, qualifier)
            result = await self.invoker.invoke(
                fn,
                payload,
                request_id=request_id,
                invoked_arn=invoked_arn,
                client_context=client_context,
            )
            if result.function_error:
                log.info(
                    "async invocation %s of %s failed: %s", request_id, name, result.error_type
                )
        except ServiceError as e:
            log.warning("async invocation %s of %s not run: %s", request_id, name, e.message)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


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
    return str(uuid.uuid4())
