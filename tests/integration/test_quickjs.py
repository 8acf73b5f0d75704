"""`runtime: quickjs` on a real server: examples/js-echo (one handler file on quickjs and on
nodejs20.x), a 1 MB body byte for byte, the Invoke API with boto3, console.log in the log,
a JavaScript infinite loop stopped at its timeout while other functions answer, and the
memory cap."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import EXAMPLES, RunningServer, lambda_client

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# An ES module (.mjs) with handlers beside the echo: what the sandbox stops or refuses.
LIMITS_MJS = """
export const spin = async () => { for (;;) {} };
export const hog = async () => {
  const kept = [];
  for (;;) kept.push(new Array(1 << 20).fill(kept.length));
};
export const shapes = async (event, context) => ({
  sum: event.numbers.reduce((a, b) => a + b, 0),
  name: context.functionName,
  remaining: context.getRemainingTimeInMillis() > 0,
  nested: { list: [1, 'two', null, true], unicode: 'snowman \\u2603' },
});
export const fails = async () => { throw new RangeError('out of range'); };
"""


def _limits_service(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "limits.mjs").write_text(LIMITS_MJS)
    functions: dict[str, Any] = {
        "spin": {"handler": "limits.spin", "timeout": 1},
        "hog": {"handler": "limits.hog", "memorySize": 128},
        "shapes": {"handler": "limits.shapes"},
        "shapes-node": {"handler": "limits.shapes", "runtime": "nodejs20.x"},
        "fails": {"handler": "limits.fails"},
    }
    doc = {
        "service": "qjs-limits",
        "provider": {"name": "aws", "runtime": "quickjs", "timeout": 10},
        "functions": functions,
    }
    (folder / "serverless.yml").write_text(json.dumps(doc))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    limits = _limits_service(tmp_path_factory.mktemp("services") / "qjs-limits")
    running = RunningServer(
        [EXAMPLES / "js-echo", EXAMPLES / "hello", limits], tmp_path_factory.mktemp("data")
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def aws(server: RunningServer) -> Any:
    return lambda_client(server.url, server.credentials)


def _invoke(aws: Any, name: str, event: Any) -> tuple[dict[str, Any], Any, str]:
    response = aws.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    return (
        response,
        json.loads(response["Payload"].read()),
        base64.b64decode(response["LogResult"]).decode(),
    )


def test_one_handler_file_answers_the_same_on_quickjs_and_nodejs(
    http: httpx.Client, aws: Any
) -> None:
    for body, kind in ((b"hello, echo", "text/plain"), (bytes(range(256)), "image/png")):
        on_quickjs = http.post("/js/echo", content=body, headers={"Content-Type": kind})
        on_node = http.post("/js/echo-node", content=body, headers={"Content-Type": kind})
        for response in (on_quickjs, on_node):
            assert response.status_code == 200, response.text
            assert response.content == body
            assert response.headers["content-type"] == kind
    # Through the Invoke API, the handler's result object as it is: equal on both.
    event = {"numbers": [1, 2, 3.5]}
    _, on_quickjs, _ = _invoke(aws, "qjs-limits-dev-shapes", event)
    _, on_node, _ = _invoke(aws, "qjs-limits-dev-shapes-node", event)
    assert on_quickjs == {**on_node, "name": "qjs-limits-dev-shapes"}
    assert on_quickjs["sum"] == 6.5 and on_quickjs["remaining"] is True


def test_a_megabyte_round_trips_byte_for_byte(http: httpx.Client) -> None:
    body = os.urandom(1 << 20)
    response = http.post(
        "/js/echo", content=body, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 200
    assert len(response.content) == len(body) and response.content == body


def test_console_log_is_the_functions_log_and_errors_are_function_errors(aws: Any) -> None:
    response, _, log = _invoke(
        aws, "js-echo-dev-echo", {"body": "abc", "headers": {"Content-Type": "text/plain"}}
    )
    request_id = response["ResponseMetadata"]["RequestId"]
    assert f"\t{request_id}\tINFO\techo: 3 characters (text), in time" in log

    failed, error, log = _invoke(aws, "qjs-limits-dev-fails", {})
    assert failed["FunctionError"] == "Unhandled"
    assert error["errorType"] == "RangeError" and error["errorMessage"] == "out of range"
    assert error["trace"][0] == "RangeError: out of range"
    assert "ERROR\tInvoke Error \t" in log


def test_an_infinite_loop_stops_at_its_timeout_while_others_answer(
    http: httpx.Client, aws: Any
) -> None:
    looped: dict[str, Any] = {}

    def run_loop() -> None:
        looped["response"] = aws.invoke(FunctionName="qjs-limits-dev-spin", LogType="Tail")

    thread = threading.Thread(target=run_loop)
    thread.start()
    answered = 0
    while thread.is_alive():
        echo = http.post("/js/echo", content=b"ping", headers={"Content-Type": "text/plain"})
        hello = aws.invoke(FunctionName="hello-dev-hello", Payload=b'{"name": "x"}')
        assert echo.content == b"ping"
        assert json.loads(hello["Payload"].read()).get("message") == "Hello, x!"
        answered += 1
    thread.join()
    assert answered >= 2  # the loop held neither the server nor the other functions

    response = looped["response"]
    error = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    report = base64.b64decode(response["LogResult"]).decode().splitlines()[-1]
    duration_ms = float(report.split("Duration: ")[1].split(" ms")[0])
    assert 1000 <= duration_ms <= 1000 + 100  # the epoch deadline: within a few ticks


def test_memory_is_capped_by_memory_size(aws: Any) -> None:
    started = time.monotonic()
    response, error, log = _invoke(aws, "qjs-limits-dev-hog", {})
    assert response["FunctionError"] == "Unhandled"
    # QuickJS's allocator meets the 128 MB cap on linear memory: its out-of-memory error
    # (or a trap, should the engine itself fail to allocate), never the server's memory.
    assert error["errorType"] in ("InternalError", "RangeError", "Runtime.WasmTrap"), error
    assert "REPORT" in log and "Memory Size: 128 MB" in log
    assert time.monotonic() - started < 10  # stopped by the cap, not the timeout
