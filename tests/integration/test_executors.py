"""One invoker over every executor, on a real server: WebAssembly instances and Python workers
share one global worker budget (its cap on workers running at once, and on live ones, idle
ones too), show in /health and the management API alike, and a redeployed WebAssembly
function is drained as a Python one is."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import wasmtime

from tests.functional.test_wasm import ECHO_WAT, sleep_wat, write_service
from tests.support import RunningServer, lambda_client, signed_request, wait_until

PYTHON_CODE = """
import time


def hello(event, context):
    return {"hello": event.get("name", "world")}


def nap(event, context):
    time.sleep(event["seconds"])
    return "rested"
"""
WAIT_S = 30.0  # a bound for a loaded machine on what the server does in the background
SLEEP_S = 5.0  # a wasm invocation kept in flight; well over the queue timeout of 1 s


def service(folder: Path) -> Path:
    write_service(
        folder,
        {
            "sleepy": {"handler": "sleepy.wasm", "timeout": 30},
            "echo": {"handler": "echo.wasm"},
            "hello": {"handler": "py.hello", "runtime": "python3.11"},
            "nap": {"handler": "py.nap", "runtime": "python3.11", "timeout": 30},
        },
        {"sleepy.wasm": sleep_wat(SLEEP_S), "echo.wasm": ECHO_WAT},
    )
    (folder / "py.py").write_text(PYTHON_CODE)
    return folder


def mixed_server(
    tmp_path_factory: pytest.TempPathFactory, *serve_args: str
) -> Iterator[RunningServer]:
    """The mixed service on a server of its own, started with `serve_args`."""
    folder = service(tmp_path_factory.mktemp("services") / "mixed")
    running = RunningServer([folder], tmp_path_factory.mktemp("data"), *serve_args)
    yield running.start()
    running.stop()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with room for one live worker in all."""
    yield from mixed_server(
        tmp_path_factory, "--max-workers", "1", "--max-live-workers", "1", "--queue-timeout", "1"
    )


