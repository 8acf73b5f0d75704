"""The runtimes faasbox runs, and how a function's runtime and handler are checked.

Python functions all run on the server's own Python 3 interpreter (workers are forked from a
preloaded zygote), whatever ``pythonX.Y`` the serverless.yml asks for; asking for another
version is a warning, not an error, so that existing services load unchanged.
"""

from __future__ import annotations

import re
import sys
from typing import Literal

DEFAULT_RUNTIME = "python3.11"
WASM = "wasm"

RuntimeKind = Literal["python", "wasm"]

_PYTHON = re.compile(r"python3\.(\d+)")
_PYTHON_HANDLER = re.compile(r"[^\s]*[^\s/.]\.[A-Za-z_][A-Za-z0-9_]*")


def running_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def supported_runtimes() -> str:
    """The runtimes faasbox accepts, for error messages."""
    return f"python3.x (run on this server's Python {running_python()}) and {WASM}"


def runtime_kind(runtime: str) -> RuntimeKind | None:
    """``python`` or ``wasm``; None for a runtime faasbox does not run (nodejs*, provided*...)."""
    if runtime == WASM:
        return "wasm"
    if _PYTHON.fullmatch(runtime):
        return "python"
    return None


def python_runtime_warning(runtime: str, key_path: str) -> str | None:
    """A warning if ``runtime`` is a Python version other than the running one, e.g.
    ``functions.hello.runtime: python3.6 is not installed; running on Python 3.11 instead``."""
    match = _PYTHON.fullmatch(runtime)
    if match is None or f"3.{match.group(1)}" == running_python():
        return None
    return f"{key_path}: {runtime} is not installed; running on Python {running_python()} instead"


def handler_problem(kind: RuntimeKind, handler: str) -> str | None:
    """What is wrong with ``handler`` for a runtime of ``kind``, or None if it is well formed."""
    if kind == "wasm":
        if handler.endswith(".wasm") and len(handler) > len(".wasm"):
            return None
        return f"expected the path of a .wasm file for runtime wasm, got {handler!r}"
    if _PYTHON_HANDLER.fullmatch(handler):
        return None
    return (
        "expected 'module.function' for a Python function (e.g. handler.hello or "
        f"src/handler.hello), got {handler!r}"
    )
