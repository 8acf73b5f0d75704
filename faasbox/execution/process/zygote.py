"""The zygote: a Python process that has already imported what workers need, and forks them.

As in SOCK (OpenLambda), forking a process that has imported numpy, Pillow, OpenCV or
onnxruntime makes a worker in a few milliseconds instead of paying for interpreter start and
imports on every cold start; the forked workers share those pages copy-on-write.

Started by the server as `python -m faasbox.execution.process.zygote CONTROL_FD MODULES`.
The control socket is SOCK_SEQPACKET: each request is one message carrying two file
descriptors (the new worker's control socket and its log pipe); each reply is one message
with the worker's pid.

What forking breaks, and what is done about it:
- threads do not survive a fork: the zygote starts none (BLAS/OpenMP pools are pinned to one
  thread before the imports, and onnxruntime creates its pools per session, in the worker);
- random state would be shared: `random` reseeds itself after fork; numpy's global
  RandomState is reseeded here;
- file descriptors: everything but the worker's socket and its log pipe is closed;
- signal handlers and the session: reset to an ordinary Python process's, in a new session;
- what it becomes: the BOOT frame names the worker module to serve (WORKERS: Python, the
  Runtime API's, or the exec worker that enters the jail and then execs a runtime that
  cannot fork, such as node);
- parentage: the worker is forked twice so that it is re-parented to the server (a
  PR_SET_CHILD_SUBREAPER), which then reaps it and reads its exit status as for a spawn.
"""

from __future__ import annotations

import os

# Before any import that could start a thread pool.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import contextlib  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from faasbox.execution.process import exec_worker, jail, protocol  # noqa: E402
from faasbox.execution.process.python import worker  # noqa: E402  (Python functions)
from faasbox.execution.process.runtime_api import worker as runtime_api  # noqa: E402

# What a forked worker can become, named by its BOOT's "worker": a spare is forked before
# anyone knows its function, so one kind of spare serves every runtime.
WORKERS: dict[str, Callable[[socket.socket, dict[str, Any]], None]] = {
    "faasbox.execution.process.python.worker": worker.serve,
    "faasbox.execution.process.runtime_api.worker": runtime_api.serve,
    exec_worker.NAME: exec_worker.serve,
}

MAX_FD = 65536


def loaded_packages() -> list[str]:
    """Top-level names of the non-stdlib modules this process has imported."""
    names = {name.partition(".")[0] for name in list(sys.modules)}
    return sorted(n for n in names if n not in sys.stdlib_module_names and not n.startswith("_"))


def preload(modules: list[str]) -> list[str]:
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # not installed, or broken: the zygote works without it
            failed.append(name)
    return failed


def _close_fds_but(*fds: int) -> None:
    keep = sorted({0, 1, 2, *(fd for fd in fds if fd >= 0)})
    for low, high in zip(keep, [*keep[1:], MAX_FD], strict=True):
        if high > low + 1:
            os.closerange(low + 1, high)


def _become_worker(worker_fd: int, log_fd: int, jailed: bool) -> None:
    """In the forked worker: clean up what the zygote was, then serve."""
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    _close_fds_but(worker_fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    random.seed()
    if not jailed:
        jail.prepare_namespace()
    ctrl = socket.socket(fileno=worker_fd)
    kind, boot, _ = protocol.recv_frame(ctrl)
    if kind != protocol.BOOT:
        raise protocol.ProtocolError(f"expected BOOT, got frame kind {kind}")
    serve = WORKERS.get(boot.get("worker", "faasbox.execution.process.python.worker"))
    if serve is None:
        raise protocol.ProtocolError(f"no such worker: {boot.get('worker')!r}")
    serve(ctrl, boot)


def _init(request: dict[str, Any], worker_fd: int, log_fd: int, status_fd: int) -> None:
    """pid 1 of the worker's pid namespace: the skeleton root, the worker, then reaping."""
    jail.build_root(request["root"], request.get("hidden", []), request.get("visible", []))
    pid = os.fork()
    if pid == 0:
        os.close(status_fd)
        _become_worker(worker_fd, log_fd, jailed=True)
        worker.flush_output()
        os._exit(0)
    os.close(worker_fd)
    os.close(log_fd)
    _close_fds_but(status_fd)
    os.closerange(0, 3)
    jail.run_init(pid, status_fd)


def fork_worker(request: dict[str, Any], worker_fd: int, log_fd: int, status_fd: int) -> int:
    """Fork a worker (twice, so the server adopts it); returns the pid the server watches
    (the worker's, or in a jail its init's), or -1.

    The first child, for a jail, unshares the namespaces; its child (then pid 1 of the new
    pid namespace: the init, which forks the worker) joins the worker's cgroups first."""
    pid_r, pid_w = os.pipe()
    first = os.fork()
    if first == 0:
        try:
            os.close(pid_r)
            os.setsid()
            jailed = bool(request.get("root"))
            if jailed:
                jail.enter_namespaces()
            second = os.fork()
            if second != 0:
                os.write(pid_w, struct.pack("!i", second))
                os._exit(0)
            os.close(pid_w)
            # Here, not in the first child, so the zygote is free for the next fork while
            # this waits on the cgroups; BOOT waits in the socket meanwhile.
            jail.join_cgroups(request.get("cgroups", []))
            if jailed:
                _init(request, worker_fd, log_fd, status_fd)
            os.close(status_fd)  # the server reads the worker's own exit status
            _become_worker(worker_fd, log_fd, jailed=False)
            worker.flush_output()
            os._exit(0)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.write(2, f"faasbox zygote: cannot start a worker: {e}\n".encode())
            os._exit(70)
    os.close(pid_w)
    os.close(worker_fd)
    os.close(log_fd)
    os.close(status_fd)
    data = b""
    while len(data) < 4:
        chunk = os.read(pid_r, 4 - len(data))
        if not chunk:
            break
        data += chunk
    os.close(pid_r)
    os.waitpid(first, 0)
    return struct.unpack("!i", data)[0] if len(data) == 4 else -1


def main() -> None:
    control_fd = int(sys.argv[1])
    modules = [m for m in sys.argv[2].split(",") if m] if len(sys.argv) > 2 else []
    # Ctrl+C in the server's terminal is the server's business; it stops the zygote itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=control_fd)
    failed = preload(modules)
    # Move everything imported so far out of the collector's sight: a collection in a worker
    # would otherwise write to every object's header and copy the zygote's pages one by one.
    gc.freeze()
    control.send(
        json.dumps({"pid": os.getpid(), "packages": loaded_packages(), "failed": failed}).encode()
    )
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
        except OSError:
            return
        if not message:
            return  # the server closed the socket
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            control.send(json.dumps({"pid": -1, "error": "expected 3 fds"}).encode())
            continue
        pid = fork_worker(json.loads(message), fds[0], fds[1], fds[2])
        control.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    main()
