"""The invoker over its executors, in a fresh interpreter: each executor is made at its
kind's first use, so a server of Python functions never loads wasmtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import wasmtime

from tests.functional.test_wasm import ECHO_WAT
from tests.support import ROOT, clean_env

SCRIPT = """
import json, sys
from pathlib import Path
from faasbox.execution.local import invoke_local
from faasbox.registry.models import FunctionConfig

code = Path(sys.argv[1])
python = invoke_local(FunctionConfig(name="py", handler="py.hello"), code, b'{"name": "x"}')
loaded_after_python = "wasmtime" in sys.modules
wasm = invoke_local(
    FunctionConfig(name="w", handler="echo.wasm", runtime="wasm"), code, b'"hi"'
)
print(json.dumps([
    python.payload.decode(), loaded_after_python, wasm.payload.decode(), "wasmtime" in sys.modules
]))
"""


def test_wasmtime_loads_only_when_a_wasm_function_runs(tmp_path: Path) -> None:
    (tmp_path / "py.py").write_text("def hello(event, context):\n    return event['name']\n")
    (tmp_path / "echo.wasm").write_bytes(wasmtime.wat2wasm(ECHO_WAT))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    python, loaded_after_python, wasm, loaded_after_wasm = json.loads(done.stdout)
    assert (python, wasm) == ('"x"', '"hi"')
    assert not loaded_after_python
    assert loaded_after_wasm
