"""The function's `bootstrap` program: found as Lambda finds it, started, watched, stopped.

The bootstrap is the worker's child in its own process group, so stopping it stops what it
started too (curl in a shell loop). It gets SIGKILL when the worker dies, however the worker
dies: a worker killed for a timeout must not leave a runtime looping on a closed API.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
from typing import NoReturn

PR_SET_PDEATHSIG = 1
# Lambda looks in the function's code, then in its layers.
LAYER_BOOTSTRAP = "/opt/bootstrap"


class EntrypointError(Exception):
    """No bootstrap that can be executed: Lambda's Runtime.InvalidEntrypoint."""


def find_bootstrap(task_root: str, opt: str = "/opt") -> str:
    """`opt`: where the layers are (/opt in a jail; their folder without one)."""
    layer = LAYER_BOOTSTRAP if opt == "/opt" else os.path.join(opt, "bootstrap")
    candidates = [os.path.join(task_root, "bootstrap"), layer]
    for path in candidates:
        if os.path.isfile(path):
            if not os.access(path, os.X_OK):
                raise EntrypointError(f"fork/exec {path}: permission denied")
            return path
    raise EntrypointError(f"Couldn't find valid bootstrap(s): [{' '.join(candidates)}]")


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGKILL when the worker goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(1)


class PeakMemory:
    """A process's peak resident set (VmHWM), read again at each call from one open file.

    Not getrusage's ru_maxrss: after an exec it starts from the peak of the process that
    exec'd (for a worker spawned by the server, the server's own size)."""

    def __init__(self, pid: int | str) -> None:
        self._path = f"/proc/{pid}/status"
        self._fd = -1

    def read(self) -> int:
        try:
            if self._fd < 0:
                self._fd = os.open(self._path, os.O_RDONLY)
            status = os.pread(self._fd, 4096, 0)  # regenerated at each read from offset 0
            start = status.index(b"VmHWM:") + 6
            return int(status[start : status.index(b"kB", start)])
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Bootstrap:
    """The running bootstrap process."""

    def __init__(self, path: str, cwd: str, env: dict[str, str]) -> None:
        parent = os.getpid()
        try:
            self._proc = subprocess.Popen(
                [path],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,  # fd 1 and 2 stay the worker's: the log pipe
                process_group=0,
                preexec_fn=lambda: _die_with_parent(parent),
            )
        except OSError as e:  # ENOEXEC, a missing interpreter, EACCES on a folder...
            reason = (e.strerror or str(e)).lower()
            raise EntrypointError(f"fork/exec {path}: {reason}") from None
        self.pid = self._proc.pid
        self.pidfd = os.pidfd_open(self.pid)
        self.returncode: int | None = None
        self._peak = PeakMemory(self.pid)

    def reap(self) -> int:
        """The exit status once the pidfd is readable: the code, or -signal."""
        if self.returncode is None:
            self.returncode = self._proc.wait()
            os.close(self.pidfd)
            self._peak.close()
        return self.returncode

    def peak_memory_kb(self) -> int:
        """The bootstrap's peak resident set (its children are not counted)."""
        return self._peak.read()

    def kill(self) -> None:
        """SIGKILL to the bootstrap's whole process group, then reap it."""
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.reap()


def exit_like(returncode: int) -> NoReturn:
    """Exit as the bootstrap did, so the server sees its status as the worker's."""
    if returncode < 0:
        sig = -returncode
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file for a mirror
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's cannot be set, nor needs to
            signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(OSError, ValueError):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
            os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(returncode)
