"""The Lambda Invoke API of a real server, through boto3 and plain (signed) HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from tests.support import EXAMPLES, SERVICES, RunningServer, lambda_client, signed_request


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        [EXAMPLES / "hello", EXAMPLES / "limits", SERVICES / "probe"],
        tmp_path_factory.mktemp("data"),
    ).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


@pytest.fixture(scope="module")
def aws(server: RunningServer) -> Any:
    return lambda_client(server.url, server.credentials)


def test_request_response_with_log_tail(aws: Any) -> None:
    response = aws.invoke(
        FunctionName="hello-dev-hello", Payload=b'{"name": "boto"}', LogType="Tail"
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    result = json.loads(response["Payload"].read())
    assert result["message"] == "Hello, boto!"
    log = base64.b64decode(response["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert result["requestId"] == request_id
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert "greeting boto" in log
    assert f"END RequestId: {request_id}" in log
    assert f"REPORT RequestId: {request_id}\tDuration: " in log


def test_short_serverless_key_resolves_to_the_function(aws: Any) -> None:
    response = aws.invoke(FunctionName="hello", Payload=b'{"name": "short"}')
    assert json.loads(response["Payload"].read())["function"] == "hello-dev-hello"


def test_event_invocation_is_accepted_and_runs(aws: Any, server: RunningServer) -> None:
    response = aws.invoke(
        FunctionName="hello-dev-hello", InvocationType="Event", Payload=b'{"name": "later"}'
    )
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    # The logs API long-polls (`wait`): each request returns as soon as a record is added.
    deadline = time.monotonic() + 60
    record = None
    since = 0
    while record is None and time.monotonic() < deadline:
        logs = signed_request(
            "GET",
            f"{server.url}/_faasbox/functions/hello-dev-hello/logs",
            server.credentials,
            params={"since": since, "limit": 0, "wait": 10},
            timeout=30,
        ).json()
        since = max([since, *(r["seq"] for r in logs["records"])])
        record = next((r for r in logs["records"] if r["request_id"] == request_id), None)
    assert record is not None, "the Event invocation never ran"
    assert "greeting later" in record["log"]


def test_dry_run_checks_the_request_and_runs_nothing(aws: Any, server: RunningServer) -> None:
    logs_url = f"{server.url}/_faasbox/functions/hello-dev-hello/logs"
    before = signed_request("GET", logs_url, server.credentials, params={"limit": 1000}).json()
    response = aws.invoke(
        FunctionName="hello-dev-hello", InvocationType="DryRun", Payload=b'{"name": "dry"}'
    )
    assert response["StatusCode"] == 204
    assert response["Payload"].read() == b""
    assert "FunctionError" not in response
    # Nothing ran: no new invocation in the function's logs.
    after = signed_request("GET", logs_url, server.credentials, params={"limit": 1000}).json()
    assert after["records"] == before["records"]
    # The request is still checked: a DryRun of a missing function is a 404, as on AWS.
    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        aws.invoke(FunctionName="nope", InvocationType="DryRun")


def test_missing_function_is_resource_not_found(aws: Any) -> None:
    with pytest.raises(aws.exceptions.ResourceNotFoundException) as info:
        aws.invoke(FunctionName="nope", Payload=b"{}")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "Function not found" in info.value.response["Error"]["Message"]


def test_handler_error_is_unhandled_function_error(aws: Any) -> None:
    response = aws.invoke(FunctionName="limits-dev-raising", Payload=b"{}")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "OddError"
    assert error["errorMessage"] == "something odd happened"
    assert isinstance(error["stackTrace"], list) and error["stackTrace"]


def test_invalid_json_is_invalid_request_content(aws: Any) -> None:
    with pytest.raises(aws.exceptions.InvalidRequestContentException) as info:
        aws.invoke(FunctionName="hello-dev-hello", Payload=b"{not json")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Could not parse request body into json" in info.value.response["Error"]["Message"]


def test_oversized_payload_is_request_too_large(server: RunningServer) -> None:
    url = f"{server.url}/2015-03-31/functions/hello-dev-hello/invocations"
    big = b'"' + b"x" * (6 * 1024 * 1024) + b'"'
    response = signed_request("POST", url, server.credentials, content=big)
    assert response.status_code == 413
    assert response.headers["x-amzn-errortype"] == "RequestTooLargeException"
    big_event = b'"' + b"x" * (300 * 1024) + b'"'
    response = signed_request(
        "POST",
        url,
        server.credentials,
        content=big_event,
        headers={"X-Amz-Invocation-Type": "Event"},
    )
    assert response.status_code == 413


def test_large_payload_under_the_limit_round_trips(aws: Any) -> None:
    data = "y" * (5 * 1024 * 1024)
    response = aws.invoke(FunctionName="probe-dev-echo", Payload=json.dumps({"d": data}))
    assert json.loads(response["Payload"].read())["d"] == data


def test_throttling_is_too_many_requests(server: RunningServer) -> None:
    url = f"{server.url}/2015-03-31/functions/probe-dev-slow/invocations"
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(signed_request, "POST", url, server.credentials, content=b'{"seconds": 3}')
            for _ in range(3)
        ]
        statuses = sorted(f.result().status_code for f in futures)
        throttled = next(f.result() for f in futures if f.result().status_code == 429)
    assert statuses == [200, 429, 429]
    assert throttled.headers["x-amzn-errortype"] == "TooManyRequestsException"
    assert throttled.json()["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


@pytest.mark.parametrize(
    ("name", "error_type"),
    [
        ("limits-dev-sleepy", "Sandbox.Timedout"),
        ("limits-dev-hungry", "Runtime.ExitError"),
        ("limits-dev-suicidal", "Runtime.ExitError"),
        ("limits-dev-raising", "OddError"),
    ],
)
def test_limits_fail_alone_and_recover(
    aws: Any, server: RunningServer, name: str, error_type: str
) -> None:
    failed = aws.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == error_type
    log = base64.b64decode(failed["LogResult"]).decode()
    assert "Max Memory Used: " in log
    hello = aws.invoke(FunctionName="hello-dev-hello", Payload=b"{}")
    assert "FunctionError" not in hello
    recovered = aws.invoke(FunctionName=name, Payload=b'{"behave": true}')
    assert "FunctionError" not in recovered
    assert server.alive()


def test_client_context_reaches_the_handler(aws: Any) -> None:
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    response = aws.invoke(FunctionName="probe-dev-inspect", ClientContext=context)
    assert json.loads(response["Payload"].read())["context"]["client_context"] == {"k": "v"}


def test_health(server: RunningServer) -> None:
    health = httpx.get(f"{server.url}/_faasbox/health").json()
    assert health["status"] == "ok"
    assert health["functions"] >= 8


def test_unknown_routes_are_404_not_500(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/nothing/here").status_code == 404
    missing = signed_request(
        "GET", f"{server.url}/2015-03-31/functions/x/invocations", server.credentials
    )
    assert missing.status_code == 404
    response = signed_request(
        "POST",
        f"{server.url}/2015-03-31/functions/hello-dev-hello/invocations",
        server.credentials,
        headers={"X-Amz-Invocation-Type": "Sometimes"},
        content=b"{}",
    )
    assert response.status_code == 400


def test_restart_keeps_deployed_functions(tmp_path: Path) -> None:
    first = RunningServer([EXAMPLES / "hello"], tmp_path).start()
    try:
        aws = lambda_client(first.url, first.credentials)
        assert aws.invoke(FunctionName="hello-dev-hello")["StatusCode"] == 200
    finally:
        first.stop()
    # Started again with no service folder: the registry alone brings the function back.
    empty = tmp_path / "empty"
    (empty / "nothing").mkdir(parents=True)
    (empty / "nothing" / "serverless.yml").write_text(
        "service: nothing\nprovider:\n  name: aws\nfunctions:\n  n:\n    handler: x.y\n"
    )
    second = RunningServer([empty], tmp_path).start()
    try:
        assert second.credentials == first.credentials  # the admin key is made once
        response = lambda_client(second.url, second.credentials).invoke(
            FunctionName="hello-dev-hello", Payload=b'{"name": "again"}'
        )
        assert json.loads(response["Payload"].read())["message"] == "Hello, again!"
    finally:
        second.stop()


def test_boto_errors_are_client_errors_not_crashes(aws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError):
        aws.invoke(FunctionName="hello-dev-hello", Qualifier="42")


def test_a_version_named_in_the_function_name_is_the_invoked_arn(aws: Any) -> None:
    version = aws.publish_version(FunctionName="probe-dev-inspect")["Version"]
    for kwargs in (
        {"FunctionName": f"probe-dev-inspect:{version}"},
        {"FunctionName": "probe-dev-inspect", "Qualifier": version},
    ):
        response = aws.invoke(**kwargs)
        assert response["ExecutedVersion"] == version
        seen = json.loads(response["Payload"].read())["context"]
        assert seen["invoked_function_arn"].endswith(f":function:probe-dev-inspect:{version}")
        assert seen["function_version"] == version
