"""The Runtime API's endpoints (2018-06-01): what each request is for, the headers of
`/next`, and a runtime's error posts as Lambda's error object. No I/O; stdlib only."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from faasbox.execution.process.runtime_api.http import HttpError, Request

API_PREFIX = "/2018-06-01/runtime/"
PAYLOAD_LIMIT = 6 * 1024 * 1024  # Lambda's synchronous payload limit (registry.models)
STREAM_LIMIT = 20 * 1024 * 1024  # a streamed response's cap (Lambda's first documented one)
ACCEPTED = b'{"status":"OK"}'
RESPONSE_MODE = "lambda-runtime-function-response-mode"
ERROR_TYPE = "lambda-runtime-function-error-type"
ERROR_BODY = "lambda-runtime-function-error-body"


class Invocation:
    """One INVOKE, from the frame to the runtime's answer."""

    __slots__ = ("answering", "event", "header", "request_id", "started", "streaming")

    def __init__(self, request_id: str, header: dict[str, Any], event: bytes) -> None:
        self.request_id = request_id
        self.header = header
        self.event = event
        self.started = 0.0  # when the runtime got it
        self.answering = False  # a /response or /error for it is being read
        self.streaming = False  # the runtime answers in streaming mode


class Route:
    """What a request on a connection is for, once its head is read."""

    __slots__ = ("body", "forward", "invocation", "kind", "streaming")

    def __init__(
        self,
        kind: str,  # next | response | error | init_error
        invocation: Invocation | None = None,
        forward: bool = False,  # pass the body on as RESULT_CHUNKs as it arrives
        streaming: bool = False,  # Lambda-Runtime-Function-Response-Mode: streaming
    ) -> None:
        self.kind = kind
        self.invocation = invocation
        self.forward = forward
        self.streaming = streaming
        self.body = bytearray()


def error_document(body: bytes, error_type: str | None) -> dict[str, Any]:
    """A runtime's error post as Lambda's error object (non-JSON bodies become the message)."""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        doc = {"errorMessage": body.decode("utf-8", "replace"), "errorType": error_type}
    if error_type and not doc.get("errorType"):
        doc["errorType"] = error_type
    doc.setdefault("errorType", "Runtime.Unknown")
    return doc


def header_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("\r", "").replace("\n", "")


def trace_id() -> str:
    """An X-Ray trace header, as Lambda sends one with every invocation."""
    random = os.urandom(20).hex()  # one read for both ids
    return f"Root=1-{int(time.time()):08x}-{random[:24]};Parent={random[24:]};Sampled=0"


def next_headers(invocation: Invocation, function_arn: str) -> list[tuple[str, str]]:
    """The headers of the `/next` response that hands `invocation` to the runtime."""
    header = invocation.header
    headers = [
        ("Lambda-Runtime-Aws-Request-Id", header_value(invocation.request_id)),
        ("Lambda-Runtime-Deadline-Ms", str(int(header["deadline_ms"]))),
        (
            "Lambda-Runtime-Invoked-Function-Arn",
            header_value(header.get("invoked_arn") or function_arn),
        ),
        ("Lambda-Runtime-Trace-Id", header_value(header.get("trace_id") or trace_id())),
    ]
    if header.get("client_context"):
        headers.append(("Lambda-Runtime-Client-Context", header_value(header["client_context"])))
    if header.get("identity"):
        headers.append(("Lambda-Runtime-Cognito-Identity", header_value(header["identity"])))
    return headers


def route_of(
    request: Request, ready: bool, current: Invocation | None, answered: str
) -> tuple[Route, int]:
    """What the request is for and how much body it may have; raises HttpError."""
    path = request.path
    if not path.startswith(API_PREFIX):
        raise HttpError(404, "InvalidURL", f"no such path {path[:200]}; the API is {API_PREFIX}")
    rest = path[len(API_PREFIX) :]
    if rest == "invocation/next":
        _need(request, "GET")
        return Route("next"), 0
    if rest == "init/error":
        _need(request, "POST")
        if ready:
            raise HttpError(403, "InvalidStateTransition", "INIT is over: no /init/error")
        return Route("init_error"), PAYLOAD_LIMIT
    parts = rest.split("/")
    if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
        _need(request, "POST")
        invocation = current
        if invocation is None or parts[1] != invocation.request_id or invocation.answering:
            if invocation is not None and parts[1] == invocation.request_id:
                raise HttpError(403, "InvalidStateTransition", "already being answered")
            if parts[1] == answered:
                raise HttpError(403, "InvalidStateTransition", "the invocation was answered")
            raise HttpError(400, "InvalidRequestID", "Invalid request ID")
        if parts[2] == "error":
            return Route("error", invocation), PAYLOAD_LIMIT
        streaming = request.headers.get(RESPONSE_MODE, "").lower() == "streaming"
        forward = streaming and bool(invocation.header.get("stream"))
        limit = STREAM_LIMIT if forward else PAYLOAD_LIMIT
        return Route("response", invocation, forward, streaming), limit
    raise HttpError(404, "InvalidURL", f"no such path {path[:200]}")


def _need(request: Request, method: str) -> None:
    if request.method != method:
        raise HttpError(405, "InvalidRequest", f"{request.path} takes {method}")
