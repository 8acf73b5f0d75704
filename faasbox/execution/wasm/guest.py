"""What the WebAssembly executor runs for a function: its guest program, and how.

The executor does the same for every wasm function (a Store with its limits, WASI, the
deadline, wasi-nn, captured stdout and stderr); a `Guest` says what differs by runtime, and
the runtime registry names it (`Runtime.wasm_guest`):

- `Command` (`runtime: wasm`): the function's own .wasm, a WASI command started at
  `_start`; behind a route it gets the request body on stdin (CGI variables in its
  environment) and its stdout is the response body.
- `faasbox.execution.wasm.quickjs.QuickJs` (`runtime: quickjs`): QuickJS-NG compiled to
  WASI runs the function's JavaScript handler with nodejs20.x's event/result contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import wasmtime

from faasbox.execution.api import Outcome
from faasbox.execution.wasm.http import request_from_event
from faasbox.execution.wasm.options import WasmConfigError, WasmOptions, inside
from faasbox.execution.wasm.outcome import Run, outcome
from faasbox.registry.models import DeployedFunction


class InvalidGuest(Exception):
    """The guest program cannot be found or used (Runtime.InvalidEntrypoint)."""


@dataclass
class Input:
    """What one invocation hands the guest, beyond the executor's own environment."""

    stdin: bytes
    env: list[tuple[str, str]] = field(default_factory=list)
    preopens: list[tuple[Path, str, bool]] = field(default_factory=list)


class Guest(Protocol):
    entry: str  # the export the module must have: "_start" (a command), "_initialize"

    def module(self, fn: DeployedFunction) -> Path:
        """The .wasm file to run (compiled once per file by the engines)."""
        ...

    def argv(self, fn: DeployedFunction, options: WasmOptions) -> list[str]: ...

    def input(self, fn: DeployedFunction, payload: bytes, http_event: bool) -> Input: ...

    def start(self, instance: wasmtime.Instance, store: wasmtime.Store) -> None:
        """Run the program (raises wasmtime's ExitTrap, Trap or WasmtimeError as it ends)."""
        ...

    def outcome(
        self,
        fn: DeployedFunction,
        request_id: str,
        options: WasmOptions,
        run: Run,
        http_event: bool,
        init_ms: float | None,
    ) -> Outcome: ...


class Command:
    """A WASI command: the function's handler is its .wasm file."""

    entry = "_start"

    def __init__(self) -> None:
        self._modules: dict[tuple[Path, str], Path] = {}

    def module(self, fn: DeployedFunction) -> Path:
        """The handler's .wasm file, which must lie inside the function's code."""
        key = (fn.code_dir, fn.config.handler)
        path = self._modules.get(key)
        if path is None:
            try:
                path = inside(fn.code_dir, fn.config.handler)
            except WasmConfigError:
                raise InvalidGuest(
                    f"handler {fn.config.handler!r} leads outside the function's code"
                ) from None
            self._modules[key] = path
        return path

    def argv(self, fn: DeployedFunction, options: WasmOptions) -> list[str]:
        return [Path(fn.config.handler).name, *options.args]

    def input(self, fn: DeployedFunction, payload: bytes, http_event: bool) -> Input:
        if http_event:
            request = request_from_event(payload)
            if request is not None:
                return Input(request.body, list(request.env))
        return Input(payload)

    def start(self, instance: wasmtime.Instance, store: wasmtime.Store) -> None:
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        start(store)

    def outcome(
        self,
        fn: DeployedFunction,
        request_id: str,
        options: WasmOptions,
        run: Run,
        http_event: bool,
        init_ms: float | None,
    ) -> Outcome:
        return outcome(fn, request_id, options, run, http_event, init_ms)
