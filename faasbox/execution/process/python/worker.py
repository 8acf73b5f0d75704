"""The worker: one execution environment, running one invocation at a time.

Started as `python -m faasbox.execution.process.python.worker CONTROL_FD` with fd 1 and 2 on
the server's log pipe. It reads a BOOT frame (who it is, what to import), does INIT once
(imports the handler module) and then serves INVOKE frames until the server closes the socket
or kills it.

Imports only the stdlib and faasbox's stdlib-only runtime modules, so nothing of the server's
dependencies is loaded into a function's process.
"""

from __future__ import annotations

import binascii
import ctypes
import decimal
import fcntl
import io
import json
import logging
import os
import resource
import socket
import sys
import termios
import time
from typing import Any

from faasbox import fastjson
from faasbox.execution.process import jail, protocol
from faasbox.execution.process.python import search_path
from faasbox.execution.process.python.context import for_invocation
from faasbox.execution.process.python.handler_loading import (
    Fault,
    Handler,
    error_object,
    format_error_log,
    load_handler,
)

_current_request_id = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _current_request_id
        return True


class _LambdaFormatter(logging.Formatter):
    """awslambdaric's text format: [LEVEL]\\tTIMESTAMP\\tREQUEST_ID\\tmessage."""

    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )


# Lambda's level names for the logging module's, both ways (TRACE is below DEBUG).
_LAMBDA_LEVEL = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_LOGGING_LEVEL = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40}
_LOGGING_LEVEL["FATAL"] = _LOGGING_LEVEL["CRITICAL"] = 50
# LogRecord's own attributes: anything else on a record came in `extra=` and is logged too.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "aws_request_id",
}


