"""The floor of process isolation for the warm-overhead bench: bench/bare_asgi.py's hello, but
every request makes one round trip to a second Python process, the least faasbox's gateway and
worker do per invocation: one frame out over a Unix socket (faasbox's own framing,
faasbox.execution.process.protocol), the other process wakes, decodes it, `json.loads` the
event, `json.dumps` a result and sends one frame back, and the server wakes to answer.

No routing, no event building, no pool, no logs, no timeout, no jail: what this costs over the
bare hello is the price of crossing to another process and back on this machine, which no
work inside faasbox can remove.

    python bench/bare_roundtrip.py PORT
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.bare_stack import respond, serve
from faasbox.execution.process import protocol

BODY = b'{"message": "Hello"}'
EVENT = json.dumps({"rawPath": "/hello", "requestContext": {"http": {"method": "GET"}}}).encode()


def answer(sock: socket.socket, body: bytes) -> None:
    """The second process's work per frame (bench.worker_loop --floor times it alone)."""
    json.loads(body)
    out = json.dumps({"statusCode": 200, "body": BODY.decode()}).encode()
    protocol.send_frame(sock, protocol.RESULT, {"ok": True}, out)


def serve_worker(sock: socket.socket) -> None:
    """The second process: blocking reads through a buffered reader, as faasbox's worker."""
    frames: Any = sock.makefile("rb", buffering=1 << 16)
    while True:
        try:
            _, _, body = protocol.read_frame(frames)
        except protocol.ProtocolError:
            os._exit(0)
        answer(sock, body)


class Channel(asyncio.Protocol):
    """The server's end: whole frames to one waiter (one request at a time on this socket)."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) < protocol.PREFIX.size:
            return
        _, head_len, body_len = protocol.decode_header(bytes(self.buffer[: protocol.PREFIX.size]))
        end = protocol.PREFIX.size + head_len + body_len
        if len(self.buffer) >= end and self.waiter is not None:
            body = bytes(self.buffer[protocol.PREFIX.size + head_len : end])
            del self.buffer[:end]
            self.waiter.set_result(body)


class Pool:
    """One worker process per concurrent request, as faasbox scales a function's workers."""

    def __init__(self, worker: Callable[[socket.socket], None]) -> None:
        """`worker`: what a forked process serves its socket with (it never returns)."""
        self.worker = worker
        self.idle: list[Channel] = []

    async def take(self) -> Channel:
        if self.idle:
            return self.idle.pop()
        ours, theirs = socket.socketpair()
        if os.fork() == 0:
            ours.close()
            self.worker(theirs)
        theirs.close()
        _, channel = await asyncio.get_running_loop().create_unix_connection(Channel, sock=ours)
        return channel


POOL = Pool(serve_worker)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    channel = await POOL.take()
    channel.waiter = asyncio.get_running_loop().create_future()
    channel.transport.write(
        protocol.encode(protocol.INVOKE, {"request_id": "r", "deadline_ms": 0}, EVENT)
    )
    result = json.loads(await channel.waiter)
    POOL.idle.append(channel)
    body = result["body"].encode()
    await respond(send, b"application/json", body)


if __name__ == "__main__":
    serve(app)
