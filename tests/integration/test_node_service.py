"""A Node.js service written for AWS (tests/services/node-api) on a real `faasbox serve`,
checked as its users would: curl-like HTTP against its routes, boto3 against the Invoke API."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import SERVICES, RunningServer, clean_env, lambda_client

NODE_API = SERVICES / "node-api"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([NODE_API], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


@pytest.fixture(scope="module")
def aws(server: RunningServer) -> Any:
    return lambda_client(server.url, server.credentials)


def invoke(aws: Any, name: str, event: Any = None) -> tuple[dict[str, Any], Any, str]:
    response = aws.invoke(
        FunctionName=f"node-api-dev-{name}",
        Payload=json.dumps(event if event is not None else {}).encode(),
        LogType="Tail",
    )
    log = base64.b64decode(response["LogResult"]).decode()
    return response, json.loads(response["Payload"].read()), log


def test_http_api_route_with_an_async_handler(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/hello", params={"name": "node"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["message"] == "hello, node"
    assert body["runtime"] == "AWS_Lambda_nodejs20.x"
    assert re.fullmatch(r"[0-9a-f-]{36}", body["requestId"])


def test_rest_route_with_a_callback_handler(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/legacy/42", json={"qty": 3}, timeout=30)
    assert response.status_code == 201
    assert response.json() == {
        "id": "42",
        "received": {"qty": 3},
        "functionName": "node-api-dev-legacy",
    }


def test_an_es_module_handler(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/esm", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"module": "esm", "path": "/esm", "platform": "linux"}


def test_a_thrown_error_through_a_route_is_a_502(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/boom", timeout=30)
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_invoke_api_result_and_logs_with_console_output(aws: Any) -> None:
    response, body, log = invoke(
        aws, "hello", {"rawPath": "/from-boto", "queryStringParameters": {"name": "boto"}}
    )
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert json.loads(body["body"])["message"] == "hello, boto"
    request_id = response["ResponseMetadata"]["RequestId"]
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert re.search(rf"Z\t{request_id}\tINFO\thello from /from-boto$", log, re.M)
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "Memory Size: 256 MB" in lines[-1]


def test_a_thrown_error_has_the_node_runtime_shape(aws: Any) -> None:
    response, error, log = invoke(aws, "boom")
    assert response["FunctionError"] == "Unhandled"
    assert set(error) == {"errorType", "errorMessage", "trace"}
    assert error["errorType"] == "WidgetError"
    assert error["errorMessage"] == "the widget broke"
    assert error["trace"][0] == "WidgetError: the widget broke"
    assert any("handler.js" in frame for frame in error["trace"][1:])
    request_id = response["ResponseMetadata"]["RequestId"]
    assert re.search(rf"\t{request_id}\tERROR\tabout to fail$", log, re.M)
    assert re.search(rf"\t{request_id}\tERROR\tInvoke Error \t\{{", log)
    # The environment stays warm after a handled failure.
    again, _, again_log = invoke(aws, "boom")
    assert again["FunctionError"] == "Unhandled" and "Init Duration" not in again_log


def test_a_timeout_is_sandbox_timedout_and_the_next_call_is_cold(aws: Any) -> None:
    response, error, log = invoke(aws, "slow")
    assert response["FunctionError"] == "Unhandled"
    request_id = response["ResponseMetadata"]["RequestId"]
    assert error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    assert "starting a long job" in log
    assert f"{request_id} Task timed out after 1.00 seconds" in log
    _, _, next_log = invoke(aws, "slow")
    assert "Init Duration" in next_log


def test_past_its_memory_the_environment_is_killed(aws: Any) -> None:
    response, error, log = invoke(aws, "hog")
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: killed" in error["errorMessage"]
    assert "holding 16 MB" in log
    report = log.splitlines()[-1]
    assert "Memory Size: 128 MB" in report
    used = int(re.search(r"Max Memory Used: (\d+) MB", report).group(1))  # type: ignore[union-attr]
    assert used >= 100


def test_an_init_error_has_the_node_runtime_shape(server: RunningServer, tmp_path: Any) -> None:
    service = tmp_path / "broken-node"
    service.mkdir()
    (service / "serverless.yml").write_text(
        "service: broken-node\nprovider:\n  name: aws\n  runtime: nodejs20.x\n"
        "functions:\n  missing:\n    handler: nowhere.handler\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "faasbox", "deploy", str(service)],
        capture_output=True,
        text=True,
        env=server.client_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    aws = lambda_client(server.url, server.credentials)
    response, error, log = _invoke_named(aws, "broken-node-dev-missing")
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"].startswith("Error: Cannot find module 'nowhere'")
    assert "trace" in error and "stackTrace" not in error
    assert "\tundefined\tERROR\tUncaught Exception \t{" in log


def _invoke_named(aws: Any, name: str) -> tuple[dict[str, Any], Any, str]:
    response = aws.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode()
    return response, json.loads(response["Payload"].read()), log


def test_invoke_local_runs_node_functions() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "faasbox",
            "invoke",
            "local",
            "-f",
            "legacy",
            "-c",
            str(NODE_API),
            "-d",
            json.dumps({"httpMethod": "POST", "pathParameters": {"id": "7"}, "body": "{}"}),
            "--log",
        ],
        capture_output=True,
        text=True,
        env=clean_env(FAASBOX_URL="http://127.0.0.1:9"),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(json.loads(done.stdout)["body"])["id"] == "7"
    assert re.search(r"\sINFO\s+legacy POST 7$", done.stderr, re.M)  # the CLI expands tabs
    assert "REPORT RequestId:" in done.stderr


def test_without_node_installed_the_error_says_so(tmp_path: Any) -> None:
    python_only = tmp_path / "bin"
    python_only.mkdir()
    (python_only / "python3").symlink_to(sys.executable)
    done = subprocess.run(
        [sys.executable, "-m", "faasbox", "invoke", "local", "-f", "hello", "-c", str(NODE_API)],
        capture_output=True,
        text=True,
        env=clean_env(FAASBOX_URL="http://127.0.0.1:9", PATH=str(python_only)),
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "nodejs20.x needs Node.js, which is not installed on this machine" in done.stderr
    assert "Runtime.InvalidEntrypoint" in done.stdout + done.stderr
    assert "node is not installed" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_boto3_creates_and_updates_a_node_function_from_a_zip(aws: Any) -> None:
    def package(greeting: str) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr(
                "index.mjs",
                f"export const handler = async (event) => ({{ said: '{greeting}', ...event }});\n",
            )
        return buf.getvalue()

    created = aws.create_function(
        FunctionName="zipped-node",
        Runtime="nodejs20.x",
        Role="arn:aws:iam::000000000000:role/lambda",
        Handler="index.handler",
        Code={"ZipFile": package("v1")},
    )
    assert created["Runtime"] == "nodejs20.x" and created["Handler"] == "index.handler"
    aws.get_waiter("function_active_v2").wait(FunctionName="zipped-node")
    first = aws.invoke(FunctionName="zipped-node", Payload=b'{"n": 1}')
    assert json.loads(first["Payload"].read()) == {"said": "v1", "n": 1}
    aws.update_function_code(FunctionName="zipped-node", ZipFile=package("v2"))
    aws.get_waiter("function_updated_v2").wait(FunctionName="zipped-node")
    second = aws.invoke(FunctionName="zipped-node", Payload=b"{}")
    assert json.loads(second["Payload"].read()) == {"said": "v2"}
    # Lambda takes any handler here; its runtime says what is wrong with it.
    aws.update_function_configuration(FunctionName="zipped-node", Handler="index")
    aws.get_waiter("function_updated_v2").wait(FunctionName="zipped-node")
    bad = aws.invoke(FunctionName="zipped-node", Payload=b"{}")
    assert bad["FunctionError"] == "Unhandled"
    error = json.loads(bad["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == (
        "Runtime.MalformedHandlerName",
        "Bad handler",
    )
    aws.delete_function(FunctionName="zipped-node")
