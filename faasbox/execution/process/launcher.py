"""Starting worker processes: forked from a zygote, or spawned as a fresh interpreter.

Either way the server is the worker's parent (a spawn directly; a fork through the zygote,
which forks twice so the worker is re-parented to the server, a child subreaper), so exits
are observed the same way: a pidfd becomes readable and `waitpid` gives the status.

Two zygotes: a *base* one (Python and faasbox's worker code only: the smallest footprint
for a function that needs nothing heavy) and a *preloaded* one (numpy, Pillow, OpenCV,
onnxruntime, when installed). A function starts from the base zygote; once its INIT shows
that it imports a preloaded package, its later cold starts fork from the preloaded zygote.
A function whose own code ships a package the preloaded zygote has imported (a vendored
numpy, say) in another version than the zygote's, or without the .dist-info that tells its
version, must get its own copy, so it forks from the base zygote; the same version as the
zygote's (pip installed its requirements.txt) forks from the preloaded one.

Runtimes whose worker cannot fork (Node.js) are, in a jail, forked as any other spare and
exec their program at BOOT once inside the function's jail (faasbox.execution.process.
exec_worker). Without the jail they are spawned, and their spares with them: one process per
start command (the command carries the function's memory size, which V8 needs at start) is
kept started ahead of need, waiting for its BOOT.

With the jail (faasbox.execution.process.jail), the pid the server watches is the worker's
init (pid 1 of its pid namespace): killing it kills everything the worker started, and the
init writes the worker's own wait status to a pipe the server reads when the init exits.
Each function runs as a uid/gid of its own, picked from a range by a hash of the data dir and
the function's name (so two servers on one machine rarely share one), probing past a uid
another function of this server already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import json
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faasbox.execution import runtimes
from faasbox.execution.process.limits import MemoryLimit, MemoryLimiter
from faasbox.execution.process.python import distributions, preload_site, search_path
from faasbox.execution.runtimes import WorkerStart
from faasbox.execution.settings import DEFAULT_PRELOAD
from faasbox.registry.models import DeployedFunction

log = logging.getLogger("faasbox.execution")

PR_SET_CHILD_SUBREAPER = 36
SPARE_LIMIT_MB = 128  # a spare's limit until it becomes some function's worker
# Start commands of spawned runtimes (one per memory size) that keep a spare: the most
# recently used; an idle node is tens of MB.
SPARE_COMMANDS = 4


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


def runtime_paths() -> list[str]:
    """The installations of the runtimes' programs, which a jail's root must show read-only
    (node's prefix, when it is not under /usr)."""
    paths: list[str] = []
    for runtime in runtimes.RUNTIMES:
        start = runtime.worker
        folder = start.bin_dir() if start is not None and start.bin_dir is not None else None
        if folder is not None:
            prefix = os.path.dirname(os.path.realpath(folder))
            if prefix != "/":  # never the whole host
                paths.append(prefix)
    return paths


def _join_cgroups(pid: int, procs_files: list[str]) -> None:
    for path in procs_files:
        # It exited already: its start fails as such.
        with contextlib.suppress(OSError), open(path, "w") as f:
            f.write(str(pid))


class Zygote:
    """The server's side of one zygote process."""

    def __init__(self, name: str, modules: tuple[str, ...]) -> None:
        self.name = name
        self.modules = modules
        self.packages: frozenset[str] = frozenset()
        self.versions: dict[str, str] = {}  # of the packages, where known
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
        # The zygote runs this interpreter and virtualenv: their metadata are its packages'.
        self.versions = await asyncio.to_thread(distributions.installed_versions, self.packages)
        return True

    async def ready(self) -> bool:
        self.start()
        assert self._ready is not None
        return await asyncio.shield(self._ready)

    async def fork(self, request: dict[str, Any], fds: list[int]) -> int:
        """A new worker's pid (its init's, in a jail), or -1 if this zygote cannot make one
        now. `fds`: the worker's control socket, its log pipe and the init's status pipe."""
        if not await self.ready():
            return -1
        loop = asyncio.get_running_loop()
        async with self._lock:
            # Checked under the lock: a fork that held it may have found the zygote gone.
            if self._sock is None:
                return -1
            try:
                socket.send_fds(self._sock, [json.dumps(request).encode()], fds)
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


def shipped_folders(fn: DeployedFunction) -> list[Path]:
    """The folders a function imports its own packages from, in sys.path's order: its code,
    its layers' python/lib/python3.x/site-packages and python/."""
    folders = [fn.code_dir]
    if fn.opt_dir is not None:
        python = fn.opt_dir / "python"
        folders += [*sorted(python.glob("lib/python3.*/site-packages")), python]
    return folders


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in task.read_text().split()]
    return pids


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return ""


