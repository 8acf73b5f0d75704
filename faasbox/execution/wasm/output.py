"""Where a wasm invocation's stdout and stderr go: an in-memory file each, capped in size.

wasmtime writes a WASI program's output to a file it opens by path. An anonymous memory file
(`memfd_create`), opened by wasmtime as `/proc/self/fd/N`, is written at memory speed, never
touches the disk and disappears with its descriptor, even if the server dies. A new file on
the data dir's disk costs 1-3 ms per invocation on ext4 (creation, unlink, journal), ten
times the rest of the invocation; a reused one that is truncated costs as much (ext4 flushes
a truncated file on close). Without memfd (not Linux) a temporary file under the data dir's
`run/` folder is used and removed.

A program may write without end: `check()`, called by the executor every few milliseconds,
seals a memory file that has passed its cap against further writes (the program's next write
fails with EPERM), so one invocation cannot fill the server's memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path


class Capture:
    def __init__(self, name: str, limit: int, run_dir: Path) -> None:
        self.limit = limit
        self.truncated = False
        self._sealable = hasattr(os, "memfd_create")
        self._unlink: str | None = None
        if self._sealable:
            self.fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            self.path = f"/proc/self/fd/{self.fd}"
        else:  # pragma: no cover - not Linux
            run_dir.mkdir(parents=True, exist_ok=True)
            self.fd, self.path = tempfile.mkstemp(dir=run_dir, prefix=f"wasm-{name}-")
            self._unlink = self.path

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def check(self) -> None:
        """Stop the stream from growing once it is past its limit."""
        if self.truncated or self.size() <= self.limit:
            return
        self.truncated = True
        if self._sealable:
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW)

    def read(self) -> bytes:
        """What was written, up to the limit (plus one byte, so that going over shows)."""
        size = min(self.size(), self.limit + 1)
        if size > self.limit:
            self.truncated = True
        chunks = []
        offset = 0
        while offset < size:
            chunk = os.pread(self.fd, size - offset, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        os.close(self.fd)
        if self._unlink is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._unlink)
