"""The runtime registry: the one place that knows runtime names.

Each entry maps a pattern of runtime names (`python3.11`, `wasm`) to the executor kind that
runs them, how a handler of that runtime is written, what a serverless.yml key only it reads
is called, and, for the runtimes of the process executor, how their worker program starts.
Config validation, the Lambda API, the CLI, the invoker and the process launcher ask this
module; none of them compares runtime names itself.

Adding a runtime run by worker processes (Node.js, a `provided` bootstrap) is one `Runtime`
entry in `RUNTIMES`, with a `WorkerStart` naming its worker program, plus that program.
A new executor kind is an entry in `EXECUTORS` too (the class that implements
faasbox.execution.api.Executor; imported only when a function of that kind is first used).

Python functions all run on the server's own Python 3 interpreter, whatever `pythonX.Y` the
serverless.yml asks for; asking for another version is a warning, not an error, so existing
services load unchanged.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faasbox.errors import InvalidRuntime
from faasbox.execution.process import node
from faasbox.execution.process.python import search_path

if TYPE_CHECKING:
    from faasbox.registry.models import FunctionConfig

# Executor kinds, and the class implementing each (module:attribute, imported on first use:
# wasmtime loads only when a WebAssembly function runs).
PROCESS = "process"
WASM = "wasm"
EXECUTORS = {
    PROCESS: "faasbox.execution.process.executor:ProcessExecutor",
    WASM: "faasbox.execution.wasm.executor:WasmExecutor",
}
EAGER_EXECUTORS = (PROCESS,)  # started with the server: its zygotes preload meanwhile
# `serve --ray`: the process kind's functions run on a Ray cluster's nodes, where this
# executor hosts the process executor (faasbox.execution.ray).
RAY_EXECUTOR = "faasbox.execution.ray.executor:RayExecutor"


def executor_class(kind: str, on_ray: bool) -> str:
    """The class (module:attribute) of the executor of `kind`: on a Ray cluster, the process
    kind's is the Ray executor; the others stay on this machine."""
    if on_ray and kind == PROCESS:
        return RAY_EXECUTOR
    return EXECUTORS[kind]


@dataclass(frozen=True)
class WorkerStart:
    """How the process executor starts a worker of one runtime.

    `module`: a Python module of faasbox run by the server's interpreter; such workers can be
    forked from a zygote (`forkable`). `command`: a program spawned for each worker (runtimes
    whose interpreter cannot fork, such as Node.js), its first item an absolute path (it is
    not looked up on PATH). Either gets its control socket's file descriptor number as its
    last argument, fds 1 and 2 are its log pipe, and it speaks the worker protocol over the
    socket (faasbox.execution.process.protocol: BOOT, INIT's READY or error, INVOKE/RESULT).
    """

    module: str | None = None
    command: tuple[str, ...] = ()
    forkable: bool = False
    # A command that depends on the function (node: V8 sizes its heap once, when it starts,
    # and reads NODE_OPTIONS then): spares of such a runtime are kept per command.
    command_for: Callable[[FunctionConfig], list[str]] | None = None
    runtime_dir: Path | None = None  # LAMBDA_RUNTIME_DIR; the Python worker's by default
    bin_dir: Callable[[], Path | None] | None = None  # first on PATH; Python's by default
    # Lambda answers an INIT error of this runtime with the invocation's requestId added
    # (awslambdaric does; Lambda's Node.js runtime sends its error object as it is).
    init_error_names_request: bool = True
    # What of a function's layers (`opt`: /opt, or where it is emulated) goes on the runtime's
    # module path after the code (sys.path, NODE_PATH), in Lambda's order.
    layer_paths: Callable[[str], list[str]] | None = None
    # The worker takes an HTTP event's binary body beside the event and may answer a proxy
    # response's body beside its result (INVOKE's and RESULT's `body_at`,
    # faasbox.execution.body_beside); other workers get the whole event's JSON.
    body_beside: bool = False

    def spawn_command(self, config: FunctionConfig | None = None) -> tuple[str, ...]:
        """The program and arguments of a spawned worker of `config`, but its control fd."""
        if self.module is not None:
            return (sys.executable, "-m", self.module)
        if self.command_for is not None and config is not None:
            return tuple(self.command_for(config))
        return self.command

    def argv(self, control_fd: int, config: FunctionConfig | None = None) -> list[str]:
        return [*self.spawn_command(config), str(control_fd)]


