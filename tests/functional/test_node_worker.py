"""The Node.js worker (faasbox/execution/process/node/bootstrap.js) on its own: a real `node`
process with a control socket and a log pipe, driven with the frames of protocol.py as the
server drives a worker."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faasbox.execution.process import protocol
from tests.support import ROOT, SERVICES

NODE = shutil.which("node")
BOOTSTRAP = ROOT / "faasbox" / "execution" / "process" / "node" / "bootstrap.js"
HANDLERS = SERVICES / "node"
LAYER = HANDLERS / "layer" / "nodejs" / "node_modules"
WAIT = 30.0  # seconds any one frame may take on a busy machine; a hang fails, not blocks
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(\S+)\t([A-Z]+)\t(.*)$", re.S)

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


class Frame:
    def __init__(self, kind: int, header: dict[str, Any], body: bytes, log: str) -> None:
        self.kind = kind
        self.header = header
        self.body = body
        self.log = log  # the output written before this frame

    def json(self) -> Any:
        return json.loads(self.body)


class NodeWorker:
    """`node bootstrap.js FD` with fd 1 and 2 on a pipe, as the launcher starts it."""

    def __init__(self, tmp_path: Path) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_r, log_w = os.pipe()
        assert NODE is not None
        self.proc = subprocess.Popen(
            [NODE, str(BOOTSTRAP), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=log_w,
            stderr=log_w,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SPARE_ONLY": "1"},
            cwd="/",
        )
        theirs.close()
        os.close(log_w)
        self.log_fd = log_r
        os.set_blocking(log_r, False)
        self.tmp_path = tmp_path
        self._buffer = bytearray()
        self._log = bytearray()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.sock, selectors.EVENT_READ, "sock")
        self._selector.register(log_r, selectors.EVENT_READ, "log")
        self.boot_header: dict[str, Any] = {}

    def boot(self, handler: str, **overrides: Any) -> Frame:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "TMPDIR": str(self.tmp_path),
            "LAMBDA_TASK_ROOT": str(HANDLERS),
            "_HANDLER": handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x",
            "AWS_LAMBDA_FUNCTION_NAME": "node-fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/node-fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]abc",
            "AWS_REGION": "us-east-1",
            "OWN_SETTING": "own-value",
            **overrides.pop("env", {}),
        }
        self.boot_header = {
            "handler": handler,
            "task_root": str(HANDLERS),
            "paths": [],
            "env": env,
            "tmp_dir": str(self.tmp_path),
            "function_name": "node-fn",
            "version": "$LATEST",
            "arn": "arn:aws:lambda:us-east-1:000000000000:function:node-fn",
            "memory_mb": 256,
            "log_group": "/aws/lambda/node-fn",
            "log_stream": "2026/12/01/[$LATEST]abc",
            **overrides,
        }
        self.sock.sendall(protocol.encode(protocol.BOOT, self.boot_header))
        return self.frame()

    def invoke(self, event: Any = None, *, raw: bytes | None = None, **header: Any) -> Frame:
        request_id = header.pop("request_id", str(uuid.uuid4()))
        body = raw if raw is not None else json.dumps({} if event is None else event).encode()
        invoke_header = {
            "request_id": request_id,
            "deadline_ms": int((time.time() + 60) * 1000),
            "invoked_arn": self.boot_header["arn"],
            "client_context": None,
            "identity": None,
            **header,
        }
        self.sock.sendall(protocol.encode(protocol.INVOKE, invoke_header, body))
        frame = self.frame()
        frame.header["request_id"] = request_id
        return frame

    def frame(self) -> Frame:
        """The next frame; the log is drained after it, as the server drains it."""
        deadline = time.monotonic() + WAIT
        while True:
            parsed = self._parse()
            if parsed is not None:
                self._read_log()
                log = self._log.decode("utf-8", "replace")
                self._log.clear()
                return Frame(*parsed, log)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no frame from the Node worker in time")
            for key, _ in self._selector.select(remaining):
                if key.data == "log":
                    self._read_log()
                else:
                    chunk = self.sock.recv(1 << 20)
                    if not chunk:
                        raise ConnectionError("the worker closed its socket")
                    self._buffer += chunk

    def _parse(self) -> tuple[int, dict[str, Any], bytes] | None:
        if len(self._buffer) < protocol.PREFIX.size:
            return None
        kind, head_len, body_len = protocol.decode_header(bytes(self._buffer[:9]))
        end = protocol.PREFIX.size + head_len + body_len
        if len(self._buffer) < end:
            return None
        header = json.loads(self._buffer[9 : 9 + head_len]) if head_len else {}
        body = bytes(self._buffer[9 + head_len : end])
        del self._buffer[:end]
        return kind, header, body

    def _read_log(self) -> None:
        while True:
            try:
                chunk = os.read(self.log_fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:  # end of the log: seen once by select, maybe again after a frame
                if self.log_fd in self._selector.get_map():
                    self._selector.unregister(self.log_fd)
                return
            self._log += chunk

    def wait_exit(self) -> tuple[int, str]:
        """The exit status, and the output written after the last frame."""
        code = self.proc.wait(WAIT)
        self._read_log()
        return code, self._log.decode("utf-8", "replace")

    def close(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._selector.close()
        os.close(self.log_fd)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    workers: list[NodeWorker] = []

    def start() -> NodeWorker:
        worker = NodeWorker(tmp_path)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.close()


@pytest.fixture
def booted(spawn: Any) -> Any:
    def start(handler: str, **overrides: Any) -> NodeWorker:
        worker: NodeWorker = spawn()
        ready = worker.boot(handler, **overrides)
        assert ready.kind == protocol.READY, ready.header
        return worker

    return start


def log_lines(log: str) -> list[tuple[str, str, str]]:
    """(request id, level, message) of each console line; raw lines as ('', '', text)."""
    out = []
    for line in log.splitlines():
        m = LINE.match(line)
        out.append((m.group(1), m.group(2), m.group(3)) if m else ("", "", line))
    return out


# --- start, INIT, warm state -------------------------------------------------------------


def test_ready_after_boot_and_warm_state_across_invocations(booted: Any) -> None:
    worker = booted("handlers.counter")
    results = [worker.invoke() for _ in range(3)]
    assert [r.kind for r in results] == [protocol.RESULT] * 3
    assert [r.json()["calls"] for r in results] == [1, 2, 3]
    assert {r.json()["pid"] for r in results} == {worker.proc.pid}
    for r in results:
        assert r.header["ok"] is True
        assert r.header["duration_ms"] >= 0
        assert r.header["max_memory_kb"] > 10_000  # Node's own RSS is tens of MB


def test_ready_reports_init_costs_and_logs_init_output(spawn: Any) -> None:
    worker = spawn()
    ready = worker.boot("handlers.hello")
    assert ready.kind == protocol.READY
    assert ready.header["boot_ms"] >= 0 and ready.header["import_ms"] > 0
    assert ready.header["max_memory_kb"] > 10_000
    # Output of INIT carries no request id: Lambda prints "undefined" there.
    assert ("undefined", "INFO", "loading handlers.js") in log_lines(ready.log)


def test_a_spare_waits_for_boot_then_closes_cleanly(spawn: Any) -> None:
    worker = spawn()
    ready = worker.boot("handlers.hello")
    assert ready.kind == protocol.READY
    assert worker.invoke({"name": "ada"}).json() == {"hello": "ada"}
    worker.sock.shutdown(socket.SHUT_RDWR)  # SHUTDOWN: the server closes the socket
    code, _ = worker.wait_exit()
    assert code == 0


def test_context_environment_cwd_and_node_path(booted: Any, tmp_path: Path) -> None:
    worker = booted("handlers.inspect")
    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    client_context = {"client": {"app_title": "t"}, "custom": {"k": "v"}, "env": {}}
    result = worker.invoke(
        request_id="req-123",
        identity=identity,
        client_context=client_context,
        invoked_arn="arn:aws:lambda:us-east-1:000000000000:function:node-fn:live",
        deadline_ms=int((time.time() + 5) * 1000),
    )
    seen = result.json()
    ctx = seen["context"]
    assert ctx["functionName"] == "node-fn"
    assert ctx["functionVersion"] == "$LATEST"
    assert ctx["invokedFunctionArn"].endswith("function:node-fn:live")
    assert ctx["memoryLimitInMB"] == "256"  # a string, as on Lambda
    assert ctx["awsRequestId"] == "req-123"
    assert ctx["logGroupName"] == "/aws/lambda/node-fn"
    assert ctx["logStreamName"] == "2026/12/01/[$LATEST]abc"
    assert ctx["identity"] == identity
    assert ctx["clientContext"] == client_context
    assert 0 < ctx["remaining"] <= 5000
    assert ctx["waits"] is True
    env = seen["env"]
    # The environment is BOOT's, not the spare's.
    assert "SPARE_ONLY" not in env
    assert env["OWN_SETTING"] == "own-value" and env["_HANDLER"] == "handlers.inspect"
    node_path = env["NODE_PATH"].split(":")
    runtime_dir = str(BOOTSTRAP.parent)
    assert node_path == [
        "/opt/nodejs/node20/node_modules",
        "/opt/nodejs/node_modules",
        f"{runtime_dir}/node_modules",
        runtime_dir,
        str(HANDLERS),
    ]
    assert seen["cwd"] == str(HANDLERS)
    assert seen["tmpdir"] == str(tmp_path)
    assert seen["argv"] == [str(BOOTSTRAP)]


def test_node_path_names_the_runtime_major_and_boot_paths(booted: Any) -> None:
    worker = booted(
        "handlers.fromLayer",
        paths=[str(LAYER)],
        env={"AWS_EXECUTION_ENV": "AWS_Lambda_nodejs18.x"},
    )
    seen = worker.invoke().json()
    assert seen["where"] == "layer"  # found through NODE_PATH only
    assert seen["nodePath"].split(":")[:3] == [
        str(LAYER),
        "/opt/nodejs/node18/node_modules",
        "/opt/nodejs/node_modules",
    ]


def test_node_path_set_by_the_function_is_kept(booted: Any) -> None:
    worker = booted("handlers.inspect", env={"NODE_PATH": "/custom/modules"})
    assert worker.invoke().json()["env"]["NODE_PATH"] == "/custom/modules"


# --- handler resolution -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("esm.handler", {"module": "esm", "url": True, "requestId": "rid"}),
        ("plain.handler", "cjs"),
        ("esm-package/app.handler", {"module": "esm"}),
        ("src/handler.main", "from src"),
        ("handlers.nested.deeper.fn", "deep"),
        ("both/twice.handler", "js"),
    ],
)
def test_handlers_resolve_as_lambda_resolves_them(booted: Any, handler: str, expected: Any) -> None:
    worker = booted(handler)
    assert worker.invoke(request_id="rid").json() == expected


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("nowhere.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nowhere'"),
        ("requires_missing.handler", "Runtime.ImportModuleError", "Cannot find module"),
        (
            "handlers.missing",
            "Runtime.HandlerNotFound",
            "handlers.missing is undefined or not exported",
        ),
        ("handlers.value", "Runtime.HandlerNotFound", "handlers.value is not a function"),
        ("syntax_error.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: Unexpected token"),
        ("noDot", "Runtime.MalformedHandlerName", "Bad handler"),
        ("../up.handler", "Runtime.MalformedHandlerName", "is not a valid handler name"),
        ("throws_at_import.handler", "ConfigError", "missing setting at import"),
        ("imports_missing.handler", "Error", "Cannot find package 'not-installed-anywhere'"),
    ],
)
def test_init_errors_are_lambdas_and_the_worker_exits(
    spawn: Any, handler: str, error_type: str, message: str
) -> None:
    worker = spawn()
    frame = worker.boot(handler)
    assert frame.kind == protocol.INIT_ERROR
    error = frame.header["error"]
    assert error["errorType"] == error_type
    assert message in error["errorMessage"]
    assert isinstance(error["trace"], list)
    # The log has Lambda's record of it, before any request id.
    (rid, level, text), *_ = (x for x in log_lines(frame.log) if x[1] == "ERROR")
    assert (rid, level) == ("undefined", "ERROR")
    assert text.startswith("Uncaught Exception \t{")
    assert json.loads(text.split("\t", 1)[1])["errorType"] == error_type
    code, _ = worker.wait_exit()
    assert code == 129


def test_a_top_level_await_that_never_settles_exits_as_node_does(spawn: Any) -> None:
    worker = spawn()
    worker.sock.sendall(
        protocol.encode(protocol.BOOT, {**boot_fields(worker), "handler": "never_loads.handler"})
    )
    code, _ = worker.wait_exit()
    assert code == 13


def boot_fields(worker: NodeWorker) -> dict[str, Any]:
    return {
        "handler": "",
        "task_root": str(HANDLERS),
        "paths": [],
        "env": {"PATH": "/usr/bin:/bin"},
        "tmp_dir": str(worker.tmp_path),
        "function_name": "node-fn",
        "version": "$LATEST",
        "arn": "arn:aws:lambda:us-east-1:000000000000:function:node-fn",
        "memory_mb": 128,
        "log_group": "/aws/lambda/node-fn",
        "log_stream": "s",
    }


# --- results ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("handlers.callback", {"via": "callback"}),
        ("handlers.callbackTwice", "first"),
        ("handlers.syncReturn", None),
        ("handlers.returnsPromise", "from a promise"),
        ("handlers.succeed", {"via": "succeed"}),
        ("handlers.done", "done!"),
    ],
)
def test_callback_and_context_results(booted: Any, handler: str, expected: Any) -> None:
    result = booted(handler).invoke()
    assert result.header["ok"] is True
    assert result.json() == expected


def test_a_callback_result_waits_for_the_empty_event_loop(booted: Any) -> None:
    worker = booted("handlers.callbackWaits")
    result = worker.invoke()
    assert result.json() == "after the timer"
    assert (result.header["request_id"], "INFO", "timer ran before the result") in log_lines(
        result.log
    )


def test_callback_waits_false_answers_at_once(booted: Any) -> None:
    worker = booted("handlers.callbackNoWait")
    # An interval that never ends would hold the result forever with the default.
    assert worker.invoke().json() == "at once"
    assert worker.invoke().json() == "at once"  # still warm, still answering


def test_event_payloads_round_trip_large_and_unicode(booted: Any) -> None:
    worker = booted("handlers.echo")
    event = {"text": "héllo ✓ 日本", "blob": "x" * (5 << 20)}
    result = worker.invoke(event)
    assert result.json() == event
    assert worker.invoke(raw=b"").json() == {}


# --- errors -------------------------------------------------------------------------------


def error_of(frame: Frame) -> dict[str, Any]:
    assert frame.kind == protocol.RESULT and frame.header["ok"] is False
    error: dict[str, Any] = frame.json()
    return error


def test_a_thrown_error_is_lambdas_shape_and_the_worker_stays_warm(booted: Any) -> None:
    worker = booted("handlers.throws")
    failed = worker.invoke()
    error = error_of(failed)
    assert set(error) == {"errorType", "errorMessage", "trace"}
    assert error["errorType"] == "TypeError"
    assert error["errorMessage"] == "bad thing"
    assert error["trace"][0] == "TypeError: bad thing"
    assert error["trace"][1].startswith("    at ") and "handlers.js:" in error["trace"][1]
    # Logged as Lambda logs it: "Invoke Error" and the error as JSON, with the request id.
    record = [x for x in log_lines(failed.log) if x[1] == "ERROR"]
    assert record[0][0] == failed.header["request_id"]
    assert record[0][2].startswith("Invoke Error \t")
    logged = json.loads(record[0][2].split("\t", 1)[1])
    assert logged["errorType"] == "TypeError" and logged["stack"][0] == "TypeError: bad thing"
    again = worker.invoke()
    assert error_of(again)["errorMessage"] == "bad thing"
    assert worker.proc.poll() is None


@pytest.mark.parametrize(
    ("handler", "error_type", "message", "has_trace"),
    [
        ("handlers.throwsSync", "OddError", "something odd", True),
        ("handlers.callbackError", "RangeError", "out of range", True),
        ("handlers.fail", "Error", "failed via context", True),
        ("handlers.throwsString", "string", "just a string", False),
        ("handlers.rejectsObject", "object", "[object Object]", False),
        ("handlers.rejectsUndefined", "string", "handled", False),
        ("handlers.failEmpty", "string", "handled", False),
        ("handlers.doneError", "string", "a string error", False),
        ("handlers.neverSettles", "Runtime.NodeJsExit", "Promise that was never settled", True),
        ("handlers.circular", "Error", "Unable to stringify response body", True),
        ("handlers.bigint", "Error", "Unable to stringify response body", True),
    ],
)
def test_errors_and_non_error_values_are_shaped_as_lambda_shapes_them(
    booted: Any, handler: str, error_type: str, message: str, has_trace: bool
) -> None:
    worker = booted(handler)
    error = error_of(worker.invoke())
    assert error["errorType"] == error_type
    assert message in error["errorMessage"]
    assert bool(error["trace"]) is has_trace
    # Each is an invocation error: the environment stays.
    assert error_of(worker.invoke())["errorType"] == error_type
    assert worker.proc.poll() is None


def test_an_event_that_is_not_json_fails_the_invocation(booted: Any) -> None:
    error = error_of(booted("handlers.echo").invoke(raw=b"{not json"))
    assert error["errorType"] == "SyntaxError"


def test_an_uncaught_exception_fails_the_invocation_and_ends_the_environment(
    booted: Any,
) -> None:
    worker = booted("handlers.uncaught")
    failed = worker.invoke()
    error = error_of(failed)
    assert error["errorType"] == "Error" and error["errorMessage"] == "thrown from a timer"
    assert failed.header["exiting"] is True  # the server must not reuse it
    assert any(
        x[2].startswith("Uncaught Exception \t") for x in log_lines(failed.log) if x[1] == "ERROR"
    )
    code, _ = worker.wait_exit()
    assert code == 129


def test_an_unhandled_rejection_fails_the_invocation_and_ends_the_environment(
    booted: Any,
) -> None:
    worker = booted("handlers.unhandled")
    failed = worker.invoke()
    error = error_of(failed)
    assert failed.header["exiting"] is True
    assert error["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert error["errorMessage"] == "Error: nobody catches me"
    code, _ = worker.wait_exit()
    assert code == 128


def test_an_uncaught_exception_after_the_answer_ends_the_environment(booted: Any) -> None:
    worker = booted("handlers.uncaughtAfter")
    result = worker.invoke()
    assert result.header["ok"] is True and result.json() == "answered"
    assert "exiting" not in result.header  # it did not know yet
    code, late = worker.wait_exit()  # no second frame: the server sees the exit
    assert code == 129
    assert "Uncaught Exception" in late and "after the answer" in late
    assert worker.sock.recv(1) == b""


def test_process_exit_in_a_handler_ends_the_worker_with_its_code(booted: Any) -> None:
    worker = booted("handlers.exits")
    worker.sock.sendall(
        protocol.encode(
            protocol.INVOKE,
            {"request_id": "r", "deadline_ms": int(time.time() * 1000) + 60000},
            b"{}",
        )
    )
    code, _ = worker.wait_exit()
    assert code == 3


# --- logs ---------------------------------------------------------------------------------


def test_console_output_has_lambdas_format_per_request(booted: Any) -> None:
    worker = booted("handlers.output")
    result = worker.invoke()
    rid = result.header["request_id"]
    lines = log_lines(result.log)
    assert (rid, "INFO", "log formatted { a: 1 }") in lines
    assert (rid, "INFO", "info line") in lines
    assert (rid, "WARN", "warn line") in lines
    assert (rid, "DEBUG", "debug line") in lines
    assert (rid, "TRACE", "trace line") in lines
    assert (rid, "INFO", "undefined") in lines  # console.log() with nothing, as Lambda
    errors = [x for x in lines if x[1] == "ERROR"]
    assert errors[0][2].startswith("error line Error: shown")
    assert ("", "", "raw stdout") in lines and ("", "", "raw stderr") in lines
    assert f"{rid}\tINFO\ttwo\nlines" in result.log
    # Lines come in the order they were written.
    order = [x[2] for x in lines if x[2] in ("info line", "warn line", "debug line")]
    assert order == ["info line", "warn line", "debug line"]
    second = worker.invoke()
    assert second.header["request_id"] in second.log and rid not in second.log


def test_log_level_filters_console_as_lambda_does(booted: Any) -> None:
    worker = booted("handlers.output", env={"AWS_LAMBDA_LOG_LEVEL": "warn"})
    levels = {x[1] for x in log_lines(worker.invoke().log) if x[1]}
    assert levels == {"WARN", "ERROR"}


def test_json_log_format(booted: Any) -> None:
    worker = booted("handlers.output", env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    result = worker.invoke()
    records = [json.loads(line) for line in result.log.splitlines() if line.startswith("{")]
    by_message = {r.get("message"): r for r in records}
    info = by_message["info line"]
    assert info["level"] == "INFO" and info["requestId"] == result.header["request_id"]
    assert "timestamp" in info
    assert by_message["two\nlines"]["level"] == "INFO"
    error = next(r for r in records if r["level"] == "ERROR")
    assert error["errorType"] == "Error" and error["errorMessage"] == "shown"


def test_a_chatty_function_never_blocks_and_its_log_is_complete(booted: Any) -> None:
    worker = booted("handlers.chatty")
    result = worker.invoke({"lines": 2000})  # 2 MB: far more than a pipe holds
    assert result.json() == 2000
    assert sum(1 for x in log_lines(result.log) if x[1] == "INFO") == 2000


# --- response streaming (a buffered invocation) -------------------------------------------


def test_a_streaming_handler_answers_what_it_wrote(booted: Any) -> None:
    worker = booted("streaming.text")
    result = worker.invoke({"name": "there"})
    assert result.header["ok"] is True
    assert result.body == b"hello there"
    assert result.header["content_type"] == "text/plain"


def test_an_http_response_stream_starts_with_its_prelude(booted: Any) -> None:
    result = booted("streaming.http").invoke()
    prelude, _, rest = result.body.partition(b"\0" * 8)
    assert json.loads(prelude) == {"statusCode": 201, "headers": {"x-kind": "streamed"}}
    assert rest == b"body"
    assert result.header["content_type"] == "application/vnd.awslambda.http-integration-response"


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("streaming.unfinished", "string", "Response stream is not finished."),
        ("streaming.throws", "TypeError", "stream broke"),
        ("streaming.notAsync", "string", "Streaming does not support non-async handlers."),
    ],
)
def test_streaming_failures(booted: Any, handler: str, error_type: str, message: str) -> None:
    worker = booted(handler)
    error = error_of(worker.invoke())
    assert (error["errorType"], error["errorMessage"]) == (error_type, message)
    assert worker.proc.poll() is None


def test_without_the_global_awslambda_a_streaming_module_fails_to_load(spawn: Any) -> None:
    worker = spawn()
    frame = worker.boot("streaming.text", env={"AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA": "1"})
    assert frame.kind == protocol.INIT_ERROR
    assert frame.header["error"]["errorType"] == "ReferenceError"
    assert frame.header["error"]["errorMessage"] == "awslambda is not defined"
