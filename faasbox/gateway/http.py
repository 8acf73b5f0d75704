"""Small ASGI helpers: read a bounded body, send a response, AWS-shaped errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from faasbox.errors import RequestTooLarge, ServiceError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
FILE_CHUNK = 1 << 20  # a file is read and sent a MiB at a time, off the event loop


class ClientDisconnected(Exception):
    pass


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int, too_large: str) -> bytes:
    """The whole request body; RequestTooLarge as soon as it is known to exceed `limit`."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(too_large)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: bytes | None = JSON,
    headers: Headers | None = None,
) -> None:
    out: Headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None and (body or status != 204):
        out.append((b"content-type", content_type))
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_file(
    send: Send, path: Path, size: int, content_type: bytes, headers: Headers
) -> None:
    """A file of `size` bytes (a deployment package), streamed: never whole in memory."""
    out: Headers = [
        *headers,
        (b"content-type", content_type),
        (b"content-length", str(size).encode()),
    ]
    with path.open("rb") as f:
        await send({"type": "http.response.start", "status": 200, "headers": out})
        while chunk := await asyncio.to_thread(f.read, FILE_CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def respond_json(send: Send, status: int, data: Any, headers: Headers | None = None) -> None:
    await respond(send, status, json.dumps(data).encode(), JSON, headers)


async def respond_aws_error(send: Send, error: ServiceError, request_id: str) -> None:
    """An error as the Lambda API answers it: x-amzn-ErrorType plus {Type, Message}."""
    body: dict[str, Any] = {"Type": "User", "Message": error.message, "message": error.message}
    reason = getattr(error, "reason", None)
    if reason:
        body["Reason"] = reason
    await respond_json(
        send,
        error.status,
        body,
        [
            (b"x-amzn-errortype", error.aws_type.encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ],
    )
