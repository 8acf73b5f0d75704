"""Starting worker processes: forked from a zygote, or spawned as a fresh interpreter.

Either way the server is the worker's parent (a spawn directly; a fork through the zygote,
which forks twice so the worker is re-parented to the server, a child subreaper), so exits
are observed the same way: a pidfd becomes readable and `waitpid` gives the status.

Two zygotes: a *base* one (Python and faasbox's worker code only: the smallest footprint
for a function that needs nothing heavy) and a *preloaded* one (numpy, Pillow, OpenCV,
onnxruntime, when installed). A function starts from the base zygote; once its INIT shows
that it imports a preloaded package, its later cold starts fork from the preloaded zygote.
A function whose own code ships a package the preloaded zygote has imported (a vendored
numpy, say) must get its own copy, so it never forks from that zygote.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from faasbox.execution import runtimes
from faasbox.execution.process.limits import MemoryLimit, MemoryLimiter
from faasbox.execution.runtimes import WorkerStart
from faasbox.execution.settings import DEFAULT_PRELOAD
from faasbox.registry.models import DeployedFunction

log = logging.getLogger("faasbox.execution")

PR_SET_CHILD_SUBREAPER = 36
SPARE_LIMIT_MB = 128  # a spare's limit until it becomes some function's worker


def base_environment() -> dict[str, str]:
    """The environment a worker process starts with, before BOOT gives it the function's."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def spawn_worker(worker_fd: int, log_fd: int, argv: list[str]) -> int:
    """A fresh worker program (the runtime registry's `WorkerStart.argv`); returns its pid."""
    os.set_inheritable(worker_fd, True)
    return os.posix_spawn(
        argv[0],
        argv,
        base_environment(),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log_fd, 1),
            (os.POSIX_SPAWN_DUP2, log_fd, 2),
        ],
        setsid=True,
    )


class Zygote:
    """The server's side of one zygote process."""

    def __init__(self, name: str, modules: tuple[str, ...]) -> None:
        self.name = name
        self.modules = modules
        self.packages: frozenset[str] = frozenset()
        self.pid = -1
        self._sock: socket.socket | None = None
        self._lock = asyncio.Lock()
        self._ready: asyncio.Task[bool] | None = None

    def start(self) -> None:
        if self._ready is None or (self._ready.done() and not self._ready.result()):
            self._ready = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> bool:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        os.set_inheritable(theirs.fileno(), True)
        try:
            self.pid = os.posix_spawn(
                sys.executable,
                [
                    sys.executable,
                    "-m",
                    "faasbox.execution.process.zygote",
                    str(theirs.fileno()),
                    ",".join(self.modules),
                ],
                base_environment(),
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)],
                setsid=True,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        try:
            hello = json.loads(await asyncio.get_running_loop().sock_recv(ours, 1 << 16))
        except (OSError, ValueError):
            hello = {}
        if not hello:
            log.warning("the %s zygote did not start; workers will be spawned", self.name)
            self.close()
            return False
        self.packages = frozenset(hello.get("packages", ()))
        return True

    async def ready(self) -> bool:
        self.start()
        assert self._ready is not None
        return await asyncio.shield(self._ready)

    async def fork(self, worker_fd: int, log_fd: int) -> int:
        """A new worker's pid, or -1 if this zygote cannot make one now."""
        if not await self.ready() or self._sock is None:
            return -1
        loop = asyncio.get_running_loop()
        async with self._lock:
            try:
                socket.send_fds(self._sock, [b"{}"], [worker_fd, log_fd])
                reply = await loop.sock_recv(self._sock, 4096)
            except OSError:
                reply = b""
        if not reply:
            log.warning("the %s zygote went away; restarting it", self.name)
            self.close()
            self._ready = None
            return -1
        return int(json.loads(reply).get("pid", -1))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, 9)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = -1


def vendored_names(code_dir: Path) -> set[str]:
    """Top-level importable names a code folder provides itself."""
    names: set[str] = set()
    try:
        entries = list(code_dir.iterdir())
    except OSError:
        return names
    for entry in entries:
        if entry.is_dir() and not entry.name.endswith((".dist-info", ".egg-info")):
            names.add(entry.name)
        elif entry.suffix in (".py", ".so", ".pyd"):
            names.add(entry.name.split(".", 1)[0])
    return names


@dataclass
class Started:
    """A worker process that runs but has not been told who it is yet (no BOOT)."""

    pid: int
    sock: socket.socket  # the server's end of its control socket
    log_fd: int  # the read end of its log pipe
    started_by: str  # the zygote's name, or "spawn"
    worker_id: str
    memory: MemoryLimit

    def alive(self) -> bool:
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def discard(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, 9)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.sock.close()
        os.close(self.log_fd)
        self.memory.release()


