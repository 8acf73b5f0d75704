"""API Gateway routes of a real server: a service written for AWS, called with httpx and curl."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEvent,
    APIGatewayProxyEventV2,
)
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)
from PIL import Image

from tests.support import EXAMPLES, ROOT, RunningServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([EXAMPLES / "webapi"], tmp_path_factory.mktemp("data")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real JPEG: a gradient with noise, encoded by Pillow."""
    import random

    rng = random.Random(7)
    image = Image.new("RGB", (320, 240))
    image.putdata(
        [
            ((x * 255) // 320, (y * 255) // 240, rng.randrange(256))
            for y in range(240)
            for x in range(320)
        ]
    )
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    image.save(path, "JPEG", quality=90)
    return path


def function_log(server: RunningServer, name: str) -> str:
    env = {
        **os.environ,
        "FAASBOX_URL": server.url,
        "FAASBOX_HOME": str(server.data_dir),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "faasbox", "logs", "-f", name, "-n", "5"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rest_event_has_aws_fields(http: httpx.Client) -> None:
    started = time.time() * 1000
    response = http.get(
        "/rest/echo/a/b?x=1&x=2&y=3", headers={"X-Custom": "v1", "User-Agent": "tester/1"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-amzn-requestid"]
    event = json.loads(response.text)
    APIGatewayProxyEventModel.model_validate(event)
    typed = APIGatewayProxyEvent(event)
    assert typed.resource == "/rest/echo/{proxy+}"
    assert typed.path == "/rest/echo/a/b"
    assert typed.http_method == "GET"
    assert typed.path_parameters == {"proxy": "a/b"}
    assert typed.query_string_parameters == {"x": "2", "y": "3"}
    assert typed.multi_value_query_string_parameters == {"x": ["1", "2"], "y": ["3"]}
    assert typed.headers["X-Custom"] == "v1"
    assert event["multiValueHeaders"]["X-Custom"] == ["v1"]
    assert typed.body is None and typed.is_base64_encoded is False
    context = event["requestContext"]
    assert context["stage"] == "dev"
    assert context["resourcePath"] == "/rest/echo/{proxy+}"
    assert context["path"] == "/dev/rest/echo/a/b"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "tester/1"
    assert context["requestId"] == response.headers["x-amzn-requestid"]
    assert started - 1000 <= context["requestTimeEpoch"] <= time.time() * 1000 + 1000
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["requestTime"])
    assert event["stageVariables"] is None


def test_http_api_event_has_aws_fields(http: httpx.Client) -> None:
    response = http.get(
        "/v2/echo/42?a=1&a=2&b=", headers={"Cookie": "c1=v1; c2=v2", "X-Custom": "v2"}
    )
    assert response.status_code == 200
    assert response.headers["apigw-requestid"]
    event = json.loads(response.text)
    APIGatewayProxyEventV2Model.model_validate(event)
    typed = APIGatewayProxyEventV2(event)
    assert event["version"] == "2.0"
    assert typed.route_key == "GET /v2/echo/{id}"
    assert typed.raw_path == "/v2/echo/42"
    assert typed.raw_query_string == "a=1&a=2&b="
    assert typed.query_string_parameters == {"a": "1,2", "b": ""}
    assert typed.path_parameters == {"id": "42"}
    assert typed.cookies == ["c1=v1", "c2=v2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-custom"] == "v2"
    context = event["requestContext"]
    assert context["http"]["method"] == "GET"
    assert context["http"]["path"] == "/v2/echo/42"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["stage"] == "$default"
    assert context["routeKey"] == "GET /v2/echo/{id}"
    assert "body" not in event and event["isBase64Encoded"] is False


def test_json_bodies_arrive_as_text(http: httpx.Client) -> None:
    rest = json.loads(http.post("/rest/echo", json={"k": "v"}).text)
    assert json.loads(rest["body"]) == {"k": "v"} and rest["isBase64Encoded"] is False
    v2 = json.loads(http.post("/v2/echo", json={"k": "v"}).text)
    APIGatewayProxyEventV2Model.model_validate(v2)
    assert json.loads(v2["body"]) == {"k": "v"} and v2["isBase64Encoded"] is False


def test_jpeg_round_trips_byte_identical_with_curl(
    server: RunningServer, photo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "back.jpg"
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "--data-binary",
            f"@{photo}",
            "-H",
            "content-type: image/jpeg",
            f"{server.url}/rest/binary",
            "-o",
            str(out),
            "-w",
            "%{http_code} %{content_type}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout == "200 image/jpeg", done.stderr
    assert out.read_bytes() == photo.read_bytes()


def test_binary_round_trips_through_the_http_api(http: httpx.Client) -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (64, 32), (10, 200, 30, 128)).save(buf, "PNG")
    response = http.post(
        "/v2/binary", content=buf.getvalue(), headers={"content-type": "image/png"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == buf.getvalue()


def test_binary_media_types_decide_base64_for_rest(http: httpx.Client) -> None:
    event = json.loads(
        http.post(
            "/rest/echo", content=b"\x89PNG\r\n\x1a\n...", headers={"content-type": "image/png"}
        ).text
    )
    assert event["isBase64Encoded"] is True
    text = json.loads(
        http.post("/rest/echo", content=b"plain words", headers={"content-type": "text/plain"}).text
    )
    assert text["isBase64Encoded"] is False and text["body"] == "plain words"


def test_static_segment_wins_over_parameter(http: httpx.Client) -> None:
    special = http.get("/rest/items/special")
    assert special.headers["x-item"] == "special"
    assert json.loads(special.text)["resource"] == "/rest/items/special"
    param = http.get("/rest/items/7?color=red")
    assert param.headers["x-item"] == "7"
    assert json.loads(param.text) == {
        "id": "7",
        "query": {"color": "red"},
        "resource": "/rest/items/{id}",
    }


def test_multi_value_response_headers(http: httpx.Client) -> None:
    response = http.get("/rest/items/7")
    assert response.headers.get_list("x-multi") == ["one", "two"]


def test_http_api_shortcut_response(http: httpx.Client) -> None:
    response = http.get("/v2/plain")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world", "path": "/v2/plain"}


def test_cookies_in_and_out(http: httpx.Client) -> None:
    response = http.get("/v2/cookies", headers={"Cookie": "session=abc"})
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert response.json() == {"received": ["session=abc"]}


def test_private_route_needs_the_api_key(server: RunningServer, http: httpx.Client) -> None:
    output = "".join(server.output)
    match = re.search(r"api key webapi-demo-key: (\S+)", output)
    assert match, output
    key = match.group(1)
    denied = http.get("/rest/private")
    assert denied.status_code == 403 and denied.json() == {"message": "Forbidden"}
    assert http.get("/rest/private", headers={"x-api-key": "wrong"}).status_code == 403
    allowed = http.get("/rest/private", headers={"x-api-key": key})
    assert allowed.status_code == 200 and allowed.text == "the secret"
    # The key is kept only as a hash.
    assert key.encode() not in (server.data_dir / "registry.sqlite3").read_bytes()


def test_rest_cors_preflight_and_response(http: httpx.Client) -> None:
    preflight = http.options(
        "/rest/items/7",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "X-Api-Key" in preflight.headers["access-control-allow-headers"]
    response = http.get("/rest/items/7", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "*"


def test_http_api_cors_from_provider(http: httpx.Client) -> None:
    preflight = http.options(
        "/v2/plain",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert http.get("/v2/plain").headers["access-control-allow-origin"] == "*"


def test_malformed_response_is_502_with_reason_in_log(
    server: RunningServer, http: httpx.Client
) -> None:
    for path in ("/rest/malformed", "/v2/malformed"):
        response = http.get(path)
        assert response.status_code == 502
        assert response.json() == {"message": "Internal server error"}
    assert "Malformed Lambda proxy response" in function_log(server, "webapi-dev-malformed")


def test_handler_error_is_502(server: RunningServer, http: httpx.Client) -> None:
    for path in ("/rest/fails", "/v2/fails"):
        response = http.get(path)
        assert response.status_code == 502
        assert response.json() == {"message": "Internal server error"}
    log = function_log(server, "webapi-dev-fails")
    assert "ValueError: this route always fails" in log
    assert "customer function error: ValueError" in log


def test_unmatched_route_is_not_found(http: httpx.Client) -> None:
    response = http.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_body_over_6_mb_is_413_before_any_function_runs(
    server: RunningServer, http: httpx.Client
) -> None:
    before = function_log(server, "webapi-dev-echo").count("START RequestId")
    response = http.post(
        "/rest/echo", content=b"x" * (6 * 1024 * 1024 + 1), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 413
    assert function_log(server, "webapi-dev-echo").count("START RequestId") == before


def test_slow_and_broken_clients_do_not_block_others(
    server: RunningServer, http: httpx.Client
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    stalled = [socket.create_connection((host, int(port))) for _ in range(20)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /rest/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        garbage = socket.create_connection((host, int(port)))
        garbage.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
        garbage.settimeout(5)
        assert garbage.recv(100).startswith(b"HTTP/1.1 400")
        garbage.close()
        assert http.get("/v2/plain").status_code == 200
    finally:
        for sock in stalled:
            sock.close()
    assert server.alive()


def test_keep_alive_requests_do_not_stall(http: httpx.Client) -> None:
    """With Nagle's algorithm on, each small keep-alive response waits ~40 ms for an ACK."""
    http.get("/v2/plain")
    durations = []
    for _ in range(15):
        started = time.perf_counter()
        assert http.post("/v2/echo", content=b"{}").status_code == 200
        durations.append(time.perf_counter() - started)
    assert statistics.median(durations) < 0.035


def test_rest_only_server_answers_missing_authentication_token(tmp_path: Path) -> None:
    service = tmp_path / "svc"
    service.mkdir()
    (service / "serverless.yml").write_text(
        "service: restonly\nprovider:\n  name: aws\nfunctions:\n  f:\n    handler: h.f\n"
        "    events:\n      - http: GET /here\n"
    )
    (service / "h.py").write_text("def f(e, c):\n    return {'statusCode': 200, 'body': 'ok'}\n")
    running = RunningServer([service], tmp_path / "data").start()
    try:
        assert httpx.get(f"{running.url}/here").text == "ok"
        missing = httpx.get(f"{running.url}/elsewhere")
        assert missing.status_code == 403
        assert missing.json() == {"message": "Missing Authentication Token"}
    finally:
        running.stop()


def test_forwarded_for_from_a_client_is_not_trusted(http: httpx.Client) -> None:
    event = json.loads(http.get("/v2/echo/1", headers={"X-Forwarded-For": "203.0.113.9"}).text)
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_raw_path_is_as_sent(http: httpx.Client) -> None:
    event = json.loads(http.get("/v2/echo/a%20b").text)
    assert event["rawPath"] == "/v2/echo/a%20b"
    assert event["pathParameters"] == {"id": "a b"}
