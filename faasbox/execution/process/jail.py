"""The jail: each worker an execution environment of its own (Linux, the server as root).

What a jailed worker is, and who does which step (docs/security.md has the threat model):

- the zygote's first child (in the spare, off the cold-start path): joins the worker's
  cgroups (memory, pids), then unshares a mount and a pid namespace;
- its child, pid 1 of the new pid namespace, is the worker's *init*: it builds a skeleton
  root on a tmpfs (the system's libraries, the Python installation, the virtualenv and
  faasbox's own package, all read-only; a fresh /proc, a minimal /dev) and pivots into it,
  the old root kept at /.host for BOOT (unmounting it would wait for an RCU grace period,
  milliseconds: BOOT covers it with an empty mount instead), forks the worker, reaps every
  orphan, and when the worker ends writes its wait status to the server and exits, which
  makes the kernel kill whatever else still runs in the namespace;
- the worker, at BOOT (the only jail work on the cold-start path, what depends on the
  function): its code read-only at /var/task and its layers at /opt (from /.host), an
  empty read-only tmpfs over /.host, a tmpfs /tmp of the function's ephemeral storage (what
  of the root lay under /tmp bound again over it), a network namespace with only loopback
  for `network: none`, the limits, then the function's own uid/gid with no capability, no
  new privileges and not dumpable.

Stdlib only: the zygote and the worker import this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import platform
import resource
import socket
import struct
import sys
from collections.abc import Sequence
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine(), -1)
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFF_RUNNING = 0x40

MAX_PROCESSES = 1024  # Lambda's cap on processes and threads per execution environment
MAX_OPEN_FILES = 1024
SHM_MB = 64
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# The system's read-only files: symlinks (a merged /usr) are recreated as symlinks.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")

_libc: ctypes.CDLL | None = None
_own_namespace = False
HOST = "/.host"  # where the old root stays, in a jail, until BOOT covers it
_jailed = False  # this process's init pivoted into a skeleton root
# The visible paths under /tmp (a checkout or virtualenv there, as CI may have) and what of
# them stays hidden: BOOT's fresh /tmp covers them, so BOOT binds them again over it.
_under_tmp: list[str] = []
_hidden_under_tmp: list[str] = []


class JailError(OSError):
    pass


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise JailError(errno, f"{what}: {os.strerror(errno)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        _c().mount(
            source.encode() if source is not None else None,
            target.encode(),
            fstype.encode() if fstype is not None else None,
            ctypes.c_ulong(flags),
            data.encode() if data is not None else None,
        ),
        f"mount {target}",
    )


def _bind_read_only(source: str, target: str) -> None:
    _mount(source, target, None, MS_BIND | MS_REC)
    # A bind mount takes the read-only flag only on a remount.
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _prctl(option: int, arg: int = 0, arg2: int = 0) -> None:
    _check(_c().prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(arg2), 0, 0), f"prctl {option}")


def unshare(flags: int) -> None:
    _check(_c().unshare(flags), "unshare")


# --- in the server: can this machine jail workers at all? ---


def missing() -> list[str]:
    """What this machine lacks to jail workers (empty: everything is there)."""
    if sys.platform != "linux":
        return ["Linux (namespaces, cgroups)"]
    if SYS_PIVOT_ROOT < 0:
        return [f"pivot_root on {platform.machine()}"]
    if os.geteuid() != 0:
        return ["root (the server sets up each worker's namespaces and identity as root)"]
    # Try it, in a child: the flags say which step the kernel or a sandbox refused.
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            unshare(CLONE_NEWNS)
        except OSError:
            code |= 1
        try:
            unshare(CLONE_NEWPID)
        except OSError:
            code |= 2
        try:
            unshare(CLONE_NEWIPC | CLONE_NEWUTS)
        except OSError:
            code |= 16
        if not code & 1:
            try:
                _mount(None, "/", None, MS_REC | MS_PRIVATE)
                _mount("tmpfs", "/mnt", "tmpfs", MS_NOSUID, "size=64k")
            except OSError:
                code |= 4
        try:
            os.setresgid(65534, 65534, 65534)
        except OSError:
            code |= 8
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return ["a child process to test namespaces in"]
    return [
        what
        for bit, what in (
            (1, "mount namespaces (unshare CLONE_NEWNS)"),
            (2, "pid namespaces (unshare CLONE_NEWPID)"),
            (4, "mounting (CAP_SYS_ADMIN)"),
            (8, "changing uid/gid (CAP_SETUID, CAP_SETGID)"),
            (16, "IPC and UTS namespaces (unshare CLONE_NEWIPC, CLONE_NEWUTS)"),
        )
        if code & bit
    ]


# --- in the zygote's children: the spare's cgroups and namespaces ---


def join_cgroups(procs_files: list[str]) -> None:
    """Move this process into the worker's cgroups (the slow part: an RCU grace period), so
    every process the worker starts is counted and limited with it."""
    for path in procs_files:
        with open(path, "w") as f:
            f.write("0")  # this process (its pid in its own namespace would be 1)


SPARE_NAMESPACES = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS


def enter_namespaces() -> None:
    """Mount, pid, IPC (System V shared memory, semaphores, queues; POSIX message queues)
    and UTS namespaces: this process's next child is the pid namespace's init."""
    unshare(SPARE_NAMESPACES)


# --- in the init (pid 1): the skeleton root ---


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _visible_paths(extra: list[str]) -> list[str]:
    """Host paths the worker needs read-only, beyond the system's: the Python installation,
    the virtualenv, what .pth files add to sys.path (a virtualenv borrowing another's
    packages), faasbox's own package (an editable install lives in a checkout, whose other
    files, the data dir among them, must stay out of sight), and `extra` (the other
    runtimes' installations: node's, when it is not under /usr)."""
    import faasbox

    wanted = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.abspath(faasbox.__file__))]
    # Not sys.path[0]: under `python -m` it is the server's working directory, a checkout.
    wanted += [p for p in sys.path[1:] if os.path.isabs(p)]
    wanted += [p for p in extra if os.path.realpath(p) != "/"]
    paths: list[str] = []
    for path in sorted({os.path.realpath(p) for p in wanted}, key=len):
        covered = any(path == p or path.startswith(p + "/") for p in [*SYSTEM_PATHS, *paths])
        if not covered and os.path.isdir(path):
            paths.append(path)
    return paths


def _hide(path: str) -> None:
    _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")


def build_root(root: str, hidden: list[str], visible: Sequence[str] = ()) -> None:
    """Mount the skeleton root at `root` (in this process's own mount namespace) and pivot
    into it, keeping the host's root at /.host to bind a function's code from at BOOT."""
    global _jailed, _under_tmp, _hidden_under_tmp
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing propagates back to the host
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            os.symlink(os.readlink(path), root + path)
        elif os.path.isdir(path):
            _mkdirs(root + path)
            _bind_read_only(path, root + path)
    paths = _visible_paths(list(visible))
    for path in paths:
        _mkdirs(root + path)
        _bind_read_only(path, root + path)
    hidden_here = [r for r in map(os.path.realpath, hidden) if os.path.isdir(root + r)]
    for path in hidden_here:  # the data dir, should one of the paths above contain it
        _hide(root + path)
    _under_tmp = [path for path in paths if path.startswith("/tmp/")]
    _hidden_under_tmp = [path for path in hidden_here if path.startswith("/tmp/")]
    for sub in ("proc", "dev", "tmp", "var/task", "opt", HOST[1:]):
        _mkdirs(f"{root}/{sub}")
    # This process is pid 1 of the new namespace: its /proc shows that namespace only, and
    # hidepid keeps the processes of other users (the init itself) out of the worker's view.
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    _mount("tmpfs", f"{root}/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            open(f"{root}/dev/{name}", "w").close()
            _mount(f"/dev/{name}", f"{root}/dev/{name}", None, MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{root}/dev/{name}")
    os.mkdir(f"{root}/dev/shm")
    _mount(
        "tmpfs",
        f"{root}/dev/shm",
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={SHM_MB}m,mode=1777",
    )
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    os.chdir(root)
    _check(_c().syscall(SYS_PIVOT_ROOT, b".", HOST[1:].encode()), "pivot_root")
    os.chdir("/")
    _jailed = True


def run_init(worker_pid: int, status_fd: int) -> None:
    """pid 1: reap every process of the namespace; when the worker ends, tell the server its
    wait status and exit (the kernel then kills whatever the worker left behind)."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == worker_pid:
            with contextlib.suppress(OSError):
                os.write(status_fd, struct.pack("!i", status))
            os._exit(0)


# --- in the worker, at BOOT: what depends on the function ---


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP | IFF_RUNNING))


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


