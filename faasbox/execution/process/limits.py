"""Memory limits for workers: a memory cgroup where the machine allows it, else an RSS watchdog.

A worker over its memorySize is killed with SIGKILL either way, so the invocation fails as it
does on Lambda: `Runtime exited with error: signal: killed`.

- cgroup v1 (a writable `memory` hierarchy): one child cgroup per worker under the server's own,
  with memory.limit_in_bytes; the kernel's OOM killer does the killing.
- cgroup v2 (a writable unified hierarchy with the memory controller): memory.max likewise.
- otherwise a watchdog in the server polls each worker's RSS and kills it past the limit.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


class MemoryLimit:
    """The limit put on one worker; `peak_bytes` is what REPORT shows when it was killed."""

    def __init__(self, pid: int, limit_bytes: int) -> None:
        self.pid = pid
        self.limit_bytes = limit_bytes
        self.observed_peak = 0

    def peak_bytes(self) -> int:
        return self.observed_peak

    def set_limit(self, limit_mb: int) -> None:
        self.limit_bytes = limit_mb << 20

    def check(self) -> bool:
        """Watchdog tick: True if the worker was killed for going over its limit."""
        rss = rss_bytes(self.pid)
        if rss is None:
            return False
        self.observed_peak = max(self.observed_peak, rss)
        if rss > self.limit_bytes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            return True
        return False

    def release(self) -> None:
        pass


class CgroupLimit(MemoryLimit):
    def __init__(self, pid: int, limit_bytes: int, path: Path, peak_file: str) -> None:
        super().__init__(pid, limit_bytes)
        self.path = path
        self.peak_file = peak_file

    def set_limit(self, limit_mb: int) -> None:
        self.limit_bytes = limit_mb << 20
        limit_file = "memory.max" if self.peak_file == "memory.peak" else "memory.limit_in_bytes"
        (self.path / limit_file).write_text(str(self.limit_bytes))

    def peak_bytes(self) -> int:
        try:
            return max(int((self.path / self.peak_file).read_text()), self.observed_peak)
        except (OSError, ValueError):
            return self.observed_peak

    def check(self) -> bool:
        # The kernel enforces the limit; the tick only keeps the peak for REPORT.
        rss = rss_bytes(self.pid)
        if rss is not None:
            self.observed_peak = max(self.observed_peak, rss)
        return False

    def release(self) -> None:
        # The cgroup can only be removed once empty, i.e. after the worker has exited.
        with contextlib.suppress(OSError):
            self.path.rmdir()


class MemoryLimiter:
    """Puts workers under a memory limit by the best means this machine offers."""

    def __init__(self, group_name: str, use_cgroups: bool = True) -> None:
        self.group_name = group_name
        self.kind = "watchdog"
        self._base: Path | None = None
        self._v2 = False
        if use_cgroups:
            self._detect()

    def _detect(self) -> None:
        for base, v2 in self._candidates():
            try:
                base.mkdir(exist_ok=True)
                probe = base / "probe"
                probe.mkdir(exist_ok=True)
                limit_file = "memory.max" if v2 else "memory.limit_in_bytes"
                (probe / limit_file).write_text(str(64 << 20))
                probe.rmdir()
            except OSError:
                continue
            self._base, self._v2 = base, v2
            self.kind = "cgroup-v2" if v2 else "cgroup-v1"
            return

    def _candidates(self) -> list[tuple[Path, bool]]:
        found: list[tuple[Path, bool]] = []
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return found
        for line in lines:
            _, controllers, rel = line.split(":", 2)
            rel = rel.lstrip("/")
            if "memory" in controllers.split(","):
                mount = CGROUP_ROOT / "memory"
                if (mount / "memory.limit_in_bytes").exists():
                    found.append((mount / rel / self.group_name, False))
            elif controllers == "":
                for mount in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
                    parent = mount / rel
                    ctl = parent / "cgroup.subtree_control"
                    if ctl.exists() and "memory" in ctl.read_text().split():
                        found.append((parent / self.group_name, True))
        return found

    def attach(self, pid: int, limit_mb: int, worker_id: str) -> MemoryLimit:
        limit = limit_mb << 20
        if self._base is not None:
            path = self._base / worker_id
            try:
                path.mkdir()
                if self._v2:
                    (path / "memory.max").write_text(str(limit))
                    with contextlib.suppress(OSError):
                        (path / "memory.swap.max").write_text("0")
                else:
                    (path / "memory.limit_in_bytes").write_text(str(limit))
                (path / "cgroup.procs").write_text(str(pid))
                peak = "memory.peak" if self._v2 else "memory.max_usage_in_bytes"
                return CgroupLimit(pid, limit, path, peak)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
        return MemoryLimit(pid, limit)

    def close(self) -> None:
        if self._base is not None:
            with contextlib.suppress(OSError):
                self._base.rmdir()
