"""How to run faasbox again, as it was run now: the command `serve` prints in its hints, so
they work when pasted (`.venv/bin/faasbox` after `make run`, `faasbox` when it is on PATH)."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path


def self_command(argv0: str | None = None) -> str:
    argv0 = sys.argv[0] if argv0 is None else argv0
    program = Path(argv0)
    if program.name == "__main__.py":  # python -m faasbox
        return f"{shlex.quote(sys.executable)} -m faasbox"
    on_path = shutil.which(program.name)
    if program.name == "faasbox" and on_path and Path(on_path).resolve() == program.resolve():
        return "faasbox"
    return shlex.quote(argv0)
