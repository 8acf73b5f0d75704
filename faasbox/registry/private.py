"""The data dir is the server's alone: 0700, and its registry and keys 0600.

Functions never see it (their jail's root does not contain it); the modes keep other local
users out too. Code folders inside it are world-readable, which is safe as no path to them
is open to anyone but root.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) if needed, and make it 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # someone else's folder: theirs to set
        path.chmod(0o700)


def private_file(path: Path) -> None:
    """Create `path` empty if needed, and make it 0600 (before SQLite opens it, so its -wal
    and -shm files, which take the database's mode, are private too).

    An existing file is never opened: closing any descriptor of a SQLite database drops the
    POSIX locks this process's connections hold on it."""
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.suppress(PermissionError):
        path.chmod(0o600)