@dataclass(frozen=True)
class Runtime:
    """One family of runtime names and how faasbox runs it."""

    listed_as: str  # as error messages list it: "python3.x"
    pattern: re.Pattern[str]  # the names; a `version` group, if any, is the language version
    executor: str  # a key of EXECUTORS
    handler: re.Pattern[str]  # what a well-formed handler matches
    handler_hint: str  # how to write one, for "got <handler>" messages
    missing_hint: str  # the same, for "handler is missing" messages
    supported_as: str  # in "supported: ..." lists: "python3.x (run on this server's ...)"
    described: str  # what it runs, for error messages: "Python functions (python3.x, ...)"
    language: str = ""  # "Python", for "running on Python 3.11 instead"
    installed: Callable[[], str] | None = None  # the version that runs, when one does
    options_key: str | None = None  # a function key of serverless.yml only this runtime reads
    worker: WorkerStart | None = None  # runtimes of the process executor only
    # Runtimes of the wasm executor: the guest that runs their functions (module:class).
    wasm_guest: str = "faasbox.execution.wasm.guest:Command"

    def handler_problem(self, handler: str) -> str | None:
        """What is wrong with `handler`, or None if it is well formed."""
        if self.handler.fullmatch(handler):
            return None
        return f"{self.handler_hint}, got {handler!r}"

    def version_warning(self, runtime: str, key_path: str) -> str | None:
        """A warning when `runtime` asks for a version other than the installed one, e.g.
        ``functions.hello.runtime: python3.6 is not installed; running on Python 3.11 instead``."""
        match = self.pattern.fullmatch(runtime)
        if self.installed is None or match is None or "version" not in match.groupdict():
            return None
        installed = self.installed()
        if not installed:
            return (
                f"{key_path}: {runtime} needs {self.language}, which is not installed on this "
                "machine; its functions will fail to start"
            )
        if match["version"] == installed:
            return None
        return (
            f"{key_path}: {runtime} is not installed; "
            f"running on {self.language} {installed} instead"
        )


def running_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


