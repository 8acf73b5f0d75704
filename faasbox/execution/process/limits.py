"""Memory limits for workers: a memory cgroup where the machine allows it, else an RSS watchdog.

A worker over its memorySize is killed with SIGKILL either way, so the invocation fails as it
does on Lambda: `Runtime exited with error: signal: killed`.

- cgroup v1 (a writable `memory` hierarchy): one child cgroup per worker under the server's own,
  with memory.limit_in_bytes; the kernel's OOM killer does the killing.
- cgroup v2 (a writable unified hierarchy with the memory controller): memory.max likewise.
- otherwise a watchdog in the server polls each worker's RSS and kills it past the limit.

Alongside, a `pids` cgroup per worker caps its processes and threads (pids.max, 1,024 as on
Lambda) where the machine has one. The server's groups are named `faasbox-<its pid>-...`, so
a new server finds and removes the groups a crashed one left (killing what still runs there).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CGROUP_ROOT = Path("/sys/fs/cgroup")
MAX_PROCESSES = 1024
GROUP_NAME = re.compile(r"faasbox-(\d+)-")


def tree_rss(pid: int) -> int | None:
    """The RSS of a process and its children (a jailed worker's init and the worker)."""
    total = rss_bytes(pid)
    if total is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        total += rss_bytes(int(child)) or 0
    return total


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
        # Every cgroup of the worker (memory, pids), removed once it has exited.
        self.groups: list[Path] = []

    def peak_bytes(self) -> int:
        return self.observed_peak

    def set_limit(self, limit_mb: int) -> None:
        self.limit_bytes = limit_mb << 20

    def check(self) -> bool:
        """Watchdog tick: True if the worker was killed for going over its limit."""
        rss = tree_rss(self.pid)
        if rss is None:
            return False
        self.observed_peak = max(self.observed_peak, rss)
        if rss > self.limit_bytes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            return True
        return False

    def release(self) -> None:
        """Remove the worker's cgroups once it has exited. A jailed worker's are empty by
        then (its init's exit killed the rest); an unjailed worker's may hold what it left
        running, which is killed here."""
        for path in self.groups:
            remove_group(path, timeout=1.0)


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
        rss = tree_rss(self.pid)
        if rss is not None:
            self.observed_peak = max(self.observed_peak, rss)
        return False


class MemoryLimiter:
    """Puts workers under a memory limit by the best means this machine offers, and under a
    pids limit where there is a pids cgroup."""

    def __init__(self, group_name: str, use_cgroups: bool = True) -> None:
        self.group_name = group_name
        self.kind = "watchdog"
        self._base: Path | None = None
        self._v2 = False
        self.pids_base: Path | None = None
        if use_cgroups:
            self._detect()

    def _detect(self) -> None:
        memory, pids = self._candidates()
        for base, v2 in memory:
            limit_file = "memory.max" if v2 else "memory.limit_in_bytes"
            if _probe(base, limit_file, str(64 << 20)):
                self._base, self._v2 = base, v2
                self.kind = "cgroup-v2" if v2 else "cgroup-v1"
                break
        for base in pids:
            if _probe(base, "pids.max", str(MAX_PROCESSES)):
                self.pids_base = base
                break

    def _candidates(self) -> tuple[list[tuple[Path, bool]], list[Path]]:
        memory: list[tuple[Path, bool]] = []
        pids: list[Path] = []
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return memory, pids
        for line in lines:
            _, controllers, rel = line.split(":", 2)
            rel = rel.lstrip("/")
            names = controllers.split(",")
            if "memory" in names:
                mount = CGROUP_ROOT / "memory"
                if (mount / "memory.limit_in_bytes").exists():
                    memory.append((mount / rel / self.group_name, False))
            elif "pids" in names:
                mount = CGROUP_ROOT / "pids"
                if (mount / rel / "pids.current").exists() or (mount / "cgroup.procs").exists():
                    pids.append(mount / rel / self.group_name)
            elif controllers == "":
                for mount in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
                    parent = mount / rel
                    ctl = parent / "cgroup.subtree_control"
                    if not ctl.exists():
                        continue
                    enabled = ctl.read_text().split()
                    if "memory" in enabled:
                        memory.append((parent / self.group_name, True))
                    if "pids" in enabled:
                        pids.append(parent / self.group_name)
        return memory, pids

    def bases(self) -> list[Path]:
        return [b for b in (self._base, self.pids_base) if b is not None]

    def prepare(self, limit_mb: int, worker_id: str) -> tuple[MemoryLimit, list[str]]:
        """A worker's cgroups, made before it exists: the limit (its pid is set once the
        worker is forked) and the cgroup.procs files the worker joins itself."""
        limit = limit_mb << 20
        procs: list[str] = []
        groups: list[Path] = []
        result: MemoryLimit = MemoryLimit(-1, limit)
        if self._base is not None:
            path = self._base / worker_id
            try:
                path.mkdir()
                groups.append(path)
                if self._v2:
                    (path / "memory.max").write_text(str(limit))
                    with contextlib.suppress(OSError):
                        (path / "memory.swap.max").write_text("0")
                else:
                    (path / "memory.limit_in_bytes").write_text(str(limit))
                peak = "memory.peak" if self._v2 else "memory.max_usage_in_bytes"
                result = CgroupLimit(-1, limit, path, peak)
                procs.append(str(path / "cgroup.procs"))
            except OSError:
                pass
        if self.pids_base is not None:
            path = self.pids_base / worker_id
            try:
                if path != self._base:
                    path.mkdir()
                    groups.append(path)
                (path / "pids.max").write_text(str(MAX_PROCESSES))
                if str(path / "cgroup.procs") not in procs:
                    procs.append(str(path / "cgroup.procs"))
            except OSError:
                pass
        result.groups = groups
        return result, procs

    def close(self) -> None:
        """Remove the server's groups, killing any straggler (a worker whose fork was
        under way when the server stopped)."""
        for base in self.bases():
            remove_group(base)


def _probe(base: Path, limit_file: str, value: str) -> bool:
    try:
        base.mkdir(exist_ok=True)
        probe = base / "probe"
        probe.mkdir(exist_ok=True)
        (probe / limit_file).write_text(value)
        probe.rmdir()
    except OSError:
        return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_group(group: Path, timeout: float = 2.0) -> bool:
    """Kill every process in `group` and its children groups, then remove them."""
    for child in sorted((p for p in group.rglob("*") if p.is_dir()), reverse=True):
        remove_group(child, timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            group.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
        time.sleep(0.01)  # the killed processes are still exiting


def clean_stale_groups(bases: list[Path]) -> int:
    """Remove the groups of faasbox servers that are gone (a crash leaves them); returns how
    many were removed. A group whose server pid is alive is left alone."""
    removed = 0
    for parent in {b.parent for b in bases}:
        try:
            entries = list(parent.iterdir())
        except OSError:
            continue
        for entry in entries:
            match = GROUP_NAME.match(entry.name)
            if match and entry.is_dir() and not _pid_alive(int(match.group(1))):
                removed += remove_group(entry)
    return removed
