"""wasi-nn (`wasi_ephemeral_nn`) through the Invoker: a WAT program calls each import with
good and bad arguments and writes every errno it gets back as one byte, then the output
tensor; the host must answer each with the witx errno and never trap or fail itself.

The model is a one-node ONNX graph (y = x + x over a 1x4 float32 tensor) encoded by
tests/onnx_models.py, named in `wasm.models` and also sent on stdin for `load`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from faasbox.config import load_service
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.execution.wasm.nn import Errno
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service
from tests.functional.test_wasm import IMPORTS, WRITE_ALL, write_service
from tests.onnx_models import FLOAT, one_node_model
from tests.support import run_with_invoker

NN = '"wasi_ephemeral_nn"'
NN_IMPORTS = f"""
  (import {NN} "load" (func $load (param i32 i32 i32 i32 i32) (result i32)))
  (import {NN} "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import {NN} "init_execution_context" (func $init (param i32 i32) (result i32)))
  (import {NN} "set_input" (func $set_input (param i32 i32 i32) (result i32)))
  (import {NN} "compute" (func $compute (param i32) (result i32)))
  (import {NN} "get_output" (func $get_output (param i32 i32 i32 i32 i32) (result i32)))
"""


# Memory: 0 graph id, 4 context id, 8 bytes written, 12 second context, 16 second graph;
# 32 a graph builder {2048, stdin's length}; 40 a builder of 6 bytes (not a model);
# tensors at 64 (good: dims at 96 [1, 4], f32, 16 bytes at 128), 160 (12 bytes), 192 (dims
# 1x5, 20 bytes), 224 (type u8); 256 "double", 264 "nope"; 512 the output; 1024 the errnos;
# 2048 the model from stdin.
def _wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def _tensor(dims_ptr: int, rank: int, kind: int, data_ptr: int, size: int) -> bytes:
    return struct.pack("<IIB3xII", dims_ptr, rank, kind, data_ptr, size)


F32, U8 = 1, 2
SEGMENTS = {
    40: struct.pack("<II", 256, 6),  # a builder of 6 bytes: not a model
    64: _tensor(96, 2, F32, 128, 16),  # good: 1x4 f32
    96: struct.pack("<4I", 1, 4, 1, 5),  # dims [1, 4], and [1, 5] at 104
    128: struct.pack("<4f", 1.0, 2.0, 3.0, 4.0),
    160: _tensor(96, 2, F32, 128, 12),  # 12 bytes for 16
    192: _tensor(104, 2, F32, 128, 20),  # 1x5
    224: _tensor(96, 2, U8, 128, 4),  # u8 for a float input
    256: b"double",
    264: b"nope",
}


def _data(segments: dict[int, bytes]) -> str:
    return "".join(f'\n  (data (i32.const {at}) "{_wat_bytes(b)}")' for at, b in segments.items())


DATA = _data(SEGMENTS)
# Arguments: numbers are i32 constants; G is the graph id (stored at 0), C the context id
# (at 4), C2 the second context (at 12).
LOADED = {"G": 0, "C": 4, "C2": 12}
OK, INVAL, NOT_FOUND, TOO_LARGE = (
    Errno.SUCCESS,
    Errno.INVALID_ARGUMENT,
    Errno.NOT_FOUND,
    Errno.TOO_LARGE,
)
# Each call, in order, and the errno the witx ABI says it must get.
CALLS: list[tuple[str, str, Errno]] = [
    ("load_by_name", "load_by_name 256 6 0", OK),
    ("init", "init G 4", OK),
    ("set_input", "set_input C 0 64", OK),
    ("compute", "compute C", OK),
    ("get_output", "get_output C 0 512 16 8", OK),
    ("load bytes", "load 32 1 1 0 16", OK),
    ("autodetect", "load 32 1 6 0 16", OK),
    ("unknown name", "load_by_name 264 4 0", NOT_FOUND),
    ("name out of bounds", "load_by_name 0x7ffffff0 64 0", INVAL),
    ("graph id out of bounds", "load_by_name 256 6 -2", INVAL),
    ("openvino", "load 32 1 0 0 16", Errno.INVALID_ENCODING),
    ("not a model", "load 40 1 1 0 16", INVAL),
    ("builders out of bounds", "load -8 1 1 0 16", INVAL),
    ("gpu", "load 32 1 1 1 16", Errno.UNSUPPORTED_OPERATION),
    ("bad graph id", "init 99 12", INVAL),
    ("context id out of bounds", "init G -1", INVAL),
    ("bad context", "set_input 99 0 64", INVAL),
    ("tensor out of bounds", "set_input C 0 -16", INVAL),
    ("wrong size", "set_input C 0 160", INVAL),
    ("wrong shape", "set_input C 0 192", INVAL),
    ("wrong type", "set_input C 0 224", INVAL),
    ("no input 3", "set_input C 3 64", INVAL),
    ("compute bad context", "compute 7", INVAL),
    ("second context", "init G 12", OK),
    ("input unset", "compute C2", INVAL),
    ("not computed", "get_output C2 0 512 16 8", INVAL),
    ("buffer too small", "get_output C 0 512 8 8", TOO_LARGE),
    ("buffer out of bounds", "get_output C 0 0xfff8 16 8", INVAL),
    ("written out of bounds", "get_output C 0 512 16 0x10000", INVAL),
    ("no output 1", "get_output C 1 512 16 8", INVAL),
]


def _call(text: str) -> str:
    name, *args = text.split()
    wat = [
        f"(i32.load (i32.const {LOADED[a]}))" if a in LOADED else f"(i32.const {a})" for a in args
    ]
    return f"(call ${name} {' '.join(wat)})"


def _program(
    calls: list[tuple[str, str, Errno]] = CALLS, data: str = DATA, output: int = 16
) -> str:
    steps = "\n".join(
        f"    (i32.store8 (i32.const {1024 + i}) {_call(call)})  ;; {name}"
        for i, (name, call, _) in enumerate(calls)
    )
    # Reads stdin (the model's bytes) to 2048, sets builder 32's length, makes the calls,
    # writes the errnos then the output's bytes.
    return f"""(module {IMPORTS} {NN_IMPORTS}
  (memory (export "memory") 1) {data} {WRITE_ALL}
  (func (export "_start")
    (i32.store (i32.const 0x800) (i32.const 0))
    (i32.store (i32.const 24) (i32.const 2048))
    (i32.store (i32.const 28) (i32.const 4096))
    (drop (call $fd_read (i32.const 0) (i32.const 24) (i32.const 1) (i32.const 36)))
    (i32.store (i32.const 32) (i32.const 2048))
    (i32.store (i32.const 36) (i32.load (i32.const 36)))
{steps}
    (call $write_all (i32.const 1) (i32.const 1024) (i32.const {len(calls)}))
    (call $write_all (i32.const 1) (i32.const 512) (i32.const {output}))))"""


# TFLite (LiteRT): sine_float.tflite, y = sin(x) over a 1x1 float32 tensor.
TFLITE_SEGMENTS = {
    64: _tensor(96, 2, F32, 128, 4),
    96: struct.pack("<4I", 1, 1, 1, 2),  # dims [1, 1], and [1, 2] at 104
    128: struct.pack("<2f", 1.5, 0.0),
    160: _tensor(104, 2, F32, 128, 8),  # 1x2
    256: b"sine",
}
TFLITE_CALLS: list[tuple[str, str, Errno]] = [
    ("load tensorflowlite", "load 32 1 4 0 16", OK),
    ("autodetect", "load 32 1 6 0 16", OK),
    ("load_by_name", "load_by_name 256 4 0", OK),
    ("init", "init G 4", OK),
    ("wrong shape", "set_input C 0 160", INVAL),
    ("set_input", "set_input C 0 64", OK),
    ("compute", "compute C", OK),
    ("get_output", "get_output C 0 512 4 8", OK),
]


def tflite_model() -> Path:
    """sine_float.tflite (3 KB), shipped in the tflite-micro wheel (the `examples` extra)."""
    spec = importlib.util.find_spec("tflite_micro")
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[examples]'"
    return (
        Path(next(iter(spec.submodule_search_locations))) / "python/tflite_micro/sine_float.tflite"
    )


# Calls compute on a context forever: the timeout must stop it.
COMPUTE_LOOP = f"""(module {NN_IMPORTS}
  (memory (export "memory") 1) {DATA}
  (func (export "_start")
    (drop (call $load_by_name (i32.const 256) (i32.const 6) (i32.const 0)))
    (drop (call $init (i32.load (i32.const 0)) (i32.const 4)))
    (drop (call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 64)))
    (loop $forever (drop (call $compute (i32.load (i32.const 4)))) (br $forever))))"""

MODEL = one_node_model("Add", FLOAT, [1, 4])
FUNCTIONS: dict[str, dict[str, Any]] = {
    "nn": {"handler": "nn.wasm", "wasm": {"models": {"double": "model/double.onnx"}}},
    "nnloop": {
        "handler": "loop.wasm",
        "timeout": 1,
        "wasm": {"models": {"double": "model/double.onnx"}},
    },
    "outside": {"handler": "nn.wasm", "wasm": {"models": {"double": "../double.onnx"}}},
    "notmodel": {"handler": "nn.wasm", "wasm": {"models": {"double": "model/README.txt"}}},
    "tflite": {"handler": "tflite.wasm", "wasm": {"models": {"sine": "model/sine.tflite"}}},
}


class Service:
    def __init__(self, data_dir: Path) -> None:
        tflite = _program(TFLITE_CALLS, _data(TFLITE_SEGMENTS), 4)
        folder = write_service(
            data_dir / "nn-tests",
            FUNCTIONS,
            {"nn.wasm": _program(), "loop.wasm": COMPUTE_LOOP, "tflite.wasm": tflite},
        )
        (folder / "model").mkdir()
        (folder / "model" / "double.onnx").write_bytes(MODEL)
        (folder / "model" / "README.txt").write_text("a file of the code, but no model\n")
        shutil.copy(tflite_model(), folder / "model" / "sine.tflite")
        self.registry = Registry(data_dir)
        deploy_service(self.registry, load_service(folder))
        self.settings = RuntimeSettings(data_dir=data_dir)

    async def call(self, invoker: Invoker, key: str, payload: bytes = MODEL) -> InvocationResult:
        return await invoker.invoke(self.registry.get(f"nn-tests-dev-{key}"), payload)


@pytest.fixture
def service(data_dir: Path) -> Service:
    return Service(data_dir)


def test_each_call_gets_its_errno_and_the_host_carries_on(service: Service) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await service.call(invoker, "nn") for _ in range(2)]

    first, second = run_with_invoker(service.settings, scenario)
    for result in (first, second):  # the second run (models already loaded) is the same
        assert result.status == "success", result.payload
        got = list(result.payload[: len(CALLS)])
        want = [int(errno) for _, _, errno in CALLS]
        assert dict(zip([n for n, _, _ in CALLS], got, strict=True)) == dict(
            zip([n for n, _, _ in CALLS], want, strict=True)
        )
        assert struct.unpack("<4f", result.payload[len(CALLS) :]) == (2.0, 4.0, 6.0, 8.0)
    # Each refusal says why, in the function's log.
    assert "load_by_name: no model 'nope' (known: double)" in first.log
    assert "set_input: a 1x4 float32 tensor is 16 bytes, got 12" in first.log
    assert "set_input: input 0 is 1x4, got 1x5" in first.log
    assert "get_output: output 0 is 16 bytes, buffer 8" in first.log


def test_compute_time_counts_against_the_timeout(service: Service) -> None:
    async def scenario(invoker: Invoker) -> tuple[InvocationResult, float, InvocationResult]:
        started = time.monotonic()
        looping = asyncio.ensure_future(service.call(invoker, "nnloop"))
        # Meanwhile another function answers.
        other = await service.call(invoker, "nn")
        result = await looping
        return result, time.monotonic() - started, other

    result, elapsed, other = run_with_invoker(service.settings, scenario)
    assert other.status == "success"
    assert result.status == "timeout", result.payload
    assert json.loads(result.payload)["errorType"] == "Sandbox.Timedout"
    assert elapsed < 1.0 + 2.0  # a bound for a loaded machine (the first call loads the model)


def test_bad_models_are_configuration_errors(service: Service) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await service.call(invoker, key) for key in ("outside", "notmodel")]

    outside, notmodel = run_with_invoker(service.settings, scenario)
    for result in (outside, notmodel):
        assert result.function_error == "Unhandled"
        assert json.loads(result.payload)["errorType"] == "Runtime.WasmConfigError"
    assert (
        "'../double.onnx' must be a file inside the function's code"
        in json.loads(outside.payload)["errorMessage"]
    )
    assert (
        "wasm.models: double: README.txt: load: not a usable model"
        in json.loads(notmodel.payload)["errorMessage"]
    )


def test_a_tflite_model_through_litert(service: Service) -> None:
    model = tflite_model().read_bytes()

    async def scenario(invoker: Invoker) -> InvocationResult:
        return await service.call(invoker, "tflite", model)

    result = run_with_invoker(service.settings, scenario)
    assert result.status == "success", result.payload
    names = [n for n, _, _ in TFLITE_CALLS]
    got = dict(zip(names, result.payload[: len(TFLITE_CALLS)], strict=True))
    assert got == dict(zip(names, [int(e) for _, _, e in TFLITE_CALLS], strict=True))
    (y,) = struct.unpack("<f", result.payload[len(TFLITE_CALLS) :])
    assert math.isclose(y, math.sin(1.5), abs_tol=0.05)  # a small model's sine
