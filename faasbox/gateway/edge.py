"""HTTP limits at the edge: what a client may cost the server before its request is served.

uvicorn (httptools) gives a keep-alive timeout and a concurrency limit, set from EdgeLimits
(faasbox.gateway.edge_limits) by faasbox.gateway.server. It has no header read timeout, no
bound on the size of a request's head (httptools buffers a header of any size, a 168 MB one
was seen) and no cap on connections (per server, per client address) that refuses the excess
at once. EdgeProtocol
adds those to uvicorn's httptools protocol, in the protocol itself so they cost nothing per
request beyond a timer per connection:

- a deadline from when a request's first byte is awaited (the connection is made, or bytes of
  a next request arrive on a kept-alive connection) to the end of its head: a 408 and a close
  at `header_timeout_s`, however slowly the head trickles in;
- the head's bytes counted as they arrive: over `max_header_bytes` in all, a 431 and a close,
  checked as each header is parsed and after each chunk of a head still incomplete, so at
  most one chunk more (uvloop reads 256 KB) is ever held;
  a request line or a header line over `max_header_line_bytes`: 414 or 431;
- a body deadline pushed back by each chunk of the body: a client that sends nothing for
  `body_timeout_s` while the function waits for its body is disconnected (not while the
  server itself stopped reading, the flow control's pause);
- connections over `max_connections`, or over `max_connections_per_client` from one address,
  answered 503 and closed as they are accepted, before anything is read.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from faasbox.gateway.coalesce import CoalescingTransport
from faasbox.gateway.edge_limits import DEFAULT_MAX_CONNECTIONS, EdgeLimits

log = logging.getLogger("faasbox.gateway")


HEAD = "head"
BODY = "body"


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that was answered already."""


def edge_protocol(limits: EdgeLimits, max_connections: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the limits, for one server (the per-client counts
    are shared by its connections)."""

    class Protocol(EdgeProtocol):
        pass

    Protocol.limits = limits
    Protocol.max_connections = max_connections
    Protocol.per_client = Counter()
    return Protocol


class EdgeProtocol(HttpToolsProtocol):
    limits: ClassVar[EdgeLimits] = EdgeLimits()
    max_connections: ClassVar[int] = DEFAULT_MAX_CONNECTIONS
    per_client: ClassVar[Counter[str]] = Counter()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One watchdog timer per connection, re-armed only when it fires early or a sooner
        # deadline appears: no timer is created or cancelled per request on a busy connection.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._phase: str | None = None  # HEAD or BODY: what the server awaits from the client
        self._since = 0.0  # when that began, or (BODY) when the last chunk came
        self._reading_head = True
        self._head_bytes = 0  # received while the head is incomplete, counted per chunk
        self._head_size = 0  # of the head's parts as parsed
        self._refused = False
        self._peer: str | None = None  # counted in per_client

    # --- connections ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A response's head and body in one send (faasbox.gateway.coalesce); flow control
        # keeps the real transport.
        self.transport = CoalescingTransport(transport, self.loop)
        peer = self.client[0] if self.client else ""
        if len(self.connections) > self.max_connections:
            self._refuse(503, "The server has too many open connections; try again shortly.")
            return
        if self.per_client[peer] >= self.limits.max_connections_per_client:
            self._refuse(503, "Too many open connections from your address.")
            return
        self._peer = peer
        self.per_client[peer] += 1
        self._await(HEAD)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._peer is not None:
            self.per_client[self._peer] -= 1
            if self.per_client[self._peer] <= 0:
                del self.per_client[self._peer]
            self._peer = None
        super().connection_lost(exc)

    # --- bytes in ---

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._phase is None and self._idle():
            # The first bytes of a next request on a kept-alive connection.
            self._reading_head, self._head_bytes = True, 0
            self._await(HEAD)
        elif self._phase == BODY:
            self._since = self.loop.time()  # progress
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused:  # a limit answered it from a parser callback
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:  # as uvicorn does
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        if self._reading_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_head_size()

    def _refuse_head_size(self) -> None:
        self._refuse(431, f"The request's headers are over {self.limits.max_header_bytes} bytes.")

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    # --- parser callbacks ---

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_bytes = 0
        self._head_size = 0
        if self._phase is None:  # a request pipelined behind another
            self._await(HEAD)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)
        if len(self.url) > self.limits.max_header_line_bytes:
            self._refuse(414, f"The URL is over {self.limits.max_header_line_bytes} bytes.")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > self.limits.max_header_line_bytes:
            self._refuse(431, f"A header line is over {self.limits.max_header_line_bytes} bytes.")
            raise _Refused
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_size > self.limits.max_header_bytes:
            self._refuse_head_size()
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._await(BODY)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = None
        super().on_message_complete()

    # --- timers and refusals ---

    def _await(self, phase: str) -> None:
        """The server now waits for the client's head or body, from now on."""
        self._phase, self._since = phase, self.loop.time()
        self._watch_at(self._since + self._timeout(phase))

    def _timeout(self, phase: str) -> float:
        return self.limits.header_timeout_s if phase == HEAD else self.limits.body_timeout_s

    def _watch_at(self, when: float) -> None:
        if self._timer is not None and self._timer_at <= when:
            return  # it fires sooner and re-arms for what is left
        self._disarm()
        self._timer, self._timer_at = self.loop.call_at(when, self._watchdog), when

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _watchdog(self) -> None:
        self._timer = None
        if self._phase is None or self.transport.is_closing():
            return
        limit = self._timeout(self._phase)
        now = self.loop.time()
        if now < self._since + limit:
            self._watch_at(self._since + limit)
        elif self._phase == HEAD:
            self._refuse(408, f"The request's headers were not received within {limit:g} s.")
        elif self.flow.read_paused:  # the server is not reading: not the client's delay
            self._since = now
            self._watch_at(now + limit)
        else:
            # The function may be waiting for the body: it sees the client disconnect.
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with `message` (plain text) and close the connection."""
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        body = message.encode()
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()
