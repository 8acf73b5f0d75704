"""Dependency bundles: folders of installed files, cached under a hash of what made them.

A bundle is `<cache>/<kind>-<sha256>/`, built in a temporary folder and renamed into place
once complete, so a crashed or failed install never leaves a bundle behind, and a bundle
that exists is reused as it is: installing nothing is the proof a redeploy did not change
the requirements. The key covers the requirements' text, the interpreter's version and the
platform (what pip's choice of wheels depends on).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from faasbox.errors import DependencyInstallError

Progress = Callable[[str], None]
COMPLETE = ".faasbox-bundle"  # written last into a bundle: it is whole
OUTPUT_LINES_KEPT = 40  # of a failed installer's output, in its error


def default_cache_dir() -> Path:
    """Where the CLI keeps bundles between deploys ($FAASBOX_CACHE_DIR, else the user's
    cache folder), as serverless-python-requirements keeps its own."""
    explicit = os.environ.get("FAASBOX_CACHE_DIR")
    if explicit:
        return Path(explicit) / "dependencies"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faasbox" / "dependencies"


def platform_tag() -> str:
    """What an installed wheel is specific to: the OS and machine, and the C library."""
    libc = "-".join(platform.libc_ver()) or "nolibc"
    return f"{sysconfig.get_platform()}-{libc}-{sys.implementation.cache_tag}"


def key(kind: str, *parts: str | bytes) -> str:
    digest = hashlib.sha256(kind.encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return f"{kind}-{digest.hexdigest()}"


def cached(
    cache_dir: Path, bundle_key: str, install: Callable[[Path], None], progress: Progress
) -> Path:
    """The bundle `bundle_key`, installed by `install(folder)` unless it exists already."""
    final = cache_dir / bundle_key
    if (final / COMPLETE).exists():
        progress(f"{bundle_key[:20]}: unchanged, nothing to install (cached in {final})")
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir))
    try:
        install(staging)
        (staging / COMPLETE).write_text(bundle_key + "\n")
        if final.exists():  # an incomplete leftover
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(staging, final)
        except OSError:  # a concurrent deploy finished the same bundle first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def files(folder: Path, under: str = "") -> Iterator[tuple[str, Path]]:
    """(package path, file) of a bundle's files, in a stable order."""
    root = folder / under if under else folder
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel != COMPLETE and not path.is_symlink() and path.is_file():
                yield rel, path


def run(argv: Sequence[str], cwd: Path, what: str, progress: Progress, env: dict[str, str]) -> None:
    """Run an installer, each line of its output to `progress`; a failure raises with the
    installer's own last lines."""
    progress(f"{what}: {' '.join(argv)}")
    tail: deque[str] = deque(maxlen=OUTPUT_LINES_KEPT)
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as e:
        raise DependencyInstallError(f"{what}: cannot run {argv[0]}: {e.strerror}") from None
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail.append(line)
            progress(line)
    if proc.wait() != 0:
        output = "\n".join(tail)
        raise DependencyInstallError(
            f"{what} failed (exit status {proc.returncode}); nothing was deployed:\n{output}"
        )
