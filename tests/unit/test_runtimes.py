"""The runtime registry: which names faasbox runs, on which executor, with which handlers."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from faasbox.errors import InvalidRuntime
from faasbox.execution import runtimes
from faasbox.execution.api import Executor
from faasbox.execution.process import node as node_worker
from faasbox.execution.runtimes import PROCESS, WASM, WorkerStart
from faasbox.registry.models import FunctionConfig

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
FAASBOX = Path(runtimes.__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("python3.11", PROCESS),
        ("python3.6", PROCESS),
        ("python3.13", PROCESS),
        ("nodejs18.x", PROCESS),
        ("nodejs20.x", PROCESS),
        ("nodejs22.x", PROCESS),
        ("provided.al2023", PROCESS),
        ("provided.al2", PROCESS),
        ("wasm", WASM),
        ("quickjs", WASM),
    ],
)
def test_known_runtimes_map_to_their_executor(name: str, kind: str) -> None:
    runtime = runtimes.lookup(name)
    assert runtime is not None
    assert runtime.executor == kind == runtimes.executor_kind(name)


@pytest.mark.parametrize(
    "name",
    [
        "nodejs20",
        "nodejs",
        "nodejs0.x",
        "provided",
        "java21",
        "python2.7",
        "python3",
        "Python3.11",
        "wasm32",
        "",
    ],
)
def test_unknown_runtimes_are_none_and_of_says_what_is_supported(name: str) -> None:
    assert runtimes.lookup(name) is None
    with pytest.raises(InvalidRuntime, match=r"supported: python3\.x .* and wasm"):
        runtimes.of(name)


def test_handler_checks_per_runtime() -> None:
    python, wasm = runtimes.of("python3.11"), runtimes.of("wasm")
    assert python.handler_problem("handler.hello") is None
    assert python.handler_problem("src/handler.hello") is None
    problem = python.handler_problem("hello")
    assert problem is not None and problem.startswith("expected 'module.function'")
    assert problem.endswith("got 'hello'")
    assert python.handler_problem("handler.") is not None
    assert wasm.handler_problem("bin/grayscale.wasm") is None
    assert wasm.handler_problem(".wasm") is not None
    assert wasm.handler_problem("grey.py") == (
        "expected the path of a .wasm file for runtime wasm, got 'grey.py'"
    )
    provided = runtimes.of("provided.al2023")
    assert provided.handler_problem("function.handler") is None
    assert provided.handler_problem("anything") is None
    assert provided.handler_problem("two words") is not None


def test_node_handlers_are_file_dot_export() -> None:
    nodejs = runtimes.of("nodejs20.x")
    for good in ("index.handler", "src/app.main", "index.nested.fn", "lib/v1.2/app.handler"):
        assert nodejs.handler_problem(good) is None, good
    for bad in ("index", "index.", ".handler", "src/", "a b.c"):
        problem = nodejs.handler_problem(bad)
        assert problem is not None and problem.startswith("expected 'file.export'"), bad


@pytest.mark.skipif(not node_worker.installed_major(), reason="node is not installed")
def test_other_node_versions_warn_that_the_installed_node_runs_them() -> None:
    nodejs = runtimes.of("nodejs18.x")
    installed = node_worker.installed_major()
    other = "18" if installed != "18" else "22"
    assert nodejs.version_warning(f"nodejs{other}.x", "provider.runtime") == (
        f"provider.runtime: nodejs{other}.x is not installed; "
        f"running on Node.js {installed} instead"
    )
    assert nodejs.version_warning(f"nodejs{installed}.x", "provider.runtime") is None


def test_node_workers_start_with_v8_sized_for_their_memory() -> None:
    start = runtimes.of("nodejs20.x").worker
    assert start is not None and not start.forkable
    assert not start.init_error_names_request  # Lambda's Node runtime: the error as it is
    assert node_worker.v8_flags(1024) == [
        "--expose-gc",
        "--max-semi-space-size=51",
        "--max-old-space-size=921",
    ]
    if node_worker.node_binary() is not None:
        argv = start.argv(9, FunctionConfig(name="f", handler="i.h", memory_size=256))
        assert argv[-2:] == [str(node_worker.BOOTSTRAP), "9"]
        assert "--max-old-space-size=230" in argv


def test_node_options_become_node_arguments() -> None:
    assert node_worker.options_flags("") == []
    assert node_worker.options_flags("--enable-source-maps  --stack-trace-limit=50") == [
        "--enable-source-maps",
        "--stack-trace-limit=50",
    ]
    assert node_worker.options_flags("--title 'my fn'") == ["--title", "my fn"]
    assert node_worker.options_flags("--title 'unbalanced") == ["--title", "'unbalanced"]


def test_other_python_versions_warn_that_this_python_runs_them() -> None:
    python = runtimes.of("python3.6")
    assert python.version_warning("python3.6", "functions.x.runtime") == (
        f"functions.x.runtime: python3.6 is not installed; running on Python {RUNNING} instead"
    )
    assert python.version_warning(f"python{RUNNING}", "functions.x.runtime") is None
    assert runtimes.of("wasm").version_warning("wasm", "functions.x.runtime") is None


def test_messages_list_every_runtime() -> None:
    assert runtimes.enum_names() == (
        "python3.x, nodejs2x.x, provided.al2023, provided.al2, quickjs, wasm"
    )
    assert runtimes.supported_runtimes() == (
        f"python3.x (run on this server's Python {RUNNING}), "
        "nodejs2x.x (run on this server's Node.js), "
        "provided.al2023/provided.al2 (a `bootstrap` speaking Lambda's Runtime API), "
        "quickjs (JavaScript on QuickJS-NG, in WebAssembly) and wasm"
    )
    assert "WebAssembly (wasm)" in runtimes.described()
    assert "JavaScript on QuickJS (quickjs)" in runtimes.described()
    assert runtimes.lookup(runtimes.DEFAULT_RUNTIME) is not None


def test_process_runtimes_say_how_their_worker_starts() -> None:
    for runtime in runtimes.RUNTIMES:
        assert runtime.executor in runtimes.EXECUTORS
        assert (runtime.worker is not None) == (runtime.executor == PROCESS)
    python = runtimes.of("python3.11").worker
    assert python is not None and python.forkable
    assert python.argv(7) == [
        sys.executable,
        "-m",
        "faasbox.execution.process.python.worker",
        "7",
    ]
    spawned = WorkerStart(command=("/usr/bin/node", "/opt/bootstrap.js"))
    assert not spawned.forkable
    assert spawned.argv(5) == ["/usr/bin/node", "/opt/bootstrap.js", "5"]


def test_every_executor_kind_names_a_class_with_the_executor_methods() -> None:
    import importlib

    for kind, where in runtimes.EXECUTORS.items():
        module, _, name = where.rpartition(":")
        cls = getattr(importlib.import_module(module), name)
        assert cls.kind == kind
        for method in [m for m in dir(Executor) if not m.startswith("_")]:
            assert callable(getattr(cls, method, None)) or method == "kind", (kind, method)
    assert set(runtimes.EAGER_EXECUTORS) <= set(runtimes.EXECUTORS)


def test_no_module_but_the_registry_compares_runtime_names() -> None:
    """The registry is the only place that knows runtime names (issue 10's check)."""
    pattern = re.compile(r'WASM_RUNTIME|startswith\("python|startswith\("node|runtime == "')
    offenders = [
        f"{path.relative_to(FAASBOX)}:{number}"
        for path in FAASBOX.rglob("*.py")
        if path.name != "runtimes.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_the_gateway_and_the_cli_import_no_executor() -> None:
    """They talk to the Invoker only (issue 10): no import of execution/process or wasm."""
    import ast

    offenders = []
    for package in ("gateway", "cli"):
        for path in (FAASBOX / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                offenders += [
                    f"{package}/{path.name}: {name}"
                    for name in names
                    if name.startswith(("faasbox.execution.process", "faasbox.execution.wasm"))
                ]
    assert offenders == []


def test_wasm_runtimes_name_the_guest_that_runs_them() -> None:
    import importlib

    for runtime in runtimes.RUNTIMES:
        if runtime.executor != WASM:
            continue
        module, _, name = runtime.wasm_guest.partition(":")
        guest = getattr(importlib.import_module(module), name)()
        assert guest.entry in ("_start", "_initialize")
    assert runtimes.of("quickjs").wasm_guest.endswith("quickjs:QuickJs")
    assert runtimes.of("quickjs").handler_problem("index.handler") is None
    assert runtimes.of("quickjs").handler_problem("index") is not None
