"""`runtime: quickjs`: JavaScript handlers run by QuickJS-NG compiled to WASI.

The engine is QuickJS-NG's `qjs-wasi-reactor.wasm` (MIT), from PyPI's data-only package
`qjs-wasi-reactor.wasm`: a WASI *reactor* exporting `_initialize` and
`qjs_init_argv(argc, argv)`, which runs `qjs` with those arguments (evaluates the script and
runs its event loop until it is idle) and returns. faasbox runs it like any wasm function,
in the same executor, sandbox and limits (a fresh Store per invocation, memorySize as the
cap on linear memory, the epoch deadline for the timeout, no network, only WASI), with:

| guest path | what |
|---|---|
| `/var/runtime/bootstrap.mjs` | faasbox's bootstrap (this folder, read-only) |
| `/var/task` | the function's code, read-only |

The bootstrap reads the event (JSON) on stdin, loads the handler (`file.export`, as
nodejs20.x resolves it: .js CommonJS or ES module by package.json's "type", .mjs, .cjs),
calls it with `(event, context)` (or a callback as the third argument), and writes its
result as JSON on stdout. The result is the invocation's payload, as a Node.js function's
is: behind a route the handler returns the proxy response itself ({statusCode, headers,
body, isBase64Encoded}), so one handler file answers the same on `quickjs` and
`nodejs20.x`. console.* go to stderr (the function's log) in Lambda's Node.js format. A
thrown error (or a rejected promise) is written as `{errorType, errorMessage, trace}` with
the exit code `HANDLER_FAILED`: a function error (Unhandled), as on Node.js.

Not Node.js: there is no `require` of packages, no `fs`, `net`, `Buffer` or `process`; the
engine is QuickJS (ES2023) with its `qjs:std`/`qjs:os` modules, whose files and clocks are
the sandbox's.
"""

from __future__ import annotations

import importlib.metadata
import json
import struct
import time
from pathlib import Path
from typing import Any

import wasmtime

from faasbox.execution.api import Outcome
from faasbox.execution.wasm.guest import Input, InvalidGuest
from faasbox.execution.wasm.options import WasmOptions
from faasbox.execution.wasm.outcome import Run, outcome
from faasbox.registry.models import DeployedFunction

DISTRIBUTION = "qjs-wasi-reactor.wasm"
ENGINE_FILE = "qjs-wasi-reactor/qjs-wasi-reactor.wasm"
RUNTIME_DIR = Path(__file__).resolve().parent  # holds bootstrap.mjs
GUEST_RUNTIME = "/var/runtime"
GUEST_TASK = "/var/task"
ARGV = ["qjs", f"{GUEST_RUNTIME}/bootstrap.mjs"]
HANDLER_FAILED = 70  # bootstrap.mjs's exit code for a handler that threw


def engine_path() -> Path:
    try:
        path = Path(str(importlib.metadata.distribution(DISTRIBUTION).locate_file(ENGINE_FILE)))
    except importlib.metadata.PackageNotFoundError:
        raise InvalidGuest(
            f"the quickjs runtime needs the Python package {DISTRIBUTION} (pyproject.toml "
            "lists it): reinstall faasbox"
        ) from None
    if not path.is_file():
        raise InvalidGuest(f"{DISTRIBUTION} is installed without {ENGINE_FILE}")
    return path


class QuickJs:
    entry = "_initialize"

    def __init__(self) -> None:
        self._engine: Path | None = None

    def module(self, fn: DeployedFunction) -> Path:
        if self._engine is None:
            self._engine = engine_path()
        return self._engine

    def argv(self, fn: DeployedFunction, options: WasmOptions) -> list[str]:
        return list(ARGV)

    def input(self, fn: DeployedFunction, payload: bytes, http_event: bool) -> Input:
        # The event as it is, behind a route too: the handler answers API Gateway itself.
        deadline_ms = int((time.time() + fn.config.timeout) * 1000)
        env = [
            ("_HANDLER", fn.config.handler),
            ("LAMBDA_TASK_ROOT", GUEST_TASK),
            ("LAMBDA_RUNTIME_DIR", GUEST_RUNTIME),
            ("AWS_EXECUTION_ENV", "faasbox_quickjs"),
            ("FAASBOX_DEADLINE_MS", str(deadline_ms)),
        ]
        preopens = [(RUNTIME_DIR, GUEST_RUNTIME, False), (fn.code_dir, GUEST_TASK, False)]
        return Input(payload or b"null", env, preopens)

    def start(self, instance: wasmtime.Instance, store: wasmtime.Store) -> None:
        exports = instance.exports(store)
        initialize, malloc, init_argv = (
            exports["_initialize"],
            exports["malloc"],
            exports["qjs_init_argv"],
        )
        memory = exports["memory"]
        assert isinstance(initialize, wasmtime.Func) and isinstance(malloc, wasmtime.Func)
        assert isinstance(init_argv, wasmtime.Func) and isinstance(memory, wasmtime.Memory)
        initialize(store)
        pointers = []
        for arg in ARGV:
            data = arg.encode() + b"\0"
            pointer = malloc(store, len(data))
            memory.write(store, data, pointer)
            pointers.append(pointer)
        argv = malloc(store, 4 * len(pointers))
        memory.write(store, struct.pack(f"<{len(pointers)}I", *pointers), argv)
        # Returns when the bootstrap's event loop is idle; the bootstrap ends with exit().
        if init_argv(store, len(pointers), argv) != 0:
            raise wasmtime.WasmtimeError("qjs could not run faasbox's bootstrap (see the log)")

    def outcome(
        self,
        fn: DeployedFunction,
        request_id: str,
        options: WasmOptions,
        run: Run,
        http_event: bool,
        init_ms: float | None,
    ) -> Outcome:
        if run.exit_code == HANDLER_FAILED and not run.timed_out and not run.stdout_over:
            error = _error_object(run.stdout)
            if error is not None:
                log = run.stderr.decode("utf-8", "replace")
                memory_mb = max(1, -(-run.memory_bytes // (1 << 20))) if run.memory_bytes else 0
                status = (
                    "crash" if str(error.get("errorType", "")).startswith("Runtime.") else "error"
                )
                return Outcome(
                    status,
                    run.stdout,
                    log,
                    run.duration_ms,
                    memory_mb,
                    init_ms is not None,
                    init_ms,
                )
        if run.exit_code == 0 and not run.stdout and not run.timed_out:
            run.exit_code = 1  # the bootstrap always writes JSON: it did not finish
        # Traps, timeouts, memory, sizes: as for any wasm function; the payload is the
        # handler's JSON result, never a raw body (the handler answers routes itself).
        return outcome(fn, request_id, options, run, False, init_ms)


def _error_object(stdout: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(stdout)
    except ValueError:
        return None
    if isinstance(value, dict) and "errorType" in value and "errorMessage" in value:
        return value
    return None
