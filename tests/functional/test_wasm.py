"""`runtime: wasm` functions through the Invoker: small WAT programs, compiled by wasmtime.

The WAT sources here are WASI preview1 commands written by hand, each showing one thing
(echo, loop, trap, memory.grow, proc_exit, files, environment, sleep). The integration tests
import them too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import wasmtime

from faasbox.config import load_service
from faasbox.errors import TooManyRequests
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service
from tests.support import run_with_invoker

T = TypeVar("T")

WASI = '"wasi_snapshot_preview1"'
IMPORTS = f"""
  (import {WASI} "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import {WASI} "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import {WASI} "proc_exit" (func $proc_exit (param i32)))
"""
# write_all(fd, ptr, len): fd_write until done; traps if a write fails. Scratch: 8..24.
WRITE_ALL = """
  (func $write_all (param $fd i32) (param $ptr i32) (param $len i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 8) (local.get $ptr))
        (i32.store (i32.const 12) (local.get $len))
        (if (call $fd_write (local.get $fd) (i32.const 8) (i32.const 1) (i32.const 20))
          (then (unreachable)))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 20))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 20))))
        (br $more))))
"""
# echo(): copy stdin to stdout in 1 MB pieces through the buffer at 65536.
ECHO_FUNC = """
  (func $echo (local $n i32)
    (loop $more
      (i32.store (i32.const 0) (i32.const 65536))
      (i32.store (i32.const 4) (i32.const 1048576))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 24))
        (then (unreachable)))
      (local.set $n (i32.load (i32.const 24)))
      (if (local.get $n)
        (then (call $write_all (i32.const 1) (i32.const 65536) (local.get $n)) (br $more)))))
