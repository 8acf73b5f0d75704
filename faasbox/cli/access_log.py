"""`faasbox serve`'s access log: one line per request on stdout, timestamped (off with --quiet).

The gateway writes each line to the `faasbox.access` logger (faasbox.gateway.observe); this
prints them plainly, without the colours and wrapping of the CLI's other messages.

Written in batches: a line per request written and flushed on its own cost a `write` syscall
and the logging module's `strftime` per request, a fifth of a warm hello at 8 connections
(bench/RESULTS.md, "Observability overhead"). The lines of one event-loop turn are joined and
written once at the end of that turn, so a line is still out before the server waits again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import TextIO


class _UtcFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678Z message`; the seconds' text is made once per second."""

    def __init__(self) -> None:
        super().__init__("%(message)s")
        self._second = -1
        self._prefix = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int(record.msecs):03d}Z {record.getMessage()}"


class BatchedStreamHandler(logging.Handler):
    """Collects the lines emitted during one turn of the running event loop and writes them
    with one write and one flush when the turn ends; from a thread without a running loop,
    writes at once."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._pending: list[str] = []
        self._scheduled = False
        self._guard = threading.Lock()  # emit may come from the loop and from other threads

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._guard:
            self._pending.append(line)
            if loop is not None and not self._scheduled:
                self._scheduled = True
                loop.call_soon(self.flush)
                return
            if loop is not None:
                return
        self.flush()

    def flush(self) -> None:
        with self._guard:
            lines, self._pending, self._scheduled = self._pending, [], False
        if not lines:
            return
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stdout closed (a pipe whose reader went away): the log has no reader

    def close(self) -> None:
        self.flush()
        super().close()


def print_access_log() -> None:
    handler = BatchedStreamHandler(sys.stdout)
    handler.setFormatter(_UtcFormatter())
    logger = logging.getLogger("faasbox.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not through the CLI's warning handler on stderr
