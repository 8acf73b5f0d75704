"""wasi-nn (`wasi_ephemeral_nn`) through the Invoker: a WAT program calls each import with
good and bad arguments and writes every errno it gets back as one byte, then the output
tensor; the host must answer each with the witx errno and never trap or fail itself.

The model is a one-node ONNX graph (y = x + x over a 1x4 float32 tensor) encoded by
tests/onnx_models.py, named in `wasm.models` and also sent on stdin for `load`.
"""

from __future__ import annotations

import asyncio
import json
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
DATA = """
  (data (i32.const 40) "\\00\\01\\00\\00\\06\\00\\00\\00")
  (data (i32.const 64) "\\60\\00\\00\\00\\02\\00\\00\\00\\01\\00\\00\\00\\80\\00\\00\\00\\10\\00\\00\\00")
  (data (i32.const 96) "\\01\\00\\00\\00\\04\\00\\00\\00\\01\\00\\00\\00\\05\\00\\00\\00")
  (data (i32.const 128) "\\00\\00\\80\\3f\\00\\00\\00\\40\\00\\00\\40\\40\\00\\00\\80\\40")
  (data (i32.const 160) "\\60\\00\\00\\00\\02\\00\\00\\00\\01\\00\\00\\00\\80\\00\\00\\00\\0c\\00\\00\\00")
  (data (i32.const 192) "\\68\\00\\00\\00\\02\\00\\00\\00\\01\\00\\00\\00\\80\\00\\00\\00\\14\\00\\00\\00")
  (data (i32.const 224) "\\60\\00\\00\\00\\02\\00\\00\\00\\02\\00\\00\\00\\80\\00\\00\\00\\04\\00\\00\\00")
  (data (i32.const 256) "double")
  (data (i32.const 264) "nope")
"""
# Each call's errno, in order, and what the witx ABI says it must be.
CALLS: list[tuple[str, str, Errno]] = [
    ("load_by_name", "(call $load_by_name (i32.const 256) (i32.const 6) (i32.const 0))", Errno.SUCCESS),
    ("init", "(call $init (i32.load (i32.const 0)) (i32.const 4))", Errno.SUCCESS),
    ("set_input", "(call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 64))", Errno.SUCCESS),
    ("compute", "(call $compute (i32.load (i32.const 4)))", Errno.SUCCESS),
    ("get_output", "(call $get_output (i32.load (i32.const 4)) (i32.const 0) (i32.const 512) (i32.const 16) (i32.const 8))", Errno.SUCCESS),
    ("load bytes", "(call $load (i32.const 32) (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 16))", Errno.SUCCESS),
    ("autodetect", "(call $load (i32.const 32) (i32.const 1) (i32.const 6) (i32.const 0) (i32.const 16))", Errno.SUCCESS),
    ("unknown name", "(call $load_by_name (i32.const 264) (i32.const 4) (i32.const 0))", Errno.NOT_FOUND),
    ("name out of bounds", "(call $load_by_name (i32.const 0x7ffffff0) (i32.const 64) (i32.const 0))", Errno.INVALID_ARGUMENT),
    ("graph id out", "(call $load_by_name (i32.const 256) (i32.const 6) (i32.const -2))", Errno.INVALID_ARGUMENT),
    ("openvino", "(call $load (i32.const 32) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 16))", Errno.INVALID_ENCODING),
    ("not a model", "(call $load (i32.const 40) (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 16))", Errno.INVALID_ARGUMENT),
    ("builders out", "(call $load (i32.const -8) (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 16))", Errno.INVALID_ARGUMENT),
    ("gpu", "(call $load (i32.const 32) (i32.const 1) (i32.const 1) (i32.const 1) (i32.const 16))", Errno.UNSUPPORTED_OPERATION),
    ("bad graph id", "(call $init (i32.const 99) (i32.const 12))", Errno.INVALID_ARGUMENT),
    ("context out", "(call $init (i32.load (i32.const 0)) (i32.const -1))", Errno.INVALID_ARGUMENT),
    ("bad context", "(call $set_input (i32.const 99) (i32.const 0) (i32.const 64))", Errno.INVALID_ARGUMENT),
    ("tensor out", "(call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const -16))", Errno.INVALID_ARGUMENT),
    ("wrong size", "(call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 160))", Errno.INVALID_ARGUMENT),
    ("wrong shape", "(call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 192))", Errno.INVALID_ARGUMENT),
    ("wrong type", "(call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 224))", Errno.INVALID_ARGUMENT),
    ("no input 3", "(call $set_input (i32.load (i32.const 4)) (i32.const 3) (i32.const 64))", Errno.INVALID_ARGUMENT),
    ("compute bad", "(call $compute (i32.const 7))", Errno.INVALID_ARGUMENT),
    ("second context", "(call $init (i32.load (i32.const 0)) (i32.const 12))", Errno.SUCCESS),
    ("input unset", "(call $compute (i32.load (i32.const 12)))", Errno.INVALID_ARGUMENT),
    ("not computed", "(call $get_output (i32.load (i32.const 12)) (i32.const 0) (i32.const 512) (i32.const 16) (i32.const 8))", Errno.INVALID_ARGUMENT),
    ("buffer small", "(call $get_output (i32.load (i32.const 4)) (i32.const 0) (i32.const 512) (i32.const 8) (i32.const 8))", Errno.TOO_LARGE),
    ("buffer out", "(call $get_output (i32.load (i32.const 4)) (i32.const 0) (i32.const 0xfff8) (i32.const 16) (i32.const 8))", Errno.INVALID_ARGUMENT),
    ("written out", "(call $get_output (i32.load (i32.const 4)) (i32.const 0) (i32.const 512) (i32.const 16) (i32.const 0x10000))", Errno.INVALID_ARGUMENT),
    ("no output 1", "(call $get_output (i32.load (i32.const 4)) (i32.const 1) (i32.const 512) (i32.const 16) (i32.const 8))", Errno.INVALID_ARGUMENT),
]  # fmt: skip


