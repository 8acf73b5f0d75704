"""The direct channel from a gateway to one host actor: invocations over TCP, not Ray calls.

A Ray actor call costs more than the whole hop may (about 1.1 ms at p50 on a 2-core box),
so once an environment is placed, its invocations skip Ray: the host actor listens on its
node's address (port 0) and the gateway that created it connects once and sends each
invocation as a frame of the worker protocol (faasbox.execution.process.protocol: a
prefix, a JSON header, the payload untouched as the body); the Outcome comes back the same
way. Ray still places, provisions, stops and watches the actor.

Only that gateway may use it: the gateway makes a random secret per actor and gives it in
the actor's constructor (over Ray's own channel); a connection's first bytes must be that
secret (compared in constant time) before any frame is read, else it is closed, unanswered.

    gateway -> host: SECRET (32 bytes), then CALL frames, one at a time
    host -> gateway: ACCEPTED (1 byte) after the secret, then per CALL: CHUNK frames (a
                     response streamed as it is made, InvokeWithResponseStream), one OUTCOME
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from faasbox.execution.api import Invocation, Outcome, StreamSink
from faasbox.execution.process import protocol

log = logging.getLogger("faasbox.execution")

SECRET_BYTES = 32
ACCEPTED = b"\x01"
CALL = 20  # header: the invocation's fields but its function and payload; body: the payload
OUTCOME = 21  # header: the Outcome's fields and `payload_len`; body: payload + output (UTF-8)
CHUNK = 22  # header: {}; body: the next bytes of a streamed response (a CALL with "stream")
# A client that has not sent its secret by then is closed (a port scan holds nothing open).
AUTH_TIMEOUT_S = 10.0
# Bodies beyond this are refused (a 6 MB sync payload, base64 in an event, fits many times).
MAX_BODY = 256 << 20
# Payloads this large are written apart from their header instead of copied onto it.
COPY_LIMIT = 64 << 10

RunCall = Callable[[dict[str, Any], bytes, StreamSink | None], Awaitable[Outcome]]


class ChannelClosed(ConnectionError):
    """The host actor's end went away (it or its node died), or sent something unreadable."""


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _write(writer: asyncio.StreamWriter, kind: int, header: dict[str, Any], body: bytes) -> None:
    if len(body) < COPY_LIMIT:
        writer.write(protocol.encode(kind, header, body))
        return
    head = json.dumps(header, separators=(",", ":")).encode()
    writer.write(protocol.PREFIX.pack(kind, len(head), len(body)) + head)
    writer.write(body)  # not copied onto its header


async def _read(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any], bytes]:
    kind, head_len, body_len = protocol.decode_header(
        await reader.readexactly(protocol.PREFIX.size)
    )
    if body_len > MAX_BODY:
        raise protocol.ProtocolError(f"frame body of {body_len} bytes is over the limit")
    header = json.loads(await reader.readexactly(head_len)) if head_len else {}
    body = await reader.readexactly(body_len) if body_len else b""
    return kind, header, body


# -- the host actor's end ---------------------------------------------------------------------


class ChannelServer:
    """Listens on the node for its gateway; runs each CALL with `run` and answers its Outcome."""

    def __init__(self, secret: bytes, run: RunCall) -> None:
        self.secret = secret
        self.run = run
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[asyncio.StreamWriter] = set()

    async def start(self, host: str) -> int:
        """Listen on `host` (the node's address as Ray knows it); the port it got."""
        self.server = await asyncio.start_server(self._serve, host, 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_S):
                offered = await reader.readexactly(SECRET_BYTES)
            if not hmac.compare_digest(offered, self.secret):
                log.warning("channel: a client without this actor's secret was refused")
                return
            _no_delay(writer)
            writer.write(ACCEPTED)

            async def send_chunk(chunk: bytes) -> None:
                _write(writer, CHUNK, {}, chunk)
                await writer.drain()

            while True:
                kind, header, body = await _read(reader)
                if kind != CALL:
                    raise protocol.ProtocolError(f"unexpected frame kind {kind}")
                outcome = await self.run(header, body, send_chunk if header["stream"] else None)
                _write(writer, OUTCOME, outcome_header(outcome), outcome_body(outcome))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the gateway went away (or never said who it is)
        except Exception:
            log.exception("channel: closing a connection after an error")
        finally:
            self.connections.discard(writer)
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.connections):
            writer.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.server.wait_closed()


def call_header(invocation: Invocation) -> dict[str, Any]:
    return {
        "request_id": invocation.request_id,
        "invoked_arn": invocation.invoked_arn,
        "client_context": invocation.client_context,
        "identity": invocation.identity,
        "http_event": invocation.http_event,
        "trace_id": invocation.trace_id,
        "stream": invocation.stream is not None,
    }


def outcome_header(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "payload_len": len(outcome.payload),
        "duration_ms": outcome.duration_ms,
        "max_memory_mb": outcome.max_memory_mb,
        "cold": outcome.cold,
        "init_ms": outcome.init_ms,
        "streamed": outcome.streamed,
    }


def outcome_body(outcome: Outcome) -> bytes:
    # surrogatepass: any str survives the trip, as a pickled Outcome did.
    return outcome.payload + outcome.output.encode("utf-8", "surrogatepass")


def outcome_of(header: dict[str, Any], body: bytes) -> Outcome:
    split = int(header["payload_len"])
    return Outcome(
        status=header["status"],
        payload=body[:split],
        output=body[split:].decode("utf-8", "surrogatepass"),
        duration_ms=header["duration_ms"],
        max_memory_mb=header["max_memory_mb"],
        cold=header["cold"],
        init_ms=header["init_ms"],
        streamed=header["streamed"],
    )


# -- the gateway's end -----------------------------------------------------------------------


class Channel:
    """The gateway's connection to one host actor; one invocation at a time (as its pool
    hands the environment to one caller at a time)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, address: str, port: int, secret: bytes) -> Channel:
        reader, writer = await asyncio.open_connection(address, port)
        _no_delay(writer)
        writer.write(secret)
        try:
            if await reader.readexactly(len(ACCEPTED)) != ACCEPTED:
                raise ChannelClosed(f"the host actor at {address}:{port} refused the channel")
        except asyncio.IncompleteReadError:
            writer.close()
            raise ChannelClosed(
                f"the host actor at {address}:{port} closed the channel at once"
            ) from None
        return cls(reader, writer)

    @property
    def closed(self) -> bool:
        return self.writer.is_closing() or self.reader.at_eof()

    async def call(self, invocation: Invocation) -> Outcome:
        """The invocation's Outcome as the host made it; ChannelClosed if the host went away."""
        try:
            _write(self.writer, CALL, call_header(invocation), invocation.payload)
            await self.writer.drain()
            kind, header, body = await _read(self.reader)
            while kind == CHUNK and invocation.stream is not None:
                await invocation.stream(body)
                kind, header, body = await _read(self.reader)
        except (asyncio.IncompleteReadError, ConnectionError, protocol.ProtocolError) as e:
            self.close()
            raise ChannelClosed(str(e) or type(e).__name__) from None
        if kind != OUTCOME:
            self.close()
            raise ChannelClosed(f"unexpected frame kind {kind} from the host actor")
        return outcome_of(header, body)

    def close(self) -> None:
        """Drop the connection now: a call waiting on it fails with ChannelClosed."""
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()