"""

ECHO_WAT = f"""(module {IMPORTS}
  (memory (export "memory") 18) {WRITE_ALL} {ECHO_FUNC}
  (func (export "_start") (call $echo)))"""

LOOP_WAT = """(module (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))"""

TRAP_WAT = """(module (memory (export "memory") 1)
  (func $inner unreachable)
  (func (export "_start") (call $inner)))"""

RECURSE_WAT = """(module (memory (export "memory") 1)
  (func $down (call $down))
  (func (export "_start") (call $down)))"""

# Asks for 3000 pages (187 MB, over a 128 MB memorySize), then for 16 (1 MB).
GROW_WAT = f"""(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 100) "refused\\n")
  (data (i32.const 108) "granted\\n") {WRITE_ALL}
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 3000)) (i32.const -1))
      (then (call $write_all (i32.const 1) (i32.const 100) (i32.const 8))))
    (if (i32.ne (memory.grow (i32.const 16)) (i32.const -1))
      (then (call $write_all (i32.const 1) (i32.const 108) (i32.const 8))))))"""

# Writes what it finds at a data segment (100), a zero-initialised word (200) and in a page
# it grows (65544), then leaves marks at all three for a next instance to find.
REMEMBER_WAT = f"""(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 100) "data") {WRITE_ALL}
  (func (export "_start")
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 300) (i32.load (i32.const 100)))
    (i32.store (i32.const 304) (i32.load (i32.const 200)))
    (i32.store (i32.const 308) (i32.load (i32.const 65544)))
    (call $write_all (i32.const 1) (i32.const 300) (i32.const 12))
    (i32.store (i32.const 100) (i32.const 0x4b52414d))
    (i32.store (i32.const 200) (i32.const 0x4b52414d))
    (i32.store (i32.const 65544) (i32.const 0x4b52414d))))"""

BIG_MEMORY_WAT = """(module (memory (export "memory") 4096)
  (func (export "_start")))"""

EXIT_WAT = f"""(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 100) "grayscale: not an image\\n") {WRITE_ALL}
  (func (export "_start")
    (call $write_all (i32.const 2) (i32.const 100) (i32.const 24))
    (call $proc_exit (i32.const 7))))"""

# Writes 64 KB 112 times (7 MB, over the 6 MB response limit), ignoring failed writes.
SPEW_WAT = f"""(module {IMPORTS}
  (memory (export "memory") 2)
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $more
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 112))))))"""

# argv, 0x01, the environment ("K=V\\0" each), 0x01, stdin.
ENV_WAT = f"""(module {IMPORTS}
  (import {WASI} "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import {WASI} "args_get" (func $args_get (param i32 i32) (result i32)))
  (import {WASI} "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import {WASI} "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (memory (export "memory") 40) {WRITE_ALL} {ECHO_FUNC}
  (func $separator
    (i32.store8 (i32.const 32) (i32.const 1))
    (call $write_all (i32.const 1) (i32.const 32) (i32.const 1)))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 40) (i32.const 44)))
    (drop (call $args_get (i32.const 1048576) (i32.const 1179648)))
    (call $write_all (i32.const 1) (i32.const 1179648) (i32.load (i32.const 44)))
    (call $separator)
    (drop (call $environ_sizes_get (i32.const 40) (i32.const 44)))
    (drop (call $environ_get (i32.const 1310720) (i32.const 1441792)))
    (call $write_all (i32.const 1) (i32.const 1441792) (i32.load (i32.const 44)))
    (call $separator)
    (call $echo)))"""

# Opens files through preopened folders (fd 3: data, read-only; fd 4: scratch, rw) and
# writes each errno as one byte: data/inside.txt, data/../secret.txt, /etc/passwd through
# fd 3, a new file in fd 3, a new file in fd 4, anything through fd 30 (none).
FILES_WAT = f"""(module {IMPORTS}
  (import {WASI} "path_open" (func $path_open
    (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "inside.txt")
  (data (i32.const 220) "../secret.txt")
  (data (i32.const 240) "/etc/passwd")
  (data (i32.const 260) "new.txt") {WRITE_ALL}
  (func $open (param $fd i32) (param $path i32) (param $len i32) (param $oflags i32)
    (param $slot i32)
    (i32.store8 (local.get $slot)
      (call $path_open (local.get $fd) (i32.const 0) (local.get $path) (local.get $len)
        (local.get $oflags)
        (select (i64.const 66) (i64.const 2) (local.get $oflags))  ;; +fd_write to create
        (i64.const 0) (i32.const 0)
        (i32.const 300))))
  (func (export "_start")
    (call $open (i32.const 3) (i32.const 200) (i32.const 10) (i32.const 0) (i32.const 400))
    (call $open (i32.const 3) (i32.const 220) (i32.const 13) (i32.const 0) (i32.const 401))
    (call $open (i32.const 3) (i32.const 240) (i32.const 11) (i32.const 0) (i32.const 402))
    (call $open (i32.const 3) (i32.const 260) (i32.const 7) (i32.const 1) (i32.const 403))
    (call $open (i32.const 4) (i32.const 260) (i32.const 7) (i32.const 1) (i32.const 404))
    (call $open (i32.const 30) (i32.const 200) (i32.const 10) (i32.const 0) (i32.const 405))
    (call $write_all (i32.const 1) (i32.const 400) (i32.const 6))))"""


def sleep_wat(seconds: float) -> str:
    """Sleeps (poll_oneoff on the monotonic clock), then writes "woke"."""
    return f"""(module {IMPORTS}
  (import {WASI} "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 500) "woke") {WRITE_ALL}
  (func (export "_start")
    (i32.store (i32.const 112) (i32.const 1))
    (i64.store (i32.const 120) (i64.const {int(seconds * 1e9)}))
    (drop (call $poll (i32.const 96) (i32.const 160) (i32.const 1) (i32.const 200)))
    (call $write_all (i32.const 1) (i32.const 500) (i32.const 4))))"""


def write_service(folder: Path, functions: dict[str, dict[str, Any]], wat: dict[str, str]) -> Path:
    """A serverless.yml of wasm functions and their compiled .wasm files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in wat.items():
        (folder / name).write_bytes(wasmtime.wat2wasm(source))
    doc = {
        "service": folder.name,
        "provider": {"name": "aws", "runtime": "wasm", "timeout": 5},
        "functions": functions,
    }
    (folder / "serverless.yml").write_text(json.dumps(doc))
    return folder


FUNCTIONS: dict[str, dict[str, Any]] = {
    "echo": {"handler": "echo.wasm"},
    "loop": {"handler": "loop.wasm", "timeout": 1},
    "trap": {"handler": "trap.wasm"},
    "recurse": {"handler": "recurse.wasm"},
    "grow": {"handler": "grow.wasm", "memorySize": 128},
    "bigmem": {"handler": "bigmem.wasm", "memorySize": 128},
    "remember": {"handler": "remember.wasm"},
    "exit": {"handler": "exit.wasm"},
    "spew": {"handler": "spew.wasm"},
    "env": {
        "handler": "env.wasm",
        "environment": {"FROM_FUNCTION": "fn", "BOTH": "fn"},
        "wasm": {"args": ["--mode", 3], "env": {"FROM_WASM": "w", "BOTH": "w"}},
    },
    "files": {
        "handler": "files.wasm",
        "wasm": {"dirs": ["data", {"path": "scratch", "mode": "rw"}]},
    },
    "nap": {"handler": "nap.wasm"},
    "sleeper": {"handler": "sleeper.wasm", "timeout": 1},
    "fuel": {"handler": "loop.wasm", "wasm": {"fuel": 1_000_000}},
    "single": {"handler": "loop.wasm", "timeout": 1, "reservedConcurrency": 1},
    "missing": {"handler": "nope.wasm"},
    "escape": {"handler": "../echo.wasm"},
    "badopts": {"handler": "echo.wasm", "wasm": {"dirs": ["../outside"]}},
}
WAT = {
    "echo.wasm": ECHO_WAT,
    "loop.wasm": LOOP_WAT,
    "trap.wasm": TRAP_WAT,
    "recurse.wasm": RECURSE_WAT,
    "grow.wasm": GROW_WAT,
    "bigmem.wasm": BIG_MEMORY_WAT,
    "remember.wasm": REMEMBER_WAT,
    "exit.wasm": EXIT_WAT,
    "spew.wasm": SPEW_WAT,
    "env.wasm": ENV_WAT,
    "files.wasm": FILES_WAT,
    "nap.wasm": sleep_wat(0.05),
    "sleeper.wasm": sleep_wat(30),
}


class Harness:
    def __init__(self, data_dir: Path, service_dir: Path, **settings: Any) -> None:
        write_service(service_dir, FUNCTIONS, WAT)
        (service_dir / "data").mkdir(exist_ok=True)
        (service_dir / "data" / "inside.txt").write_text("inside")
        (service_dir / "secret.txt").write_text("secret")
        self.registry = Registry(data_dir)
        deploy_service(self.registry, load_service(service_dir))
        self.service = service_dir.name
        self.settings = RuntimeSettings(data_dir=data_dir, **settings)

    def run(self, scenario: Callable[[Invoker], Awaitable[T]]) -> T:
        return run_with_invoker(self.settings, scenario)

    def fn_name(self, key: str) -> str:
        return f"{self.service}-dev-{key}"

    async def call(
        self, invoker: Invoker, key: str, payload: bytes = b"", http_event: bool = False
    ) -> InvocationResult:
        fn = self.registry.get(self.fn_name(key))
        return await invoker.invoke(fn, payload, http_event=http_event)

    def once(self, key: str, payload: bytes = b"") -> InvocationResult:
        return self.run(lambda inv: self.call(inv, key, payload))


@pytest.fixture
def harness(data_dir: Path) -> Harness:
    return Harness(data_dir, data_dir / "wasm-tests")


def error(result: InvocationResult) -> dict[str, Any]:
    assert result.function_error == "Unhandled", result.payload
    body: dict[str, Any] = json.loads(result.payload)
    return body


def test_echo_stdin_to_stdout_with_lambda_logs(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await harness.call(invoker, "echo", b'{"hello": "wasm"}') for _ in range(2)]

    first, second = harness.run(scenario)
    assert first.status == "success" and first.function_error is None
    assert first.payload == b'{"hello": "wasm"}' == second.payload
    lines = first.log.splitlines()
    assert lines[0] == f"START RequestId: {first.request_id} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {first.request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {first.request_id}\tDuration: ")
    assert "Memory Size: 1024 MB\tMax Memory Used: 2 MB" in lines[-1]  # 18 pages of 64 KB
    # The first invocation loads (compiles) the module: a cold start, with Init Duration.
    assert first.cold and first.init_ms is not None and "Init Duration" in first.log
    assert not second.cold and "Init Duration" not in second.log


def test_log_store_records_wasm_invocations(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> tuple[InvocationResult, list[Any]]:
        result = await harness.call(invoker, "exit")
        return result, invoker.logs.records(harness.fn_name("exit"))

    result, records = harness.run(scenario)
    assert [r.request_id for r in records] == [result.request_id]
    assert records[0].status == "crash" and records[0].log == result.log


def test_large_binary_stdout_comes_back_intact(harness: Harness) -> None:
    data = bytes(range(256)) * (5 * 4096)  # 5 MB, every byte value
    result = harness.once("echo", data)
    assert result.status == "success"
    assert result.payload == data


def test_output_over_6_mb_is_response_size_too_large(harness: Harness) -> None:
    body = error(harness.once("spew"))
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291456 bytes" in body["errorMessage"]


def test_infinite_loop_times_out_at_its_deadline_and_next_call_works(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> tuple[InvocationResult, float, InvocationResult]:
        t0 = time.perf_counter()
        looped = await harness.call(invoker, "loop")
        elapsed = time.perf_counter() - t0
        return looped, elapsed, await harness.call(invoker, "echo", b"after")

    looped, elapsed, after = harness.run(scenario)
    body = error(looped)
    assert looped.status == "timeout"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"] == (
        f"RequestId: {looped.request_id} Error: Task timed out after 1.00 seconds"
    )
    assert "Task timed out after 1.00 seconds" in looped.log
    # Never early; late by at most what a loaded 2-core machine may lag (the ticker's lag
    # counts, so the bound is loose only for the scheduler's sake).
    assert 1000 <= looped.duration_ms < 2000
    assert elapsed < 1.0 + 2.0  # plus compiling the module, on a busy machine
    assert after.payload == b"after"


def test_a_sleeping_program_is_woken_at_its_deadline(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> tuple[InvocationResult, InvocationResult, float]:
        nap = await harness.call(invoker, "nap")
        t0 = time.perf_counter()
        slept = await harness.call(invoker, "sleeper")
        return nap, slept, time.perf_counter() - t0

    nap, slept, elapsed = harness.run(scenario)
    assert nap.payload == b"woke" and nap.duration_ms >= 50
    assert error(slept)["errorType"] == "Sandbox.Timedout"
    assert elapsed < 10  # asked for 30 s: woken at its 1 s deadline


def test_fuel_budget_stops_the_program(harness: Harness) -> None:
    body = error(harness.once("fuel"))
    assert body["errorType"] == "Runtime.OutOfFuel"
    assert "wasm.fuel: 1000000" in body["errorMessage"]


def test_memory_grow_past_memory_size_fails_cleanly(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await harness.call(invoker, key) for key in ("grow", "bigmem", "echo")]

    grow, bigmem, echo = harness.run(scenario)
    assert grow.status == "success"
    assert grow.payload == b"refused\ngranted\n"  # 187 MB refused, 1 MB more granted
    assert "Max Memory Used: 2 MB" in grow.log
    body = error(bigmem)  # its initial memory alone (256 MB) is over the limit
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert "memorySize (128 MB)" in body["errorMessage"]
    assert echo.status == "success"


def test_each_invocation_sees_a_fresh_memory_whatever_the_one_before_left(
    harness: Harness,
) -> None:
    # Instances reuse the pool's memory slots: wasmtime resets each as it is given back.
    async def scenario(invoker: Invoker) -> list[bytes]:
        seen = []
        for key in ("remember", "remember", "echo", "remember", "grow", "remember"):
            result = await harness.call(invoker, key, b"x")
            assert result.status == "success", result.payload
            if key == "remember":
                seen.append(result.payload)
        return seen

    fresh = b"data" + bytes(8)  # the data segment as written, zeros where marks were left
    assert harness.run(scenario) == [fresh] * 4


def test_as_many_instances_as_the_budget_run_at_once_and_give_their_slots_back(
    data_dir: Path,
) -> None:
    harness = Harness(data_dir, data_dir / "wasm-tests", max_workers=2, queue_timeout_s=30)

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return list(
            await asyncio.gather(
                harness.call(invoker, "loop"),
                harness.call(invoker, "loop"),
                harness.call(invoker, "echo", b"after"),  # waits for a slot
            )
        )

    first, second, echo = harness.run(scenario)
    assert first.status == second.status == "timeout"
    assert echo.payload == b"after"


def test_exit_code_is_runtime_exit_error_with_stderr_in_log(harness: Harness) -> None:
    result = harness.once("exit")
    body = error(result)
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 7"
    )
    assert body["stackTrace"] == ["grayscale: not an image"]
    log = result.log.splitlines()
    assert log[1] == "grayscale: not an image"  # stderr, right after START
    assert f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 7" in log
    assert log[-2].startswith("END RequestId")


def test_traps_are_runtime_wasm_trap_with_their_message(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await harness.call(invoker, key, b"ok") for key in ("trap", "recurse", "echo")]

    trap, recurse, echo = harness.run(scenario)
    body = error(trap)
    assert body["errorType"] == "Runtime.WasmTrap"
    assert "unreachable" in body["errorMessage"]
    assert body["stackTrace"], "the wasm backtrace"
    body = error(recurse)
    assert body["errorType"] == "Runtime.WasmTrap"
    assert "stack" in body["errorMessage"]  # call stack exhausted
    assert f"wasm trap: {body['errorMessage'].split('wasm trap: ')[1]}" in recurse.log
    assert echo.payload == b"ok"  # the next instance is unaffected


def test_environment_args_and_nothing_of_the_host(harness: Harness) -> None:
    result = harness.once("env", b"payload")
    args, environ, stdin = result.payload.split(b"\x01")
    assert args.split(b"\0")[:-1] == [b"env.wasm", b"--mode", b"3"]
    pairs = [item.split("=", 1) for item in environ.decode().split("\0")[:-1]]
    assert [v for k, v in pairs if k == "BOTH"] == ["w"]  # wasm.env wins, once
    env = dict(pairs)
    assert env["FROM_FUNCTION"] == "fn" and env["FROM_WASM"] == "w"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == harness.fn_name("env")
    assert env["AWS_REQUEST_ID"] == result.request_id
    assert "PATH" not in env and "HOME" not in env and "REQUEST_METHOD" not in env
    assert stdin == b"payload"


def test_http_event_gives_cgi_variables_and_a_proxy_response(harness: Harness) -> None:
    import base64

    event = {
        "version": "2.0",
        "routeKey": "POST /env",
        "rawPath": "/env/x",
        "rawQueryString": "a=1&b=two%20words",
        "cookies": ["c1=v1", "c2=v2"],
        "headers": {
            "content-type": "application/octet-stream",
            "x-custom-thing": "yes",
            "proxy": "evil",
        },
        "requestContext": {"http": {"method": "POST", "sourceIp": "10.1.2.3"}},
        "body": base64.b64encode(b"\x00\xffbinary").decode(),
        "isBase64Encoded": True,
    }
    result = harness.run(
        lambda inv: harness.call(inv, "env", json.dumps(event).encode(), http_event=True)
    )
    response = json.loads(result.payload)
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is True
    assert response["headers"] == {"Content-Type": "application/octet-stream"}
    _, environ, stdin = base64.b64decode(response["body"]).split(b"\x01")
    env = dict(item.split("=", 1) for item in environ.decode().split("\0")[:-1])
    assert stdin == b"\x00\xffbinary"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/env/x"
    assert env["QUERY_STRING"] == "a=1&b=two%20words"
    assert env["CONTENT_TYPE"] == "application/octet-stream"
    assert env["CONTENT_LENGTH"] == "8"
    assert env["HTTP_X_CUSTOM_THING"] == "yes"
    assert env["HTTP_COOKIE"] == "c1=v1; c2=v2"
    assert env["REMOTE_ADDR"] == "10.1.2.3"
    assert "HTTP_PROXY" not in env and "HTTP_CONTENT_TYPE" not in env


def test_files_outside_the_preopens_are_denied(harness: Harness) -> None:
    result = harness.once("files")
    assert result.status == "success", result.payload
    inside, parent, absolute, create_ro, create_rw, no_preopen = result.payload
    assert inside == 0  # data/inside.txt
    assert parent != 0  # ../secret.txt: not capable
    assert absolute != 0  # /etc/passwd
    assert create_ro != 0  # data/ is read-only
    assert create_rw == 0  # scratch/ is the function's writable copy
    assert no_preopen == 8  # EBADF: fd 30 is nothing
    fn = harness.registry.get(harness.fn_name("files"))
    assert not (fn.code_dir / "scratch").exists()  # the stored code was not written


def test_bad_module_and_bad_options_are_reported_as_faults(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await harness.call(invoker, key) for key in ("missing", "badopts", "escape")]

    missing, badopts, escape = harness.run(scenario)
    assert error(escape)["errorType"] == "Runtime.InvalidEntrypoint"
    assert "outside the function's code" in error(escape)["errorMessage"]
    assert error(missing)["errorType"] == "Runtime.InvalidEntrypoint"
    assert "nope.wasm not found" in error(missing)["errorMessage"]
    assert error(badopts)["errorType"] == "Runtime.WasmConfigError"
    assert "inside the function's code" in error(badopts)["errorMessage"]


def test_instances_run_in_parallel_and_throttle_at_reserved_concurrency(
    data_dir: Path,
) -> None:
    harness = Harness(data_dir, data_dir / "wasm-tests", queue_timeout_s=0.2)

    async def scenario(invoker: Invoker) -> tuple[list[Any], float]:
        t0 = time.perf_counter()
        results = await asyncio.gather(
            harness.call(invoker, "loop"),
            harness.call(invoker, "loop"),
            harness.call(invoker, "single"),
            harness.call(invoker, "single"),
            return_exceptions=True,
        )
        return results, time.perf_counter() - t0

    results, elapsed = harness.run(scenario)
    loops, singles = results[:2], results[2:]
    assert all(isinstance(r, InvocationResult) and r.status == "timeout" for r in loops)
    # The two loops ran side by side: one after the other would take their durations' sum.
    assert elapsed * 1000 < sum(r.duration_ms for r in loops if isinstance(r, InvocationResult))
    throttled = [r for r in singles if isinstance(r, TooManyRequests)]
    assert len(throttled) == 1
    assert throttled[0].reason == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_compiled_module_is_cached_on_disk_for_the_next_server(harness: Harness) -> None:
    first = harness.once("echo", b"x")
    cached = list((harness.settings.data_dir / "wasm-cache").glob("*.cwasm"))
    assert len(cached) == 1 and first.init_ms is not None
    written = cached[0].stat()
    second = harness.once("echo", b"y")  # a new Invoker: as after a restart
    assert second.payload == b"y" and second.init_ms is not None
    # Loaded from the file, not compiled again (a compile writes the file anew).
    again = cached[0].stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


RUST_UPPER = """
use std::io::{Read, Write};
fn main() {
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).expect("read stdin");
    eprintln!("upper: {} bytes, {:?}", input.len(), std::env::var("REQUEST_METHOD").ok());
    std::io::stdout().write_all(&input.to_ascii_uppercase()).expect("write stdout");
    if input.starts_with(b"fail") {
        std::process::exit(3);
    }
}
"""


def build_rust_wasi(source: Path, out: Path) -> bool:
    """Compile with any rustc that has a WASI preview1 standard library (rustup's
    wasm32-wasip1 target, or Debian's rustc + libstd-rust-dev-wasm32, whose target is still
    called wasm32-wasi); False when there is none."""
    import shutil
    import subprocess

    compilers = {c for c in (shutil.which("rustc"), "/usr/bin/rustc") if c and Path(c).exists()}
    for rustc in sorted(compilers):
        for target in ("wasm32-wasip1", "wasm32-wasi"):
            built = subprocess.run(
                [rustc, "--target", target, "-O", str(source), "-o", str(out)],
                capture_output=True,
                timeout=300,
            )
            if built.returncode == 0:
                return True
    return False


def test_a_rust_wasi_command_runs_with_only_a_serverless_yml_entry(
    data_dir: Path, tmp_path: Path
) -> None:
    service = tmp_path / "rusty"
    service.mkdir()
    (service / "upper.rs").write_text(RUST_UPPER)
    if not build_rust_wasi(service / "upper.rs", service / "upper.wasm"):
        pytest.skip(
            "no rustc with a wasm32-wasi(p1) standard library is installed "
            "(`make toolchains` installs Debian's rustc and libstd-rust-dev-wasm32)"
        )
    (service / "serverless.yml").write_text(
        "service: rusty\nprovider: {name: aws}\n"
        "functions:\n  upper: {runtime: wasm, handler: upper.wasm}\n"
    )
    registry = Registry(data_dir)
    deploy_service(registry, load_service(service))
    fn = registry.get("rusty-dev-upper")

    async def scenario() -> list[InvocationResult]:
        invoker = Invoker(RuntimeSettings(data_dir=data_dir))
        try:
            return [await invoker.invoke(fn, p) for p in (b'"hello rust"', b"fail")]
        finally:
            await invoker.close()

    ok, failed = asyncio.run(scenario())
    assert ok.payload == b'"HELLO RUST"' and ok.status == "success"
    assert "upper: 12 bytes, None" in ok.log
    assert error(failed)["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error(failed)["errorMessage"]


GRAYSCALE = Path(__file__).resolve().parents[2] / "examples" / "wasm-grayscale"


def test_the_committed_grayscale_wasm_is_what_its_source_builds_to() -> None:
    """examples/wasm-grayscale/build.sh --check (`make wasm-check`): a fresh build of
    grayscale.c is byte for byte the committed grayscale.wasm."""
    import subprocess

    done = subprocess.run(
        ["sh", str(GRAYSCALE / "build.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode == 0 and ": skipped: " in done.stdout:
        # No wasm32-wasi clang, or another toolchain than toolchain.txt's: a machine fact.
        pytest.skip(done.stdout.strip().replace("\n", "; "))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: grayscale.wasm matches its source" in done.stdout