class _JsonFormatter(logging.Formatter):
    """Lambda's JSON log format (logFormat: JSON): one object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": _LAMBDA_LEVEL.get(record.levelname, record.levelname),
            "message": record.getMessage(),
            "logger": record.name,
        }
        if _current_request_id:
            entry["requestId"] = _current_request_id
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            entry["errorType"] = type(error).__name__
            entry["errorMessage"] = str(error)
            entry["stackTrace"] = self.formatException(record.exc_info).splitlines()
        entry["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS:
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def _setup_output() -> None:
    # Unbuffered text on fd 1/2, so output written before a timeout kill is not lost.
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", write_through=True
    )
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stdout)
    as_json = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    handler.setFormatter(_JsonFormatter() if as_json else _LambdaFormatter())
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)
    # Text: Python's own default (WARNING); JSON: the function's applicationLogLevel.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO" if as_json else "WARNING").upper()
    root.setLevel(_LOGGING_LEVEL.get(level, logging.WARNING))


_libc_fflush: Any = None


def flush_output() -> None:
    """Flush Python's and C's stdio so the log of this invocation is complete."""
    global _libc_fflush
    # try/except, not contextlib.suppress: no context manager per stream per invocation.
    try:  # noqa: SIM105
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    try:  # noqa: SIM105
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if _libc_fflush is None:
        try:
            _libc_fflush = ctypes.CDLL(None).fflush
        except (OSError, AttributeError):
            _libc_fflush = False
    if _libc_fflush:
        _libc_fflush(None)


_FOUR_BYTES = bytes(4)


def output_pending() -> bool:
    """Whether the log pipe (fd 1, and 2 beside it) holds bytes the server has not read yet:
    when it holds none, the server's reader already has all this invocation wrote, and it
    need not read the pipe once more after the RESULT (a syscall and an EAGAIN per
    invocation). Unknown (fd 1 is not a pipe any more): True."""
    try:
        return int.from_bytes(fcntl.ioctl(1, termios.FIONREAD, _FOUR_BYTES), sys.byteorder) > 0
    except OSError:
        return True


# glibc's malloc gives a freed top of the heap back to the kernel once it exceeds the trim
# threshold (128 KB until a freed mmap raises it), and maps each block over the mmap
# threshold anew. A handler that allocates and frees a few MB per invocation (an image's
# pixels, its encoded bytes) then pays ~100 page faults and several brk calls every time: a
# heap that grows and shrinks per request. A worker serves one function at a time with a
# memory limit of its own, so its heap keeps what it once needed: what glibc's dynamic
# thresholds would converge to after a 32 MB block (its ceiling), set from the start. The
# peak (REPORT's Max Memory Used, the memory limit) is unchanged; only the give-back is.
HEAP_DEFAULTS = {"MALLOC_MMAP_THRESHOLD_": 32 << 20, "MALLOC_TRIM_THRESHOLD_": 64 << 20}
# glibc reads these variables when a process starts; a worker forked from a zygote started
# before the function's environment existed, so they are applied here, as on Lambda, where
# the runtime's process starts with them. (GLIBC_TUNABLES is not.)
MALLOPT_PARAMETERS = {
    "MALLOC_TRIM_THRESHOLD_": -1,  # M_TRIM_THRESHOLD
    "MALLOC_TOP_PAD_": -2,  # M_TOP_PAD
    "MALLOC_MMAP_THRESHOLD_": -3,  # M_MMAP_THRESHOLD
    "MALLOC_MMAP_MAX_": -4,  # M_MMAP_MAX
    "MALLOC_ARENA_MAX": -8,  # M_ARENA_MAX
}


def keep_heap(env: dict[str, str]) -> None:
    """Set glibc's heap parameters for a worker: the function's own MALLOC_* variables where
    it has them, else HEAP_DEFAULTS (a no-op on another libc)."""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return
    if not glibc:
        return
    for name, parameter in MALLOPT_PARAMETERS.items():
        value = env.get(name)
        if value is not None and value.strip().isdigit() and int(value) < 1 << 31:
            mallopt(parameter, int(value))  # a C int
        elif name in HEAP_DEFAULTS:
            mallopt(parameter, HEAP_DEFAULTS[name])


def _json_default(obj: Any) -> Any:
    # Lambda's runtime marshals Decimal (DynamoDB's number type) as a JSON number.
    if isinstance(obj, decimal.Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# `json.dumps(x, default=_json_default)`, whose encoder json.dumps would make per call.
_dumps_result = fastjson.encoder(default=_json_default)


def _packages() -> list[str]:
    """Top-level non-stdlib packages imported so far (tells the launcher what INIT needed)."""
    names = {name.partition(".")[0] for name in list(sys.modules)}
    return sorted(n for n in names if n not in sys.stdlib_module_names and n[:1] != "_")


def _max_memory_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def boot(ctrl: socket.socket, header: dict[str, Any]) -> None:
    """Become the function's environment: variables, cwd, /tmp, sys.path."""
    os.environ.clear()
    os.environ.update(header["env"])
    time.tzset()
    task_root = header["task_root"]
    extra_paths: list[str] = header.get("paths", [])
    if header.get("jail"):
        try:
            jail.enter(header["jail"])
        except OSError as e:  # never run a function outside the jail it was promised
            sys.stderr.write(f"faasbox: cannot enter the jail: {e}\n")
            os._exit(71)
    elif header.get("tmp_dir"):
        jail.private_tmp(header["tmp_dir"], [task_root, *extra_paths, sys.prefix, __file__])
    os.chdir(task_root)
    # Lambda's order, and nothing of the server's virtualenv (search_path).
    search_path.enter([*header["sys_path"][:1], *extra_paths, *header["sys_path"][1:]])
    sys.argv = [header["handler"]]


def init(ctrl: socket.socket, header: dict[str, Any], boot_ms: float) -> Handler | None:
    started = time.perf_counter()
    try:
        handler = load_handler(header["handler"])
    except Fault as fault:
        error = fault.to_error()
    except BaseException as e:  # SystemExit at import time is a failed INIT, not a crash
        error = error_object(e)
    else:
        init_ms = (time.perf_counter() - started) * 1000
        flush_output()
        protocol.send_frame(
            ctrl,
            protocol.READY,
            {
                "boot_ms": boot_ms,
                "import_ms": init_ms,
                "max_memory_kb": _max_memory_kb(),
                "packages": _packages(),
            },
        )
        return handler
    sys.stderr.write(format_error_log(error))
    flush_output()
    protocol.send_frame(ctrl, protocol.INIT_ERROR, {"error": error})
    return None