@pytest.fixture(scope="module")
def one_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server that runs one worker at a time, but keeps as many live as memory allows."""
    yield from mixed_server(tmp_path_factory, "--max-workers", "1", "--queue-timeout", "3")


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from mixed_server(tmp_path_factory, "--max-workers", "4")


def health(server: RunningServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/_faasbox/health", timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def workers_of(server: RunningServer, name: str) -> list[dict[str, Any]]:
    response = signed_request("GET", f"{server.url}/_faasbox/functions/{name}", server.credentials)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["workers"]
    return found


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=call()))
    thread.start()
    return thread, box


def invoke(aws: Any, name: str, payload: Any) -> tuple[int, Any, str]:
    """(status code, payload, log) of a RequestResponse Invoke: the payload JSON-decoded
    when it is JSON (a wasm program may answer any bytes); for a 429, its error code."""
    try:
        response = aws.invoke(FunctionName=name, Payload=json.dumps(payload), LogType="Tail")
    except aws.exceptions.TooManyRequestsException as e:
        return 429, e.response["Error"]["Code"], ""
    log = base64.b64decode(response.get("LogResult", "")).decode()
    body = response["Payload"].read()
    try:
        return response["StatusCode"], json.loads(body), log
    except ValueError:
        return response["StatusCode"], body, log


def test_a_running_wasm_instance_holds_the_only_slot_and_shows_in_health(
    capped: RunningServer,
) -> None:
    aws = lambda_client(capped.url, capped.credentials)
    assert health(capped)["maxWorkers"] == 1
    thread, box = in_background(lambda: invoke(aws, "mixed-dev-sleepy", ""))
    wait_until(
        lambda: health(capped)["workers"] == 1, WAIT_S, "the wasm instance to show in /health"
    )
    shown = health(capped)
    assert shown["busy"] == 1
    assert shown["executors"]["wasm"]["workers"] == 1
    # Without --ray, every executor runs here: one node, with every live environment.
    [node] = shown["nodes"]
    assert node["id"] == "local" and node["workers"] == 1 and node["address"]
    [instance] = workers_of(capped, "mixed-dev-sleepy")
    assert instance["kind"] == "wasm" and instance["busy"] and instance["pid"] is None

    # The budget is full: a Python invocation waits its queue timeout, then is throttled,
    # as it would be behind another Python invocation.
    assert invoke(aws, "mixed-dev-hello", {"name": "x"}) == (429, "TooManyRequestsException", "")
    assert thread.is_alive(), "the wasm instance ended before the throttling was seen"

    thread.join()
    assert box["result"][:2] == (200, b"woke")
    wait_until(lambda: health(capped)["workers"] == 0, WAIT_S, "the wasm slot to be given back")
    status, payload, _ = invoke(aws, "mixed-dev-hello", {"name": "x"})
    assert (status, payload) == (200, {"hello": "x"})


def test_a_busy_python_worker_throttles_a_wasm_invocation_at_the_cap(
    capped: RunningServer,
) -> None:
    aws = lambda_client(capped.url, capped.credentials)
    thread, box = in_background(lambda: invoke(aws, "mixed-dev-nap", {"seconds": SLEEP_S}))
    wait_until(
        lambda: any(w["busy"] for w in workers_of(capped, "mixed-dev-nap")),
        WAIT_S,
        "the Python worker to be busy",
    )
    assert invoke(aws, "mixed-dev-echo", "x") == (429, "TooManyRequestsException", "")
    thread.join()
    assert box["result"][:2] == (200, "rested")


def test_at_the_cap_wasm_takes_the_slot_of_an_idle_python_worker(capped: RunningServer) -> None:
    aws = lambda_client(capped.url, capped.credentials)
    assert invoke(aws, "mixed-dev-hello", {"name": "a"})[:2] == (200, {"hello": "a"})
    assert [w["busy"] for w in workers_of(capped, "mixed-dev-hello")] == [False]
    # The only slot is the idle Python worker's: the wasm invocation evicts it (LRU).
    status, payload, _ = invoke(aws, "mixed-dev-echo", "hi")
    assert (status, payload) == (200, "hi")
    wait_until(
        lambda: workers_of(capped, "mixed-dev-hello") == [], WAIT_S, "the idle worker to stop"
    )
    status, payload, log = invoke(aws, "mixed-dev-hello", {"name": "b"})
    assert (status, payload) == (200, {"hello": "b"})
    assert "Init Duration" in log  # a cold start: its warm worker was given up


def wasm_zip(wat: str, name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, wasmtime.wat2wasm(wat))
    return out.getvalue()


def test_a_redeployed_wasm_function_runs_its_new_code_at_once_and_old_calls_finish(
    roomy: RunningServer,
) -> None:
    aws = lambda_client(roomy.url, roomy.credentials)
    name = "mixed-dev-sleepy"
    thread, box = in_background(lambda: invoke(aws, name, ""))
    wait_until(lambda: len(workers_of(roomy, name)) == 1, WAIT_S, "the old code to be running")

    aws.update_function_code(FunctionName=name, ZipFile=wasm_zip(ECHO_WAT, "sleepy.wasm"))
    t0 = time.monotonic()
    status, payload, _ = invoke(aws, name, "new code")
    assert (status, payload) == (200, "new code")
    assert time.monotonic() - t0 < SLEEP_S / 2  # it did not wait for the old instance
    assert thread.is_alive(), "the old invocation ended before the new code was seen"

    thread.join()
    assert box["result"][:2] == (200, b"woke")  # the old code, to its end
    # The old code's instance is gone, its slot given back, and nothing of it lingers.
    wait_until(
        lambda: health(roomy)["executors"]["wasm"]["workers"] == 0, WAIT_S, "old slots to go"
    )
    assert workers_of(roomy, name) == []
    assert invoke(aws, name, "again")[:2] == (200, "again")


def test_deleting_a_published_version_stops_its_workers(roomy: RunningServer) -> None:
    aws = lambda_client(roomy.url, roomy.credentials)
    name = "mixed-dev-hello"
    version = aws.publish_version(FunctionName=name)["Version"]
    response = aws.invoke(FunctionName=name, Qualifier=version, Payload=b'{"name": "v"}')
    assert json.loads(response["Payload"].read()) == {"hello": "v"}
    assert [w["version"] for w in workers_of(roomy, name)] == [version]

    aws.delete_function(FunctionName=name, Qualifier=version)
    wait_until(
        lambda: all(w["version"] != version for w in workers_of(roomy, name)),
        WAIT_S,
        "the deleted version's worker to stop",
    )
    assert invoke(aws, name, {"name": "latest"})[:2] == (200, {"hello": "latest"})


def test_idle_workers_stay_warm_while_other_functions_run_one_at_a_time(
    one_running: RunningServer,
) -> None:
    aws = lambda_client(one_running.url, one_running.credentials)
    shown = health(one_running)
    assert shown["maxWorkers"] == 1 and shown["maxLiveWorkers"] >= 2
    for name, payload in [("hello", {"name": "a"}), ("nap", {"seconds": 0}), ("echo", "hi")]:
        assert invoke(aws, f"mixed-dev-{name}", payload)[0] == 200
    # Three functions ran in turn, one at a time: the Python workers of the first two are
    # still live, so both answer warm (no Init Duration), with no start in between.
    for name, payload in [("hello", {"name": "b"}), ("nap", {"seconds": 0})]:
        status, _, log = invoke(aws, f"mixed-dev-{name}", payload)
        assert status == 200 and "Init Duration" not in log, log
        assert [w["invocations"] for w in workers_of(one_running, f"mixed-dev-{name}")] == [2]
    shown = health(one_running)
    assert (shown["workers"], shown["busy"]) == (2, 0)


def test_at_the_concurrency_cap_a_warm_worker_waits_for_the_running_one(
    one_running: RunningServer,
) -> None:
    aws = lambda_client(one_running.url, one_running.credentials)
    assert invoke(aws, "mixed-dev-hello", {"name": "a"})[0] == 200
    assert invoke(aws, "mixed-dev-nap", {"seconds": 0})[0] == 200
    # One worker runs for longer than the queue waits: the other function's warm worker may
    # not run beside it, so its invocation is throttled, as past Lambda's account concurrency.
    thread, box = in_background(lambda: invoke(aws, "mixed-dev-nap", {"seconds": 2 * SLEEP_S}))
    wait_until(lambda: health(one_running)["busy"] == 1, WAIT_S, "the nap to be running")
    assert invoke(aws, "mixed-dev-hello", {"name": "b"}) == (429, "TooManyRequestsException", "")
    assert thread.is_alive(), "the nap ended before the throttling was seen"
    thread.join()
    assert box["result"][:2] == (200, "rested")
    # One that runs for less than the queue waits: the warm worker serves as soon as it ends.
    thread, box = in_background(lambda: invoke(aws, "mixed-dev-nap", {"seconds": 1.0}))
    wait_until(lambda: health(one_running)["busy"] == 1, WAIT_S, "the short nap to be running")
    status, payload, log = invoke(aws, "mixed-dev-hello", {"name": "c"})
    assert (status, payload) == (200, {"hello": "c"}) and "Init Duration" not in log
    thread.join()
    assert box["result"][:2] == (200, "rested")


def test_a_function_flooded_at_the_concurrency_cap_takes_turns_with_the_others(
    one_running: RunningServer,
) -> None:
    aws = lambda_client(one_running.url, one_running.credentials)
    assert invoke(aws, "mixed-dev-hello", {"name": "a"})[0] == 200
    stop = threading.Event()
    naps: list[tuple[int, Any]] = []

    def flood() -> None:
        client = lambda_client(one_running.url, one_running.credentials)
        while not stop.is_set():
            naps.append(invoke(client, "mixed-dev-nap", {"seconds": 0.3})[:2])

    callers = [threading.Thread(target=flood) for _ in range(3)]
    for caller in callers:
        caller.start()
    try:
        wait_until(lambda: len(naps) >= 3, WAIT_S, "the flood to be running")
        # Three callers on one running slot: the nap's queue never empties from here on.
        # Each function waiting gets its turn, a Python worker's and a wasm instance's
        # alike, rather than waiting out its queue (3 s) behind the nap's next callers.
        assert invoke(aws, "mixed-dev-hello", {"name": "b"})[:2] == (200, {"hello": "b"})
        assert invoke(aws, "mixed-dev-echo", "hi")[:2] == (200, "hi")
        assert all(caller.is_alive() for caller in callers)
    finally:
        stop.set()
        for caller in callers:
            caller.join()
    # The nap's own callers waited their turns too, each well within its queue's 3 s.
    assert naps and set(naps) == {(200, "rested")}