@dataclass(frozen=True)
class Jail:
    """How this server jails its workers (see faasbox.execution.process.jail)."""

    root: Path  # an empty folder each worker's init mounts its skeleton root on
    data_dir: Path  # never visible in a jail
    uid_base: int
    uid_count: int
    pids_cgroup: bool  # processes are capped by a pids cgroup (else RLIMIT_NPROC per uid)


@dataclass
class Started:
    """A worker process that runs but has not been told who it is yet (no BOOT)."""

    pid: int  # the process the server watches and kills: the worker, or its jail's init
    sock: socket.socket  # the server's end of its control socket
    log_fd: int  # the read end of its log pipe
    status_fd: int  # the read end of the init's status pipe (nothing written without a jail)
    started_by: str  # the zygote's name, or "spawn"
    worker_id: str
    memory: MemoryLimit
    jailed: bool
    refill: str = ""  # the zygote to make a new spare from once this one has run INIT
    # A jailed worker of a runtime that cannot fork: the program it execs once in its jail.
    exec: tuple[str, ...] = ()

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
        os.close(self.status_fd)
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
    start only sets the limit, sends BOOT and runs INIT. Spawned runtimes keep `spares`
    started processes per start command the same way, from their first cold start on.
    """

    def __init__(
        self,
        limiter: MemoryLimiter,
        use_zygote: bool = True,
        preload: tuple[str, ...] = DEFAULT_PRELOAD,
        spares: int = 1,
        jail: Jail | None = None,
    ):
        self.limiter = limiter
        self.jail = jail
        self._uids: dict[str, int] = {}
        self.spares_per_zygote = spares
        self._spares: dict[str, list[Started]] = {"base": [], "preloaded": []}
        self._filling: set[str] = set()
        # Spares of the runtimes that cannot fork, by the command they were started with.
        self._spawn_spares: dict[tuple[str, ...], list[Started]] = {}
        self._filling_spawned: set[tuple[str, ...]] = set()
        self._spare_commands: dict[tuple[str, ...], None] = {}  # least recently used first
        self._tasks: set[asyncio.Task[None]] = set()
        subreaper = sys.platform == "linux" and become_subreaper()
        self.use_zygote = use_zygote and subreaper
        self.base = Zygote("base", ())
        self.preloaded = Zygote("preloaded", preload)
        # Per code version: does the function import something the preloaded zygote has?
        self._wants_preload: dict[str, bool] = {}
        self._vendors_preloaded: dict[str, bool] = {}
        self._visible = runtime_paths() if jail is not None else []
        # Folders a Python function imports from after its own and its layers' (in the
        # virtualenv, which the jail shows): the preloaded packages (python.preload_site).
        site = preload_site.build(preload) if preload else None
        self.runtime_dirs: list[str] = [str(site)] if site is not None else []
        if not os.path.isdir(search_path.RUNTIME_PACKAGES):
            log.warning(
                "Python functions will not find boto3: %s is missing (`make run` installs "
                "it: pip install --target %s -r %s)",
                search_path.RUNTIME_PACKAGES,
                search_path.RUNTIME_PACKAGES,
                search_path.RUNTIME_REQUIREMENTS,
            )

    def start(self) -> None:
        if self.use_zygote:
            self.base.start()
            self.preloaded.start()

    def note_imports(self, fn: DeployedFunction, packages: list[str]) -> None:
        """After a worker's INIT: remember whether this code wants the preloaded zygote."""
        preloaded = {m.partition(".")[0] for m in self.preloaded.modules}
        self._wants_preload[fn.code_sha256] = bool(set(packages) & preloaded)

    def _forks(self, start: WorkerStart) -> bool:
        """Whether workers of this runtime are forked (a zygote's spares) or spawned: in a
        jail every runtime forks, the unforkable ones exec'ing their program at BOOT."""
        return start.forkable or self.jail is not None

    def _zygote_for(self, fn: DeployedFunction) -> Zygote | None:
        start = worker_start(fn)
        if not self.use_zygote or not self._forks(start):
            return None
        if not start.forkable:
            return self.base  # it execs another program: nothing preloaded would help
        if not self._wants_preload.get(fn.code_sha256, False):
            return self.base
        key = f"{fn.code_sha256}:{fn.opt_dir or ''}"  # its layers may ship packages too
        vendors = self._vendors_preloaded.get(key)
        if vendors is None:
            clash = self._own_versions(fn)
            vendors = self._vendors_preloaded[key] = bool(clash)
            if clash:
                log.info(
                    "%s ships its own %s: its workers fork from the base zygote",
                    fn.name,
                    ", ".join(sorted(clash)),
                )
        return self.base if vendors else self.preloaded

    def _own_versions(self, fn: DeployedFunction) -> set[str]:
        """The packages the preloaded zygote has imported that `fn` ships in another version
        (or one that cannot be told): its workers must import its own."""
        folders = shipped_folders(fn)
        names = set[str]().union(*(vendored_names(folder) for folder in folders)) - {"lib"}
        shipped = names & (self.preloaded.packages - {"faasbox"})
        versions: dict[str, str] = {}
        for folder in reversed(folders):  # the first on sys.path wins
            versions.update(distributions.shipped_versions(folder))
        preloaded = self.preloaded.versions
        unknown = distributions.UNKNOWN
        return {
            name
            for name in shipped
            if versions.get(name, unknown) == unknown or versions[name] != preloaded.get(name)
        }

    def identity(self, fn: DeployedFunction) -> int:
        """The function's own uid (and gid): stable for this server, never another's."""
        known = self._uids.get(fn.name)
        if known is not None:
            return known
        assert self.jail is not None
        taken = set(self._uids.values())
        digest = hashlib.sha256(f"{self.jail.data_dir}\0{fn.name}".encode()).digest()
        start = int.from_bytes(digest[:8], "big")
        uid = self.jail.uid_base
        for probe in range(self.jail.uid_count):
            uid = self.jail.uid_base + (start + probe) % self.jail.uid_count
            if uid not in taken:
                break
        self._uids[fn.name] = uid
        return uid

    async def start_process(self, fn: DeployedFunction) -> Started:
        """A worker process for `fn`: a spare if one is ready, else a new one."""
        start = worker_start(fn)
        if not self._forks(start):
            return await self._spawned(start.spawn_command(fn.config))
        # Its program, before a spare is taken: a missing one (node) fails the start here.
        command = () if start.forkable else start.spawn_command(fn.config)
        started = await self._forked(fn)
        started.exec = command
        return started

    async def _forked(self, fn: DeployedFunction) -> Started:
        zygote = self._zygote_for(fn)
        if zygote is not None:
            spares = self._spares[zygote.name]
            while spares:
                spare = spares.pop()
                if spare.alive():
                    # The next spare is made after this one's INIT (`after_init`): making a
                    # jail's root meanwhile would take CPU from the cold start.
                    spare.refill = zygote.name
                    return spare
                spare.discard()
            made = await self._make(zygote)
            self._refill(zygote)
            if made is not None:
                return made
        started = await self._make(None)
        if started is None:
            raise OSError("a worker process could not be started")
        return started

    def prepare(self, fn: DeployedFunction) -> None:
        """`fn` may be invoked soon: a runtime that is spawned gets its spare started now,
        so that even its first cold start is INIT only."""
        start = worker_start(fn)
        if self._forks(start) or self.spares_per_zygote <= 0:
            return
        try:
            command = start.spawn_command(fn.config)
        except FileNotFoundError:
            return  # its invocations say so (Runtime.InvalidEntrypoint)
        self._refill_spawned(command)

    def spares_for(self, fn: DeployedFunction) -> list[int]:
        """The pids of the spares a cold start of `fn` would take (spawned runtimes)."""
        start = worker_start(fn)
        if self._forks(start):
            return []
        command = start.spawn_command(fn.config)
        return [spare.pid for spare in self._spawn_spares.get(command, ()) if spare.alive()]

    async def _spawned(self, command: tuple[str, ...]) -> Started:
        """A worker of a program that cannot fork (Node.js): the spare already started with
        `command` (it waits for its BOOT), else a new one; a spare is started for the next."""
        spares = self._spawn_spares.setdefault(command, [])
        while spares:
            spare = spares.pop()
            if spare.alive():
                self._refill_spawned(command)
                return spare
            spare.discard()
        started = await self._make(None, command)
        assert started is not None  # a spawn does not fail short of an OSError
        self._refill_spawned(command)
        return started

    def _refill_spawned(self, command: tuple[str, ...]) -> None:
        if self.spares_per_zygote <= 0:
            return
        self._spare_commands.pop(command, None)
        self._spare_commands[command] = None  # the most recently used, last
        while len(self._spare_commands) > SPARE_COMMANDS:
            oldest = next(iter(self._spare_commands))
            del self._spare_commands[oldest]
            for spare in self._spawn_spares.pop(oldest, []):
                spare.discard()
        if command in self._filling_spawned:
            return
        self._filling_spawned.add(command)
        task = asyncio.get_running_loop().create_task(self._fill_spawned(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill_spawned(self, command: tuple[str, ...]) -> None:
        try:
            spares = self._spawn_spares.setdefault(command, [])
            while len(spares) < self.spares_per_zygote:
                made = await self._make(None, command)
                if made is None:
                    return
                if command not in self._spare_commands:  # evicted meanwhile
                    made.discard()
                    return
                spares.append(made)
        finally:
            self._filling_spawned.discard(command)

    async def _make(self, zygote: Zygote | None, command: tuple[str, ...] = ()) -> Started | None:
        """A worker from `zygote`; or (None) one started for it alone: spawned by `command`
        (a runtime whose worker cannot fork), else forked from a zygote of its own (a fresh
        interpreter, as when zygotes are off)."""
        worker_id = secrets.token_hex(8)
        memory, procs = self.limiter.prepare(SPARE_LIMIT_MB, worker_id)
        request: dict[str, Any] = {"cgroups": procs}
        if self.jail is not None:
            request.update(
                root=str(self.jail.root), hidden=[str(self.jail.data_dir)], visible=self._visible
            )
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_r, log_w = os.pipe()
        status_r, status_w = os.pipe()
        own = None
        try:
            fds = [theirs.fileno(), log_w, status_w]
            if zygote is not None:
                pid, how = await zygote.fork(request, fds), zygote.name
            elif command:
                # Only without a jail (a jail forks every runtime's workers).
                argv = [*command, str(theirs.fileno())]
                pid, how = spawn_worker(theirs.fileno(), log_w, argv), "spawn"
                # It cannot join its cgroups itself: moved there from here, off the loop.
                await asyncio.to_thread(_join_cgroups, pid, procs)
            else:
                own = Zygote("spawn", ())
                pid, how = await own.fork(request, fds), "spawn"
        except OSError:  # the runtime's program is missing, say
            ours.close()
            os.close(log_r)
            os.close(status_r)
            memory.release()
            raise
        finally:
            theirs.close()
            os.close(log_w)
            os.close(status_w)
            if own is not None:
                own.close()  # the worker is the server's child now, not the zygote's
        if pid <= 0:
            ours.close()
            os.close(log_r)
            os.close(status_r)
            memory.release()
            return None
        memory.pid = pid
        jailed = self.jail is not None and not command
        return Started(pid, ours, log_r, status_r, how, worker_id, memory, jailed)

    def after_init(self, started: Started) -> None:
        """A cold start from a spare has run INIT (or failed): make the next spare."""
        if started.refill:
            self._refill(self.base if started.refill == "base" else self.preloaded)
            started.refill = ""

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

    def reap_strays(self, workers: set[int]) -> int:
        """Reap exited children the server does not know: without a jail, what a worker left
        running is re-parented to the server (a subreaper) when the worker ends."""
        known = workers | {self.base.pid, self.preloaded.pid}
        known |= {s.pid for spares in self._spares.values() for s in spares}
        reaped = 0
        for pid in _children():
            if pid not in known and _state(pid) == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                    reaped += 1
        return reaped

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for spares in [*self._spares.values(), *self._spawn_spares.values()]:
            for spare in spares:
                spare.discard()
            spares.clear()
        self.base.close()
        self.preloaded.close()
