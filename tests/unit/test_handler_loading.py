"""Unit tests of faasbox.execution.process.python.handler_loading: `module.function` ->
callable, Lambda's faults."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faasbox.execution.process.python.handler_loading import (
    Fault,
    error_object,
    format_error_log,
    load_handler,
    stack_trace,
)

Write = Callable[[str, str], Path]


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Write]:
    """A function's code folder on sys.path; the modules imported from it are forgotten after."""
    root = tmp_path / "task"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))  # restores sys.path and invalidates import caches
    modules_before = set(sys.modules)

    def write(rel: str, source: str) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    yield write
    for name in set(sys.modules) - modules_before:
        del sys.modules[name]


def fault_of(spec: str) -> Fault:
    with pytest.raises(Fault) as err:
        load_handler(spec)
    return err.value


# --- handlers that load ---


def test_a_handler_is_loaded_and_callable(code: Write) -> None:
    code("fb_hello.py", "def hello(event, context):\n    return {'echo': event}\n")
    handler = load_handler("fb_hello.hello")
    assert handler({"a": 1}, None) == {"echo": {"a": 1}}


@pytest.mark.parametrize("init", [True, False], ids=["package", "namespace"])
def test_a_handler_in_a_subfolder(code: Write, init: bool) -> None:
    if init:
        code("fb_sub/__init__.py", "")
    code("fb_sub/deeper/mod.py", "def fn(event, context):\n    return 'deep'\n")
    assert load_handler("fb_sub/deeper/mod.fn")({}, None) == "deep"
    assert load_handler("fb_sub.deeper.mod.fn")({}, None) == "deep"


# --- faults ---


def test_a_handler_without_a_dot_is_malformed() -> None:
    fault = fault_of("handler")
    assert fault.error_type == "Runtime.MalformedHandlerName"
    assert fault.message == "Bad handler 'handler': not enough values to unpack (expected 2, got 1)"


def test_a_missing_module_has_lambdas_exact_message(code: Write) -> None:
    fault = fault_of("fb_missing.handler")
    assert fault.error_type == "Runtime.ImportModuleError"
    assert fault.message == "Unable to import module 'fb_missing': No module named 'fb_missing'"
    assert fault.to_error() == {
        "errorMessage": "Unable to import module 'fb_missing': No module named 'fb_missing'",
        "errorType": "Runtime.ImportModuleError",
        "stackTrace": [],
    }


def test_a_missing_dependency_names_the_dependency(code: Write) -> None:
    code("fb_uses_dep.py", "import fb_not_installed\ndef f(e, c):\n    return 1\n")
    fault = fault_of("fb_uses_dep.f")
    assert fault.error_type == "Runtime.ImportModuleError"
    assert fault.message == (
        "Unable to import module 'fb_uses_dep': No module named 'fb_not_installed'"
    )


def test_a_missing_module_in_a_subfolder_is_named_as_written(code: Write) -> None:
    fault = fault_of("fb_nosuch/mod.fn")
    assert fault.error_type == "Runtime.ImportModuleError"
    assert fault.message == "Unable to import module 'fb_nosuch/mod': No module named 'fb_nosuch'"


def test_a_syntax_error_is_a_user_code_syntax_error(code: Write) -> None:
    path = code("fb_broken.py", "def f(event, context)\n    return 1\n")
    fault = fault_of("fb_broken.f")
    assert fault.error_type == "Runtime.UserCodeSyntaxError"
    assert fault.message.startswith("Syntax error in module 'fb_broken': ")
    assert "line 1" in fault.message
    assert len(fault.trace) == 1
    assert fault.trace[0].startswith(f'  File "{path}" Line 1\n    def f(event, context)')


def test_a_missing_function_is_handler_not_found(code: Write) -> None:
    code("fb_mod.py", "def other(event, context):\n    return 1\n")
    fault = fault_of("fb_mod.f")
    assert fault.error_type == "Runtime.HandlerNotFound"
    assert fault.message == "Handler 'f' missing on module 'fb_mod'"


def test_a_handler_that_is_not_callable_is_refused(code: Write) -> None:
    code("fb_value.py", "handler = 42\n")
    fault = fault_of("fb_value.handler")
    assert fault.error_type == "Runtime.HandlerNotFound"
    assert fault.message == "Handler 'handler' on module 'fb_value' is not callable"


@pytest.mark.parametrize("spec", ["sys.f", "builtins.print", "sys.path.join"])
def test_a_built_in_module_cannot_be_the_handler_module(spec: str) -> None:
    module = spec.rsplit(".", 1)[0]
    fault = fault_of(spec)
    assert fault.error_type == "Runtime.BuiltInModuleConflict"
    assert fault.message == f"Cannot use built-in module {module} as a handler module"


def test_an_error_raised_at_import_keeps_its_type_and_user_frames(code: Write) -> None:
    path = code(
        "fb_raises.py",
        """
        def load():
            raise KeyError("DB_URL")

        load()

        def f(event, context):
            return 1
        """,
    )
    fault = fault_of("fb_raises.f")
    assert fault.error_type == "KeyError"
    assert fault.message == "'DB_URL'"
    text = "".join(fault.trace)
    assert f'File "{path}", line 5, in <module>' in text
    assert f'File "{path}", line 3, in load' in text
    assert 'raise KeyError("DB_URL")' in text
    assert "handler_loading.py" not in text


# --- error objects and the error log ---


def raise_in_user_code() -> None:
    raise ValueError("bad input")


def test_error_object_shape() -> None:
    try:
        raise_in_user_code()
    except ValueError as e:
        error = error_object(e, "req-1")
        without_id = error_object(e)

    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "bad input"
    assert error["requestId"] == "req-1"
    assert "requestId" not in without_id
    assert any(
        'in raise_in_user_code\n    raise ValueError("bad input")' in f for f in error["stackTrace"]
    )


def test_format_error_log_with_a_trace() -> None:
    error = {
        "errorType": "ValueError",
        "errorMessage": "bad input",
        "stackTrace": [
            '  File "/var/task/app.py", line 3, in handler\n    return go()\n',
            '  File "/var/task/app.py", line 7, in go\n    raise ValueError("bad input")\n',
        ],
    }
    assert format_error_log(error) == (
        "[ERROR] ValueError: bad input\n"
        "Traceback (most recent call last):\n"
        '  File "/var/task/app.py", line 3, in handler\n'
        "    return go()\n"
        '  File "/var/task/app.py", line 7, in go\n'
        '    raise ValueError("bad input")\n'
    )


def test_format_error_log_of_a_real_exception() -> None:
    try:
        raise_in_user_code()
    except ValueError as e:
        text = format_error_log(error_object(e))
    lines = text.splitlines()
    assert lines[0] == "[ERROR] ValueError: bad input"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].startswith(f'  File "{__file__}", line ')
    assert lines[2].endswith("in test_format_error_log_of_a_real_exception")
    assert lines[-2].endswith("in raise_in_user_code")
    assert text.endswith('raise ValueError("bad input")\n')


def test_format_error_log_without_a_trace_is_one_line() -> None:
    fault = Fault("Runtime.HandlerNotFound", "Handler 'f' missing on module 'm'")
    assert format_error_log(fault.to_error()) == (
        "[ERROR] Runtime.HandlerNotFound: Handler 'f' missing on module 'm'\n"
    )


def test_stack_trace_drops_faasbox_runtime_frames() -> None:
    try:
        load_handler("sys.f")
    except Fault as e:
        trace = stack_trace(e)
    assert all("/faasbox/execution/" not in frame for frame in trace)
