"""reservedConcurrency is the function's, all its versions together, as on Lambda: a
published version and $LATEST of a function reserved at 1 never run side by side, for a
Python function's workers and a WebAssembly function's instances alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import wasmtime

from tests.functional.test_wasm import sleep_wat
from tests.support import RunningServer, lambda_client, wait_until

NAP = """
import time


def nap(event, context):
    started = time.time()
    time.sleep(event["seconds"])
    return {"started": started, "ended": time.time()}
"""
LONG_S = 4.0  # an invocation that outlasts the queue's 1 s wait, with room for a slow machine
WAIT_S = 30.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("services") / "reserved"
    folder.mkdir()
    (folder / "py.py").write_text(NAP)
    (folder / "sleepy.wasm").write_bytes(wasmtime.wat2wasm(sleep_wat(LONG_S)))
    doc = {
        "service": "reserved",
        "provider": {"name": "aws", "runtime": "python3.11", "timeout": 30},
        "functions": {
            "nap": {"handler": "py.nap", "reservedConcurrency": 1},
            "sleepy": {"handler": "sleepy.wasm", "runtime": "wasm", "reservedConcurrency": 1},
        },
    }
    (folder / "serverless.yml").write_text(json.dumps(doc))
    running = RunningServer(
        [folder], tmp_path_factory.mktemp("data"), "--queue-timeout", "1", "--max-workers", "4"
    )
    yield running.start()
    running.stop()


def invoke(aws: Any, name: str, qualifier: str, payload: Any) -> tuple[int, Any]:
    """(status code, the payload JSON-decoded or the raw bytes); a 429's Reason."""
    try:
        response = aws.invoke(FunctionName=name, Qualifier=qualifier, Payload=json.dumps(payload))
    except aws.exceptions.TooManyRequestsException as e:
        return 429, e.response.get("Reason")
    body = response["Payload"].read()
    try:
        return response["StatusCode"], json.loads(body)
    except ValueError:
        return response["StatusCode"], body


def busy(server: RunningServer) -> int:
    shown: int = httpx.get(f"{server.url}/_faasbox/health", timeout=10).json()["busy"]
    return shown


def in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=call()))
    thread.start()
    return thread, box


@pytest.mark.parametrize(("name", "payload"), [("nap", {"seconds": LONG_S}), ("sleepy", "")])
def test_a_version_waits_for_the_reservation_another_version_holds(
    server: RunningServer, name: str, payload: Any
) -> None:
    aws = lambda_client(server.url, server.credentials)
    function = f"reserved-dev-{name}"
    version = aws.publish_version(FunctionName=function)["Version"]
    thread, box = in_background(lambda: invoke(aws, function, "$LATEST", payload))
    wait_until(lambda: busy(server) == 1, WAIT_S, f"{function}'s $LATEST to be running")
    # The server has room (--max-workers 4), the function has not: its one reserved
    # environment is $LATEST's, so version 1 waits its queue's second, then is throttled.
    assert invoke(aws, function, version, payload) == (
        429,
        "ReservedFunctionConcurrentInvocationLimitExceeded",
    )
    assert thread.is_alive(), "$LATEST ended before the throttling was seen"
    thread.join()
    assert box["result"][0] == 200


def test_a_version_runs_once_the_other_versions_invocation_ends(server: RunningServer) -> None:
    aws = lambda_client(server.url, server.credentials)
    function = "reserved-dev-nap"
    version = aws.publish_version(FunctionName=function)["Version"]
    assert invoke(aws, function, version, {"seconds": 0})[0] == 200  # its worker: idle now
    # $LATEST needs an environment: the idle one of version 1 is stopped to make room.
    first, first_box = in_background(lambda: invoke(aws, function, "$LATEST", {"seconds": 0.5}))
    wait_until(lambda: busy(server) == 1, WAIT_S, "$LATEST to be running")
    status, second = invoke(aws, function, version, {"seconds": 0})
    first.join()
    assert status == 200 and first_box["result"][0] == 200
    # One after the other, never side by side.
    assert second["started"] >= first_box["result"][1]["ended"]
