"""WebAssembly functions on a real server: the wasm-grayscale example behind its API Gateway
route, the Lambda Invoke API with boto3, and a runaway loop next to a Python function."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.functional.test_wasm import ECHO_WAT, ENV_WAT, LOOP_WAT, write_service
from tests.support import EXAMPLES, RunningServer, lambda_client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    services = tmp_path_factory.mktemp("services")
    write_service(
        services / "wasmtest",
        {
            "echo": {"handler": "echo.wasm"},
            "env": {
                "handler": "env.wasm",
                "events": [
                    {"httpApi": {"path": "/env/{rest+}", "method": "post"}},
                    {"http": {"path": "/rest-env", "method": "get"}},
                ],
            },
            "loop": {
                "handler": "loop.wasm",
                "timeout": 2,
                "events": [{"httpApi": {"path": "/loop", "method": "get"}}],
            },
        },
        {"echo.wasm": ECHO_WAT, "env.wasm": ENV_WAT, "loop.wasm": LOOP_WAT},
    )
    running = RunningServer(
        [EXAMPLES / "wasm-grayscale", EXAMPLES / "hello", services / "wasmtest"],
        tmp_path_factory.mktemp("data"),
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def aws(server: RunningServer) -> Any:
    return lambda_client(server.url, server.credentials)


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A real JPEG (640x480): smooth gradients, a few shapes and some noise, by Pillow."""
    from PIL import ImageDraw

    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:480, 0:640]
    rgb = np.stack([x * 255 // 639, y * 255 // 479, (x + y) * 255 // 1118], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((100, 80, 300, 280), fill=(220, 40, 30))
    draw.rectangle((380, 200, 600, 420), fill=(20, 160, 240))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def env_dump(body: bytes) -> tuple[dict[str, str], bytes]:
    _, environ, stdin = body.split(b"\x01")
    return dict(item.split("=", 1) for item in environ.decode().split("\0")[:-1]), stdin


def test_grayscale_route_returns_pillows_gray_levels(http: httpx.Client, photo: bytes) -> None:
    response = http.post("/wasm/grayscale", content=photo, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    gray = Image.open(io.BytesIO(response.content))
    assert gray.format == "PNG" and gray.mode == "L" and gray.size == (640, 480)
    expected = np.asarray(Image.open(io.BytesIO(photo)).convert("L"), dtype=np.int16)
    difference = np.abs(np.asarray(gray, dtype=np.int16) - expected)
    assert difference.max() <= 2, f"{(difference > 0).mean():.2%} of pixels differ"


def test_grayscale_of_garbage_is_502_with_the_reason_in_the_log(
    http: httpx.Client, aws: Any
) -> None:
    response = http.post(
        "/wasm/grayscale", content=b"not an image", headers={"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}
    direct = aws.invoke(
        FunctionName="wasm-grayscale-dev-grayscale-wasm", Payload=b'"text"', LogType="Tail"
    )
    assert direct["FunctionError"] == "Unhandled"
    error = json.loads(direct["Payload"].read())
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: exit status 1")
    log = base64.b64decode(direct["LogResult"]).decode()
    assert "grayscale: " in log and "exit status 1" in log and "REPORT RequestId" in log


def test_invoke_api_passes_the_payload_on_stdin_and_returns_stdout(aws: Any) -> None:
    payload = json.dumps({"numbers": list(range(1000)), "text": "h\u00e9llo"}).encode()
    response = aws.invoke(FunctionName="wasmtest-dev-echo", Payload=payload, LogType="Tail")
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["Payload"].read() == payload
    log = base64.b64decode(response["LogResult"]).decode()
    assert log.startswith("START RequestId: ") and "\nEND RequestId: " in log


def test_http_api_route_request_as_cgi_variables(http: httpx.Client) -> None:
    response = http.post(
        "/env/a/b?x=1&y=two",
        content=b"\x89binary\x00body",
        headers={"Content-Type": "application/octet-stream", "X-Trace-Id": "abc"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    env, stdin = env_dump(response.content)
    assert stdin == b"\x89binary\x00body"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/env/a/b"
    assert env["QUERY_STRING"] == "x=1&y=two"
    assert env["CONTENT_TYPE"] == "application/octet-stream"
    assert env["CONTENT_LENGTH"] == str(len(stdin))
    assert env["HTTP_X_TRACE_ID"] == "abc"
    assert env["HTTP_HOST"].startswith("127.0.0.1")


def test_rest_api_route_rebuilds_the_query_string(http: httpx.Client) -> None:
    response = http.get("/rest-env?tag=a&tag=b%20c", headers={"Accept": "text/plain"})
    assert response.status_code == 200, response.text
    env, stdin = env_dump(response.content)
    assert stdin == b""
    assert env["REQUEST_METHOD"] == "GET" and env["PATH_INFO"] == "/rest-env"
    assert env["QUERY_STRING"] == "tag=a&tag=b%20c"
    assert env["HTTP_ACCEPT"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "0"


def test_python_function_answers_while_a_wasm_loop_runs(
    server: RunningServer, http: httpx.Client, aws: Any
) -> None:
    looped: dict[str, Any] = {}

    def run_loop() -> None:
        t0 = time.perf_counter()
        looped["response"] = aws.invoke(FunctionName="wasmtest-dev-loop", LogType="Tail")
        looped["elapsed"] = time.perf_counter() - t0

    def run_route() -> None:
        looped["route"] = http.get("/loop").status_code

    threads = [threading.Thread(target=run_loop), threading.Thread(target=run_route)]
    for thread in threads:
        thread.start()
    latencies = []
    # Invocations one after another for as long as the loop runs (2 s, its timeout).
    while threads[0].is_alive():
        t0 = time.perf_counter()
        hello = aws.invoke(FunctionName="hello-dev-hello", Payload=b'{"name": "x"}')
        latencies.append(time.perf_counter() - t0)
        answer = json.loads(hello["Payload"].read())
        assert answer.get("message") == "Hello, x!", answer
    for thread in threads:
        thread.join()
    assert len(latencies) >= 3
    # The loop does not hold the server: a warm invocation takes milliseconds, and a loop
    # that held the event loop would make each wait for the 2 s timeout.
    assert sorted(latencies)[len(latencies) // 2] < 1.0

    response = looped["response"]
    error = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in error["errorMessage"]
    report = base64.b64decode(response["LogResult"]).decode().splitlines()[-1]
    duration_ms = float(report.split("Duration: ")[1].split(" ms")[0])
    # Stopped at its timeout: never early, and late by less than a loaded machine's lag.
    assert 2000 <= duration_ms < 2000 + 1000
    assert looped["elapsed"] < 2.0 + 3.0
    assert looped["route"] == 502
    assert server.alive()


def test_module_compiled_once_is_served_from_the_disk_cache(server: RunningServer) -> None:
    cached = list((server.data_dir / "wasm-cache").glob("*.cwasm"))
    assert cached, "compiled modules are kept under <data dir>/wasm-cache"
    assert all(p.name.count("-") >= 2 and len(p.name.split("-")[0]) == 64 for p in cached)


def test_no_output_files_are_left_behind(server: RunningServer) -> None:
    run = Path(server.data_dir) / "run"
    assert not list(run.glob("wasm-*")) if run.exists() else True