def invoke(
    ctrl: socket.socket,
    handler: Handler,
    boot_header: dict[str, Any],
    header: dict[str, Any],
    body: bytes,
) -> None:
    global _current_request_id
    request_id: str = header["request_id"]
    _current_request_id = request_id
    # As Lambda's runtime does: the invocation's X-Ray trace header, for SDKs that read it.
    trace_id = header.get("trace_id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]
    context = for_invocation(
        boot_header["function_name"],
        boot_header["version"],
        header.get("invoked_arn", boot_header["arn"]),
        str(boot_header["memory_mb"]),
        request_id,
        boot_header["log_group"],
        boot_header["log_stream"],
        header["deadline_ms"],
        header.get("identity"),
        header.get("client_context"),
    )
    started = time.perf_counter()
    ok = True
    beside = b""  # a proxy response's body, decoded, sent after `out`
    split = False  # `out` is a proxy response's JSON without its body, `beside` that body
    try:
        body_at = header.get("body_at")
        event = (fastjson.loads(body) if body else {}) if body_at is None else _event(body, body_at)
        result = handler(event, context)
        try:
            parts = _response_parts(result) if header.get("body_beside") else None
            if parts is None:
                out = _dumps_result(result).encode()
            else:
                out, beside = parts
                split = True
        except (TypeError, ValueError) as e:
            ok = False
            error = {
                "errorMessage": f"Unable to marshal response: {e}",
                "errorType": "Runtime.MarshalError",
                "requestId": request_id,
                "stackTrace": [],
            }
    except Exception as e:
        ok = False
        error = error_object(e, request_id)
    duration_ms = (time.perf_counter() - started) * 1000
    if not ok:
        sys.stderr.write(format_error_log(error))
        out = json.dumps(error).encode()
        beside, split = b"", False
    flush_output()
    result_header = {
        "ok": ok,
        "duration_ms": duration_ms,
        "max_memory_kb": _max_memory_kb(),
        "output_pending": output_pending(),
    }
    if split:
        result_header["body_at"] = len(out)
    if beside:  # the decoded image leaves in a vectored write, not copied behind the JSON
        protocol.send_frame_parts(ctrl, protocol.RESULT, result_header, out, beside)
    else:
        protocol.send_frame(ctrl, protocol.RESULT, result_header, out)


def _event(body: bytes, body_at: int) -> Any:
    """An HTTP event whose binary body came beside it (faasbox.execution.body_beside): the
    dict json.loads of the whole event would give, its last two keys added in its order."""
    event = fastjson.loads(body[:body_at])
    event["body"] = binascii.b2a_base64(memoryview(body)[body_at:], newline=False).decode("ascii")
    event["isBase64Encoded"] = True
    return event


def _response_parts(result: Any) -> tuple[bytes, bytes] | None:
    """A proxy response with a base64 body, as the JSON of the rest and the decoded body;
    None (send the whole JSON) unless the gateway, given the
    whole, would provably have decoded the same bytes: a dict of string keys with a
    statusCode, `isBase64Encoded` true and a `body` string that the gateway's own check
    (`b64decode(validate=True)`, faasbox.gateway.apigw_events) accepts. Anything odd takes
    the whole-JSON path, and the gateway's answer to it is the one it always gave."""
    if type(result) is not dict or result.get("isBase64Encoded") is not True:
        return None
    text = result.get("body")
    if type(text) is not str or "statusCode" not in result:
        return None
    if not all(type(key) is str for key in result):  # json.dumps would rename them
        return None
    try:
        # The same accepted strings and bytes as b64decode(validate=True) (tests/unit/
        # test_body_beside.py), without its regex pass over the whole string first.
        decoded = binascii.a2b_base64(text, strict_mode=True)
        rest = _dumps_result({k: v for k, v in result.items() if k != "body"}).encode()
    except Exception:  # the whole-JSON path reports it as it always did
        return None
    return rest, decoded


def serve(ctrl: socket.socket, boot_header: dict[str, Any] | None = None) -> None:
    """Serve `ctrl` until the server closes it; `boot_header`: BOOT, when a zygote read it."""
    if boot_header is None:
        kind, boot_header, _ = protocol.recv_frame(ctrl)
        if kind != protocol.BOOT:
            raise protocol.ProtocolError(f"expected BOOT, got frame kind {kind}")
    started = time.perf_counter()
    boot(ctrl, boot_header)
    keep_heap(boot_header["env"])
    _setup_output()
    handler = init(ctrl, boot_header, (time.perf_counter() - started) * 1000)
    if handler is None:
        os._exit(1)
    # Buffered: BOOT was read exactly, so nothing of INVOKE is in another buffer.
    frames: Any = ctrl.makefile("rb", buffering=1 << 16)
    while True:
        try:
            kind, header, body = protocol.read_frame(frames)
        except protocol.ProtocolError:
            return  # the server closed the socket: SHUTDOWN
        if kind == protocol.INVOKE:
            invoke(ctrl, handler, boot_header, header, body)


def main() -> None:
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    serve(ctrl)
    flush_output()
    os._exit(0)


if __name__ == "__main__":
    main()
