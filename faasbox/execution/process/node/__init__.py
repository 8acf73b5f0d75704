"""The Node.js worker, as the server starts it: `node [V8 flags] bootstrap.js CONTROL_FD`.

bootstrap.js (beside this file) is the worker itself, in plain Node. Node cannot fork, so each
worker is a new `node` process; the launcher keeps one started ahead of need (a spare, waiting
for its BOOT), and a cold start is INIT only.

V8 sizes its heap once, at start, so the spare is started for a memory size: like Lambda's
Node.js runtime, the old space gets 90% of the function's memory and each semi-space 5%, and
`global.gc` is exposed. Without these flags Node sizes its heap from the memory cgroup it
happens to be in when it starts, which for a spare is not the function's. The function's
NODE_OPTIONS (`--enable-source-maps`, say) are read at start too: they are part of the
command, so a spare is started per memory size and NODE_OPTIONS.
"""

from __future__ import annotations

import functools
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faasbox.registry.models import FunctionConfig

BOOTSTRAP = Path(__file__).resolve().parent / "bootstrap.js"
RUNTIME_DIR = BOOTSTRAP.parent


@functools.cache
def node_binary() -> str | None:
    """The `node` on the server's PATH, or None."""
    return shutil.which("node")


@functools.cache
def installed_version() -> str | None:
    """The installed Node.js, as `20.20.2`; None when there is none (or it does not run)."""
    node = node_binary()
    if node is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    version = out.stdout.strip().removeprefix("v")
    return version if out.returncode == 0 and version else None


def installed_major() -> str:
    """`20`, or "" when Node.js is not installed."""
    version = installed_version()
    return version.split(".")[0] if version else ""


def bin_dir() -> Path | None:
    """The folder of `node`, first on a Node.js worker's PATH (as /var/lang/bin on Lambda)."""
    binary = node_binary()
    return Path(binary).parent if binary else None


def v8_flags(memory_mb: int) -> list[str]:
    """The flags Lambda's Node.js runtime starts node with for a function of `memory_mb`."""
    return [
        "--expose-gc",
        f"--max-semi-space-size={max(1, memory_mb * 5 // 100)}",
        f"--max-old-space-size={max(16, memory_mb * 90 // 100)}",
    ]


def options_flags(node_options: str) -> list[str]:
    """The function's NODE_OPTIONS as node's own arguments (node reads the variable when it
    starts, and a spare starts before it knows its function)."""
    try:
        return shlex.split(node_options)
    except ValueError:  # unbalanced quotes: as the words they are
        return node_options.split()


def worker_command(config: FunctionConfig) -> list[str]:
    """The worker's argv but for its control fd, which the launcher appends."""
    node = node_binary()
    if node is None:
        raise FileNotFoundError("node is not installed on this machine (not found on PATH)")
    options = options_flags(config.environment.get("NODE_OPTIONS", ""))
    return [node, *v8_flags(config.memory_size), *options, str(BOOTSTRAP)]