def worker_start(fn: DeployedFunction) -> WorkerStart:
    """How a worker of `fn`'s runtime starts (the runtime registry knows)."""
    start = runtimes.of(fn.config.runtime).worker
    if start is None:
        raise LookupError(f"runtime {fn.config.runtime!r} is not run by worker processes")
    return start


class Launcher:
    """Chooses how each worker starts, and starts it.

    Each zygote keeps `spares` forked workers ready (already in their own memory cgroup, which
    is the slow part: moving a process into a cgroup waits for an RCU grace period), so a cold
    start only sets the limit, sends BOOT and runs INIT.
    """

    def __init__(
        self,
        limiter: MemoryLimiter,
        use_zygote: bool = True,
        preload: tuple[str, ...] = DEFAULT_PRELOAD,
        spares: int = 1,
    ):
        self.limiter = limiter
        self.spares_per_zygote = spares
        self._spares: dict[str, list[Started]] = {"base": [], "preloaded": []}
        self._filling: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.use_zygote = use_zygote and sys.platform == "linux" and become_subreaper()
        self.base = Zygote("base", ())
        self.preloaded = Zygote("preloaded", preload)
        # Per code version: does the function import something the preloaded zygote has?
        self._wants_preload: dict[str, bool] = {}
        self._vendors_preloaded: dict[str, bool] = {}

    def start(self) -> None:
        if self.use_zygote:
            self.base.start()
            self.preloaded.start()

    def note_imports(self, fn: DeployedFunction, packages: list[str]) -> None:
        """After a worker's INIT: remember whether this code wants the preloaded zygote."""
        preloaded = {m.partition(".")[0] for m in self.preloaded.modules}
        self._wants_preload[fn.code_sha256] = bool(set(packages) & preloaded)

    def _zygote_for(self, fn: DeployedFunction) -> Zygote | None:
        if not self.use_zygote or not worker_start(fn).forkable:
            return None
        if not self._wants_preload.get(fn.code_sha256, False):
            return self.base
        vendors = self._vendors_preloaded.get(fn.code_sha256)
        if vendors is None:
            clash = vendored_names(fn.code_dir) & (self.preloaded.packages - {"faasbox"})
            vendors = self._vendors_preloaded[fn.code_sha256] = bool(clash)
            if clash:
                log.info(
                    "%s ships its own %s: its workers are spawned, not forked",
                    fn.name,
                    ", ".join(sorted(clash)),
                )
        return None if vendors else self.preloaded

    async def start_process(self, fn: DeployedFunction) -> Started:
        """A worker process for `fn`: a spare if one is ready, else a new one."""
        zygote = self._zygote_for(fn)
        if zygote is not None:
            spares = self._spares[zygote.name]
            while spares:
                spare = spares.pop()
                if spare.alive():
                    self._refill(zygote)
                    return spare
                spare.discard()
            made = await self._make(zygote)
            self._refill(zygote)
            if made is not None:
                return made
        started = await self._make(None, worker_start(fn))
        assert started is not None  # a spawn does not fail short of an OSError
        return started

    async def _make(
        self, zygote: Zygote | None, spawn: WorkerStart | None = None
    ) -> Started | None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_r, log_w = os.pipe()
        try:
            if zygote is not None:
                pid, how = await zygote.fork(theirs.fileno(), log_w), zygote.name
            else:
                assert spawn is not None
                argv = spawn.argv(theirs.fileno())
                pid, how = spawn_worker(theirs.fileno(), log_w, argv), "spawn"
        finally:
            theirs.close()
            os.close(log_w)
        if pid <= 0:
            ours.close()
            os.close(log_r)
            return None
        worker_id = secrets.token_hex(8)
        # Off the event loop: moving a process into a cgroup can take milliseconds.
        memory = await asyncio.to_thread(self.limiter.attach, pid, SPARE_LIMIT_MB, worker_id)
        return Started(pid, ours, log_r, how, worker_id, memory)

    def _refill(self, zygote: Zygote) -> None:
        if zygote.name in self._filling or self.spares_per_zygote <= 0:
            return
        self._filling.add(zygote.name)
        task = asyncio.get_running_loop().create_task(self._fill(zygote))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, zygote: Zygote) -> None:
        try:
            spares = self._spares[zygote.name]
            while len(spares) < self.spares_per_zygote:
                made = await self._make(zygote)
                if made is None:
                    return
                spares.append(made)
        finally:
            self._filling.discard(zygote.name)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for spares in self._spares.values():
            for spare in spares:
                spare.discard()
            spares.clear()
        self.base.close()
        self.preloaded.close()
