"""What a worker does to itself before user code runs: a private /tmp where the machine allows.

Linux only. A worker that is root gets its own mount namespace with its temp dir bound over
/tmp, so functions cannot see each other's or the server's /tmp. Without root (or when a path
the worker needs lies under /tmp and would be hidden), it keeps TMPDIR alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


_libc: ctypes.CDLL | None = None
_own_namespace = False


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


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
