"""`provided.al2023` / `provided.al2` functions on a real server: three real Runtime API
clients (a bash curl loop, vendored awslambdaric, a C program built here) through the Invoke
API and InvokeWithResponseStream with boto3, API Gateway routes with httpx, and
`faasbox invoke local`."""

from __future__ import annotations

import base64
import io
import json
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.test_runtime_api_worker import bash_code, c_code, ric_code
from tests.support import EXAMPLES, ROOT, RunningServer, clean_env, lambda_client

# Per client: how its build is made, its handler, and the handler that fails INIT.
CLIENTS: dict[str, tuple[Any, str, str, dict[str, str]]] = {
    "bash": (bash_code, "function.handler", "missing.handler", {}),
    "awslambdaric": (ric_code, "app.handler", "missing.handler", {}),
    "c": (c_code, "echo", "echo", {"FAIL_INIT": "1"}),
}
INIT_ERRORS = {
    "bash": "Runtime.NoSuchHandler",
    "awslambdaric": "Runtime.ImportModuleError",
    "c": "Custom.InitFailed",
}
HANDLER_ERRORS = {"bash": "Function.Failed", "awslambdaric": "ValueError", "c": "Custom.Failure"}


def provided_service(folder: Path, client: str) -> Path:
    """A service whose folder is one client's build: `bootstrap` at its root, as in a zip."""
    _, handler, failing_handler, failing_env = CLIENTS[client]
    runtime = "provided.al2" if client == "c" else "provided.al2023"
    env = "".join(f"\n      {k}: '{v}'" for k, v in failing_env.items())
    limits = (
        f"""
  slow:
    handler: {handler}
    timeout: 1
  hog:
    handler: {handler}
    memorySize: 128"""
        if client == "c"
        else ""
    )
    (folder / "serverless.yml").write_text(
        f"""service: rapi-{client}
provider:
  name: aws
  runtime: {runtime}
  timeout: 10
functions:
  echo:
    handler: {handler}
    events:
      - httpApi: GET /{client}
  initfail:
    handler: {failing_handler}
    environment:
      UNUSED: 'x'{env}{limits}
"""
    )
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    build = tmp_path_factory.mktemp("builds")
    folders = [provided_service(make(build), client) for client, (make, *_) in CLIENTS.items()]
    # And a Python function, for InvokeWithResponseStream of a runtime that does not stream.
    folders.append(EXAMPLES / "hello")
    running = RunningServer(folders, tmp_path_factory.mktemp("data")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def lam(server: RunningServer) -> Any:
    return lambda_client(server.url, server.credentials)


def invoke(lam: Any, name: str, event: Any, tail: bool = False) -> tuple[dict[str, Any], Any]:
    response = lam.invoke(
        FunctionName=name, Payload=json.dumps(event), LogType="Tail" if tail else "None"
    )
    return response, json.loads(response["Payload"].read())


OUTPUT = {"bash": "handler got", "awslambdaric": "handling", "c": "handling"}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_each_client_answers_through_the_invoke_api(lam: Any, client: str) -> None:
    """The first test to invoke each function: a cold start, then a warm one."""
    logs = []
    for n in range(2):
        response, result = invoke(lam, f"rapi-{client}-dev-echo", {"n": n}, tail=True)
        assert response["StatusCode"] == 200
        assert "FunctionError" not in response
        assert result["echo"] == {"n": n}
        assert result["runtime"] == client
        logs.append(base64.b64decode(response["LogResult"]).decode())
    for log in logs:
        assert log.startswith("START RequestId: ")
        assert OUTPUT[client] in log  # the bootstrap's own output is the invocation's log
        assert "\nEND RequestId: " in log and "REPORT RequestId: " in log
    assert "Init Duration" in logs[0]
    assert "Init Duration" not in logs[1]


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_handler_error_is_an_unhandled_function_error(lam: Any, client: str) -> None:
    response, error = invoke(lam, f"rapi-{client}-dev-echo", {"fail": True})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == HANDLER_ERRORS[client]
    _, result = invoke(lam, f"rapi-{client}-dev-echo", {"after": "error"})
    assert result["echo"] == {"after": "error"}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_an_init_error_is_reported_on_the_invocation(lam: Any, client: str) -> None:
    response, error = invoke(lam, f"rapi-{client}-dev-initfail", {})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == INIT_ERRORS[client]
    assert error["errorMessage"]


def test_awslambdaric_gets_the_client_context(lam: Any) -> None:
    context = base64.b64encode(json.dumps({"custom": {"tenant": "t1"}}).encode()).decode()
    response = lam.invoke(
        FunctionName="rapi-awslambdaric-dev-echo", Payload=b'{"k": 1}', ClientContext=context
    )
    result = json.loads(response["Payload"].read())
    assert result["custom"] == {"tenant": "t1"}
    assert result["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert result["arn"].endswith(":function:rapi-awslambdaric-dev-echo")


def test_an_invoke_without_a_payload_gives_the_runtime_an_empty_object(lam: Any) -> None:
    response = lam.invoke(FunctionName="rapi-awslambdaric-dev-echo")
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read())["echo"] == {}


def test_a_bootstrap_that_exits_fails_only_that_invocation(lam: Any) -> None:
    response, error = invoke(lam, "rapi-c-dev-echo", {"exit": True})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: exit status 5")
    _, result = invoke(lam, "rapi-c-dev-echo", {"after": "crash"})
    assert result.get("echo") == {"after": "crash"}, result


def test_a_provided_function_times_out_and_its_next_invocation_is_fresh(lam: Any) -> None:
    response, error = invoke(lam, "rapi-c-dev-slow", {"nap": True}, tail=True)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    _, result = invoke(lam, "rapi-c-dev-slow", {"after": "timeout"})
    assert result["echo"] == {"after": "timeout"}


def test_a_bootstrap_over_its_memory_size_is_killed(server: RunningServer, lam: Any) -> None:
    health = httpx.get(f"{server.url}/_faasbox/health", timeout=10).json()
    if "watchdog" in json.dumps(health):
        pytest.skip("no memory cgroup here: the RSS watchdog counts the worker process only")
    response, error = invoke(lam, "rapi-c-dev-hog", {"hog": True}, tail=True)
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: signal: killed")
    log = base64.b64decode(response["LogResult"]).decode()
    assert "Memory Size: 128 MB" in log
    _, result = invoke(lam, "rapi-c-dev-hog", {"after": "oom"})
    assert result["echo"] == {"after": "oom"}


def events(response: dict[str, Any]) -> list[dict[str, Any]]:
    return list(response["EventStream"])


def test_a_streamed_response_is_read_with_invoke_with_response_stream(lam: Any) -> None:
    response = lam.invoke_with_response_stream(
        FunctionName="rapi-c-dev-echo", Payload=json.dumps({"stream": True})
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    got = events(response)
    chunks = [e["PayloadChunk"]["Payload"] for e in got if "PayloadChunk" in e]
    assert b"".join(chunks) == b"part 1\npart 2\npart 3\n"
    assert got[-1] == {"InvokeComplete": {}}


def test_a_streamed_response_is_buffered_for_invoke(lam: Any) -> None:
    response = lam.invoke(FunctionName="rapi-c-dev-echo", Payload=json.dumps({"stream": True}))
    assert "FunctionError" not in response
    assert response["Payload"].read() == b"part 1\npart 2\npart 3\n"


def test_a_stream_that_ends_in_error_trailers_completes_with_the_error(lam: Any) -> None:
    response = lam.invoke_with_response_stream(
        FunctionName="rapi-c-dev-echo",
        Payload=json.dumps({"stream": True, "stream_error": True}),
        LogType="Tail",
    )
    got = events(response)
    chunks = [e["PayloadChunk"]["Payload"] for e in got if "PayloadChunk" in e]
    assert b"".join(chunks) == b"part 1\npart 2\n"
    complete = got[-1]["InvokeComplete"]
    assert complete["ErrorCode"] == "Custom.StreamFailed"
    assert complete["ErrorDetails"] == "failed mid-stream"
    assert "REPORT RequestId" in base64.b64decode(complete["LogResult"]).decode()


@pytest.mark.parametrize("client", ["awslambdaric", "bash"])
def test_a_buffered_response_streams_as_one_chunk(lam: Any, client: str) -> None:
    response = lam.invoke_with_response_stream(
        FunctionName=f"rapi-{client}-dev-echo", Payload=json.dumps({"one": "chunk"})
    )
    got = events(response)
    assert len(got) == 2 and got[-1] == {"InvokeComplete": {}}
    assert json.loads(got[0]["PayloadChunk"]["Payload"])["echo"] == {"one": "chunk"}


def test_a_python_function_streams_its_result_as_one_chunk(lam: Any) -> None:
    response = lam.invoke_with_response_stream(
        FunctionName="hello-dev-hello", Payload=json.dumps({"name": "stream"}), LogType="Tail"
    )
    got = events(response)
    assert [list(e) for e in got] == [["PayloadChunk"], ["InvokeComplete"]]
    assert json.loads(got[0]["PayloadChunk"]["Payload"])["message"] == "Hello, stream!"
    log = base64.b64decode(got[1]["InvokeComplete"]["LogResult"]).decode()
    assert "greeting stream" in log


def test_a_failed_invocation_streams_its_error(lam: Any) -> None:
    response = lam.invoke_with_response_stream(
        FunctionName="rapi-awslambdaric-dev-echo", Payload=json.dumps({"fail": True})
    )
    [complete] = events(response)
    assert complete["InvokeComplete"]["ErrorCode"] == "ValueError"
    assert complete["InvokeComplete"]["ErrorDetails"] == "the event asked to fail"


def test_invoke_with_response_stream_errors_are_aws_shaped(lam: Any) -> None:
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke_with_response_stream(FunctionName="nope", Payload=b"{}")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke_with_response_stream(FunctionName="rapi-c-dev-echo", Payload=b"{not json")


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_each_client_serves_an_http_route(server: RunningServer, client: str) -> None:
    response = httpx.get(f"{server.url}/{client}", params={"q": "1"}, timeout=30)
    assert response.status_code == 200
    event = response.json()["echo"]
    assert event["rawPath"] == f"/{client}"
    assert event["queryStringParameters"] == {"q": "1"}
    failed = httpx.get(f"{server.url}/{client}", params={"mode": "fail"}, timeout=30)
    assert failed.status_code == 502
    assert failed.json() == {"message": "Internal server error"}


def zipped(folder: Path) -> bytes:
    """A deployment zip of `folder`, file modes kept (bootstrap must stay executable)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(folder)))
                info.external_attr = (path.stat().st_mode & 0o777 | stat.S_IFREG) << 16
                archive.writestr(info, path.read_bytes())
    return out.getvalue()


def test_a_provided_function_created_through_the_lambda_api_runs(lam: Any, tmp_path: Path) -> None:
    lam.create_function(
        FunctionName="rapi-created",
        Runtime="provided.al2023",
        Role="arn:aws:iam::000000000000:role/lambda",
        Handler="function.handler",
        Code={"ZipFile": zipped(bash_code(tmp_path))},
    )
    response, result = invoke(lam, "rapi-created", {"via": "create_function"})
    assert "FunctionError" not in response
    assert result == {"echo": {"via": "create_function"}, "runtime": "bash"}
    config = lam.get_function_configuration(FunctionName="rapi-created")
    assert config["Runtime"] == "provided.al2023"


def test_invoke_local_runs_a_provided_function(tmp_path: Path) -> None:
    folder = provided_service(c_code(tmp_path), "c")
    run = subprocess.run(
        [sys.executable, "-m", "faasbox", "invoke", "local", "-f", "echo", "--data", '{"k": 1}'],
        cwd=folder,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["echo"] == {"k": 1}
    assert ROOT.exists()
