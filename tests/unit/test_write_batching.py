"""Unit tests of the writes batched per event-loop turn: the access log's lines and a
response's head and body (faasbox.cli.access_log, faasbox.gateway.coalesce)."""

from __future__ import annotations

import asyncio
import io
import logging
import re

from faasbox.cli.access_log import BatchedStreamHandler, _UtcFormatter
from faasbox.gateway.coalesce import CoalescingTransport


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(stream: CountingStream) -> logging.Logger:
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(_UtcFormatter())
    logger = logging.getLogger(f"test-batching-{id(stream)}")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def test_access_lines_of_one_loop_turn_are_one_write_before_the_loop_waits() -> None:
    stream = CountingStream()
    logger = _logger(stream)

    async def main() -> str:
        for n in range(3):
            logger.info("line %d", n)
        assert stream.getvalue() == ""  # held until the end of this turn
        await asyncio.sleep(0)
        return stream.getvalue()

    text = asyncio.run(main())
    assert stream.writes == 1
    lines = text.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["line 0", "line 1", "line 2"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z line \d", x) for x in lines)


def test_access_lines_outside_a_loop_are_written_at_once() -> None:
    stream = CountingStream()
    _logger(stream).info("from a thread")
    assert stream.getvalue().endswith(" from a thread\n")


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sends: list[bytes] = []
        self.closed = False

    def writelines(self, list_of_data: object) -> None:
        self.sends.append(b"".join(list_of_data))  # type: ignore[arg-type]

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sends.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_a_head_and_its_body_go_out_in_one_send() -> None:
    async def main() -> RecordingTransport:
        inner = RecordingTransport()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        assert inner.sends == []
        transport.write(b"ok")
        return inner

    assert asyncio.run(main()).sends == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]


def test_a_lone_write_goes_out_at_the_end_of_the_turn_and_before_a_close() -> None:
    async def main() -> tuple[list[bytes], list[bytes]]:
        loop = asyncio.get_running_loop()
        alone, closing = RecordingTransport(), RecordingTransport()
        CoalescingTransport(alone, loop).write(b"chunk")
        await asyncio.sleep(0)
        wrapped = CoalescingTransport(closing, loop)
        wrapped.write(b"last words")
        wrapped.close()
        assert closing.closed
        return alone.sends, closing.sends

    assert asyncio.run(main()) == ([b"chunk"], [b"last words"])