def _program() -> str:
    steps = "\n".join(
        f"    (i32.store8 (i32.const {1024 + i}) {call})  ;; {name}"
        for i, (name, call, _) in enumerate(CALLS)
    )
    # Reads stdin (the model's bytes) to 2048, sets builder 32's length, makes the calls,
    # writes the errnos then the 16 output bytes.
    return f"""(module {IMPORTS} {NN_IMPORTS}
  (memory (export "memory") 1) {DATA} {WRITE_ALL}
  (func (export "_start")
    (i32.store (i32.const 0x800) (i32.const 0))
    (i32.store (i32.const 24) (i32.const 2048))
    (i32.store (i32.const 28) (i32.const 4096))
    (drop (call $fd_read (i32.const 0) (i32.const 24) (i32.const 1) (i32.const 36)))
    (i32.store (i32.const 32) (i32.const 2048))
    (i32.store (i32.const 36) (i32.load (i32.const 36)))
{steps}
    (call $write_all (i32.const 1) (i32.const 1024) (i32.const {len(CALLS)}))
    (call $write_all (i32.const 1) (i32.const 512) (i32.const 16))))"""


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
    "notmodel": {"handler": "nn.wasm", "wasm": {"models": {"double": "serverless.yml"}}},
}


class Service:
    def __init__(self, data_dir: Path) -> None:
        folder = write_service(
            data_dir / "nn-tests", FUNCTIONS, {"nn.wasm": _program(), "loop.wasm": COMPUTE_LOOP}
        )
        (folder / "model").mkdir()
        (folder / "model" / "double.onnx").write_bytes(MODEL)
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
        "wasm.models: double: serverless.yml: load: not a usable model"
        in json.loads(notmodel.payload)["errorMessage"]
    )
