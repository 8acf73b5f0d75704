"""Asynchronous invocations against a real server: durable, throttled events wait, retries,
destinations (records in AWS's shape), and the event invoke config API, with boto3."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.async_support import Collector
from tests.support import SERVICES, RunningServer, lambda_client, signed_request, wait_until

RECORDER = "asynctest-dev-recorder"
FLAKY = "asynctest-dev-flaky"
LUCKY = "asynctest-dev-lucky"
SINK = "asynctest-dev-sink"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        [SERVICES / "async"], tmp_path_factory.mktemp("data"), "--async-retry-delay", "0.5"
    ).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


@pytest.fixture(scope="module")
def aws(server: RunningServer) -> Any:
    return lambda_client(server.url, server.credentials)


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.close()


def send_event(aws: Any, function: str, event: dict[str, Any]) -> str:
    response = aws.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event))
    assert response["StatusCode"] == 202
    return str(response["ResponseMetadata"]["RequestId"])


def status(server: RunningServer, request_id: str) -> dict[str, Any]:
    response = signed_request(
        "GET", f"{server.url}/_faasbox/async/invocations/{request_id}", server.credentials
    )
    response.raise_for_status()
    return dict(response.json())


def test_200_events_to_a_function_of_reserved_concurrency_2_run_exactly_once(
    server: RunningServer, aws: Any, collector: Collector
) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(
                lambda n: send_event(aws, RECORDER, {"collector": collector.url, "n": n}),
                range(200),
            )
        )
    assert len(set(ids)) == 200
    wait_until(lambda: len(collector.runs_of("n")) == 200, 180, "all 200 events to run")
    wait_until(
        lambda: all(status(server, i)["state"] == "succeeded" for i in ids[-5:]),
        30,
        "the last events to be recorded as succeeded",
    )
    runs = collector.runs_of("n")
    assert sorted(runs) == list(range(200))
    assert set(runs.values()) == {1}, "each event ran exactly once"
    assert {r["requestId"] for r in collector.snapshot()} == set(ids)
    assert "Rate Exceeded" not in "".join(server.output)


def test_a_failing_function_is_retried_twice_then_its_record_goes_to_on_failure(
    server: RunningServer, aws: Any, collector: Collector
) -> None:
    event = {"collector": collector.url, "n": 7}
    request_id = send_event(aws, FLAKY, event)
    records = wait_until(collector.records, 60, "the failure record at the destination")
    assert collector.runs_of("n") == {7: 3}, "one run and two retries"
    (record,) = records
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{FLAKY}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == event
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "flaky failed on 7"
    state = wait_until(
        lambda: (s := status(server, request_id))["state"] == "failed" and s, 30, "failed"
    )
    assert state["attempts"] == 3
    assert state["destination"] == f"function:{SINK}"


def test_a_success_record_goes_to_on_success(
    server: RunningServer, aws: Any, collector: Collector
) -> None:
    request_id = send_event(aws, LUCKY, {"collector": collector.url, "n": 1})
    (record,) = wait_until(collector.records, 60, "the success record at the destination")
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"n": 1}
    assert status(server, request_id)["state"] == "succeeded"


def test_event_invoke_config_api_with_boto3(
    server: RunningServer, aws: Any, collector: Collector
) -> None:
    errors = aws.exceptions
    with pytest.raises(errors.ResourceNotFoundException):
        aws.get_function_event_invoke_config(FunctionName=FLAKY)
    sink_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{SINK}"
    put = aws.put_function_event_invoke_config(
        FunctionName=FLAKY,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": sink_arn}},
    )
    assert put["FunctionArn"].endswith(f":function:{FLAKY}:$LATEST")
    assert put["MaximumRetryAttempts"] == 0
    assert put["MaximumEventAgeInSeconds"] == 21600
    assert put["DestinationConfig"] == {"OnFailure": {"Destination": sink_arn}}
    updated = aws.update_function_event_invoke_config(
        FunctionName=FLAKY, MaximumEventAgeInSeconds=3600
    )
    assert updated["MaximumRetryAttempts"] == 0, "update keeps what it does not name"
    assert updated["MaximumEventAgeInSeconds"] == 3600
    got = aws.get_function_event_invoke_config(FunctionName=FLAKY)
    assert got["MaximumEventAgeInSeconds"] == 3600
    assert got["DestinationConfig"]["OnFailure"]["Destination"] == sink_arn
    listed = aws.list_function_event_invoke_configs(FunctionName=FLAKY)
    assert [c["MaximumEventAgeInSeconds"] for c in listed["FunctionEventInvokeConfigs"]] == [3600]

    # It is followed: no retries now.
    send_event(aws, FLAKY, {"collector": collector.url, "n": 9})
    (record,) = wait_until(collector.records, 60, "the failure record")
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert collector.runs_of("n") == {9: 1}

    with pytest.raises(errors.InvalidParameterValueException, match="maximumRetryAttempts"):
        aws.put_function_event_invoke_config(FunctionName=FLAKY, MaximumRetryAttempts=3)
    with pytest.raises(errors.InvalidParameterValueException):
        aws.put_function_event_invoke_config(FunctionName=FLAKY, MaximumEventAgeInSeconds=21601)
    with pytest.raises(errors.ResourceNotFoundException):
        aws.put_function_event_invoke_config(FunctionName="nope", MaximumRetryAttempts=1)
    aws.delete_function_event_invoke_config(FunctionName=FLAKY)
    with pytest.raises(errors.ResourceNotFoundException):
        aws.get_function_event_invoke_config(FunctionName=FLAKY)
    with pytest.raises(errors.ResourceNotFoundException):
        aws.update_function_event_invoke_config(FunctionName=FLAKY, MaximumRetryAttempts=1)
    assert (
        aws.list_function_event_invoke_configs(FunctionName=FLAKY)["FunctionEventInvokeConfigs"]
        == []
    )


def test_an_oversized_event_is_refused(aws: Any) -> None:
    with pytest.raises(aws.exceptions.RequestTooLargeException):
        aws.invoke(
            FunctionName=RECORDER,
            InvocationType="Event",
            Payload=json.dumps({"pad": "x" * (256 * 1024)}),
        )


def faasbox_cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faasbox", *args],
        capture_output=True,
        text=True,
        env=server.client_env(),
        timeout=120,
    )


def test_the_cli_shows_where_an_event_invocation_is(
    server: RunningServer, collector: Collector
) -> None:
    event = json.dumps({"collector": collector.url, "n": 5})
    invoked = faasbox_cli(server, "invoke", "-f", LUCKY, "-t", "Event", "-d", event)
    assert invoked.returncode == 0, invoked.stderr
    assert "Event accepted (202), RequestId " in invoked.stdout
    request_id = invoked.stdout.split("RequestId ")[1].split()[0]
    assert re.search(r"State: (queued|running|succeeded)", invoked.stdout), invoked.stdout
    followed = faasbox_cli(server, "async", request_id, "--wait")
    assert followed.returncode == 0, followed.stderr
    assert f"{request_id} {LUCKY}: succeeded; sent to function:{SINK}" in followed.stdout
    listed = faasbox_cli(server, "async", "-f", LUCKY)
    assert listed.returncode == 0, listed.stderr
    assert request_id in listed.stdout and "succeeded" in listed.stdout