PYTHON = Runtime(
    listed_as="python3.x",
    pattern=re.compile(r"python(?P<version>3\.\d+)"),
    executor=PROCESS,
    handler=re.compile(r"[^\s]*[^\s/.]\.[A-Za-z_][A-Za-z0-9_]*"),
    handler_hint=(
        "expected 'module.function' for a Python function (e.g. handler.hello or src/handler.hello)"
    ),
    missing_hint="expected 'module.function', e.g. handler.hello for def hello() in handler.py",
    supported_as=f"python3.x (run on this server's Python {running_python()})",
    described=f"Python functions (python3.x, on this server's Python {running_python()})",
    language="Python",
    installed=running_python,
    worker=WorkerStart(
        module="faasbox.execution.process.python.worker",
        forkable=True,
        layer_paths=search_path.layer_paths,
        body_beside=True,
    ),
)
WEBASSEMBLY = Runtime(
    listed_as="wasm",
    pattern=re.compile(r"wasm"),
    executor=WASM,
    handler=re.compile(r".+\.wasm", re.DOTALL),
    handler_hint="expected the path of a .wasm file for runtime wasm",
    missing_hint="expected the path of the function's .wasm file",
    supported_as="wasm",
    described="WebAssembly (wasm)",
    options_key="wasm",
)
QUICKJS = Runtime(
    listed_as="quickjs",
    pattern=re.compile(r"quickjs"),
    executor=WASM,
    handler=re.compile(r"[^\s]*[^\s/.]\.[^\s/]*[^\s/.]"),  # as Node.js's: file.export
    handler_hint=(
        "expected 'file.export' for a QuickJS function (e.g. index.handler or src/app.main)"
    ),
    missing_hint="expected 'file.export', e.g. index.handler for exports.handler in index.js",
    supported_as="quickjs (JavaScript on QuickJS-NG, in WebAssembly)",
    described="JavaScript on QuickJS (quickjs)",
    wasm_guest="faasbox.execution.wasm.quickjs:QuickJs",
)
NODE = Runtime(
    listed_as="nodejs2x.x",
    # nodejs18.x, nodejs20.x, nodejs22.x...: any runs on the installed Node.js (a warning
    # says so when its major version differs), as python3.x runs on this Python.
    pattern=re.compile(r"nodejs(?P<version>[1-9][0-9]*)\.x"),
    executor=PROCESS,
    handler=re.compile(r"[^\s]*[^\s/.]\.[^\s/]*[^\s/.]"),
    handler_hint=(
        "expected 'file.export' for a Node.js function (e.g. index.handler or src/app.main)"
    ),
    missing_hint="expected 'file.export', e.g. index.handler for exports.handler in index.js",
    supported_as="nodejs2x.x (run on this server's Node.js)",
    described="Node.js functions (nodejs2x.x, on this server's Node.js)",
    language="Node.js",
    installed=node.installed_major,
    worker=WorkerStart(
        command_for=node.worker_command,
        runtime_dir=node.RUNTIME_DIR,
        bin_dir=node.bin_dir,
        init_error_names_request=False,
        layer_paths=lambda opt: [
            f"{opt}/nodejs/node{node.installed_major()}/node_modules",
            f"{opt}/nodejs/node_modules",
        ],
    ),
)
PROVIDED = Runtime(
    listed_as="provided.al2023, provided.al2",
    pattern=re.compile(r"provided\.al2023|provided\.al2"),
    executor=PROCESS,
    # The function's own `bootstrap` reads _HANDLER; Lambda asks only for a word.
    handler=re.compile(r"[^\s]+"),
    handler_hint="expected a handler name without spaces for the bootstrap to read in _HANDLER",
    missing_hint="expected a handler name for the bootstrap (_HANDLER), e.g. function.handler",
    supported_as="provided.al2023/provided.al2 (a `bootstrap` speaking Lambda's Runtime API)",
    described="custom runtimes (provided.al2023, provided.al2: a `bootstrap` program)",
    # Stdlib-only Python: forked from a zygote, it enters the jail at BOOT as Python's does.
    worker=WorkerStart(module="faasbox.execution.process.runtime_api.worker", forkable=True),
)
RUNTIMES: tuple[Runtime, ...] = (PYTHON, NODE, PROVIDED, QUICKJS, WEBASSEMBLY)

DEFAULT_RUNTIME = "python3.11"
OPTIONS_KEYS = frozenset(r.options_key for r in RUNTIMES if r.options_key)

_found: dict[str, Runtime] = {}


def lookup(name: str) -> Runtime | None:
    """The runtime of `name`, or None for a runtime faasbox does not run (java21...)."""
    runtime = _found.get(name)
    if runtime is None:
        runtime = next((r for r in RUNTIMES if r.pattern.fullmatch(name)), None)
        if runtime is not None:  # only known names are kept: the cache stays small
            _found[name] = runtime
    return runtime


def of(name: str) -> Runtime:
    """The runtime of a deployed function (its name was checked when it was deployed)."""
    runtime = lookup(name)
    if runtime is None:
        raise InvalidRuntime(
            f"runtime {name!r} is not supported by faasbox; supported: {supported_runtimes()}"
        )
    return runtime


def executor_kind(name: str) -> str:
    return of(name).executor


def supported_runtimes() -> str:
    """The runtimes faasbox accepts, for error messages: `python3.x (...) and wasm`."""
    listed = [r.supported_as for r in RUNTIMES]
    return ", ".join(listed[:-1]) + f" and {listed[-1]}"


def enum_names() -> str:
    """The runtimes as the Lambda API's enum constraint lists them: `python3.x, wasm`."""
    return ", ".join(r.listed_as for r in RUNTIMES)


def described() -> str:
    """`Python functions (...) and WebAssembly (wasm)`."""
    parts = [r.described for r in RUNTIMES]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}"


def example_names() -> str:
    """`python3.11 or wasm`, for "expected a runtime such as ..."."""
    return f"{DEFAULT_RUNTIME} or {' or '.join(r.listed_as for r in RUNTIMES[1:])}"
