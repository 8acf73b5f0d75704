"""One send per response: a transport that holds a write until the next one (or the end of
the event-loop turn) and sends them together.

uvicorn writes a response's head and its body with two `transport.write` calls, so each
response is two `send`s, two TCP segments, and two wake-ups of the client, which reads the
head, finds no body and sleeps again. On loopback the first `send` also runs the client's
receive path and often hands it the CPU mid-response. The head held until the body's write
and both sent with one `writelines` (uvloop: one `writev`, no copy), a response costs one of
each; a write that no other follows in its turn goes out at the end of the turn.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport(asyncio.Transport):
    """Wraps a connection's transport; everything but `write` passes straight through."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._held.append(bytes(data))  # a head, most likely: its body comes next
            self._loop.call_soon(self.flush)  # or at the end of this turn, whatever comes
            return
        self._held.append(bytes(data))
        self.flush()  # the head and its body: out now, without waiting for the turn's end

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        if not self._held:
            return
        held, self._held = self._held, []
        if not self._transport.is_closing():
            self._transport.writelines(held)

    def close(self) -> None:
        self.flush()  # what was written goes out before the FIN
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()
