"""Finding a handler from its `module.function` name, with awslambdaric's fault names.

Runs inside the worker, before user code, so it imports only the stdlib.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], Any]


class Fault(Exception):
    """A runtime fault with Lambda's errorType (Runtime.ImportModuleError, ...)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []

    def to_error(self) -> dict[str, Any]:
        return {
            "errorMessage": self.message,
            "errorType": self.error_type,
            "stackTrace": self.trace,
        }


def load_handler(spec: str) -> Handler:
    """Import `path/to/module.function` as Lambda's Python runtime does."""
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as e:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {e}") from None
    # Messages name the module as written ('src/app'), as awslambdaric's do.
    import_name = module_name.replace("/", ".")
    if import_name.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(import_name)
    except ImportError as e:
        raise Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}"
        ) from None
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}", trace
        ) from None
    except Exception as e:  # an error raised by the module's own top-level code
        raise Fault(type(e).__name__, str(e), stack_trace(e)) from None
    try:
        handler = getattr(module, function_name)
    except AttributeError:
        raise Fault(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        ) from None
    if not callable(handler):
        raise Fault(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' on module '{module_name}' is not callable",
        )
    return handler  # type: ignore[no-any-return]


def stack_trace(exc: BaseException) -> list[str]:
    """The frames of the user's code, formatted as awslambdaric formats stackTrace."""
    frames = traceback.extract_tb(exc.__traceback__)
    # Drop the frames of faasbox's own worker loop, as Lambda drops its bootstrap's.
    user_frames = [f for f in frames if "/faasbox/execution/" not in f.filename]
    return traceback.format_list(user_frames)


def error_object(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"errorMessage": str(exc), "errorType": type(exc).__name__}
    if request_id is not None:
        error["requestId"] = request_id
    error["stackTrace"] = stack_trace(exc)
    return error


def format_error_log(error: dict[str, Any]) -> str:
    """The `[ERROR] Type: message` block awslambdaric writes to the log for a failure."""
    text = f"[ERROR] {error['errorType']}: {error['errorMessage']}"
    trace = error.get("stackTrace") or []
    if trace:
        text += "\nTraceback (most recent call last):\n" + "".join(trace)
    return text.rstrip("\n") + "\n"