LAST_CAP = _last_capability() if sys.platform == "linux" else 0


def enter(spec: dict[str, Any]) -> None:
    """Become the function's jailed environment; raises JailError if any step fails (the
    worker then exits rather than run the function unjailed)."""
    if not _jailed:
        raise JailError(0, "this worker has no jail root")
    if spec.get("network") == "none":
        unshare(CLONE_NEWNET)
        _loopback_up()
    _bind_read_only(HOST + spec["code"], "/var/task")  # an absolute, resolved path
    if spec.get("opt"):  # the function's layers, merged (faasbox.registry.layers)
        _bind_read_only(HOST + spec["opt"], "/opt")
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(spec['tmp_mb'])}m,mode=1777")
    for path in _under_tmp:  # none unless the server runs from under /tmp
        _mkdirs(path)  # root's, 0755: the function can neither write nor remove them
        _bind_read_only(HOST + path, path)
    for path in _hidden_under_tmp:
        if os.path.isdir(path):
            _hide(path)
    # Out of sight for good: under a mount the function has no capability to remove.
    _mount("tmpfs", HOST, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k")
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
    if not spec.get("pids_cgroup"):
        resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
    drop_privileges(int(spec["uid"]), int(spec["gid"]))


def drop_privileges(uid: int, gid: int) -> None:
    for cap in range(LAST_CAP + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # clears the permitted and effective capabilities
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)


# --- without the jail (jail off, or a machine that cannot): a private /tmp where possible ---


def prepare_namespace() -> bool:
    """A private mount namespace, made ahead of BOOT (it is the slow part of a private /tmp)."""
    global _own_namespace
    if _own_namespace:
        return True
    if os.geteuid() != 0 or _c().unshare(CLONE_NEWNS) != 0:
        return False
    # Keep our mounts from propagating back to the host's namespace.
    _own_namespace = bool(_c().mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0)
    return _own_namespace


def private_tmp(tmp_dir: str, needed_paths: list[str]) -> bool:
    """Bind `tmp_dir` over /tmp in a private mount namespace; False when not possible here."""
    if any(os.path.realpath(p).startswith("/tmp/") for p in needed_paths):
        return False
    if not prepare_namespace():
        return False
    return bool(_c().mount(tmp_dir.encode(), b"/tmp", None, MS_BIND, None) == 0)
