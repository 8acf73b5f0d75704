"""Logs that last, Lambda's JSON log format, trace ids, /metrics and the access log, against
a real server with real clients (httpx, boto3, the faasbox CLI, prometheus_client's parser)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    ROOT,
    SERVICES,
    LineReader,
    RunningServer,
    faasbox_cli,
    lambda_client,
    signed_request,
    wait_until,
)

OBSERVE = SERVICES / "observe"
TEXT = "observe-dev-text"
STRUCTURED = "observe-dev-structured"
WARNINGS = "observe-dev-warnings"
FAILING = "observe-dev-failing"
NODE = "observe-dev-node-structured"
SLOW = "observe-dev-slow"
ROOT_ID = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}(;|$)")
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # A short queue timeout: a second call to the busy `slow` function is throttled soon.
    running = RunningServer(
        [OBSERVE], tmp_path_factory.mktemp("data"), "--queue-timeout", "0.5"
    ).start()
    yield running
    running.stop()


def invoke(server: RunningServer, name: str, event: dict[str, Any]) -> dict[str, Any]:
    response = lambda_client(server.url, server.credentials).invoke(
        FunctionName=name, Payload=json.dumps(event).encode()
    )
    return {
        "requestId": response["ResponseMetadata"]["RequestId"],
        "payload": json.loads(response["Payload"].read()),
        "error": response.get("FunctionError"),
    }


def records(server: RunningServer, name: str, **params: Any) -> list[dict[str, Any]]:
    response = signed_request(
        "GET",
        f"{server.url}/_faasbox/functions/{name}/logs",
        server.credentials,
        params={"limit": 0, **params},
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["records"]
    return found


def record_of(server: RunningServer, name: str, request_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: next((r for r in records(server, name) if r["request_id"] == request_id), None),
        30,
        f"the log record of {request_id}",
    )


def json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


# -- trace ids -------------------------------------------------------------------------------


def test_an_incoming_trace_id_reaches_the_function_and_comes_back(server: RunningServer) -> None:
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    response = httpx.get(
        f"{server.url}/observe/text", headers={"X-Amzn-Trace-Id": trace}, timeout=30
    )
    assert response.status_code == 200
    assert response.json()["traceId"] == trace
    assert response.headers["x-amzn-trace-id"] == trace


def test_a_request_without_one_gets_a_new_root_id(server: RunningServer) -> None:
    seen = set()
    for sent in (None, "not a trace id", "Root=1-zz-12"):
        headers = {"X-Amzn-Trace-Id": sent} if sent else {}
        response = httpx.get(f"{server.url}/observe/text", headers=headers, timeout=30)
        trace = response.json()["traceId"]
        assert ROOT_ID.match(trace), trace
        assert response.headers["x-amzn-trace-id"] == trace
        # Its first part is the epoch second it was made, as X-Ray's.
        assert abs(int(trace[7:15], 16) - time.time()) < 600
        seen.add(trace)
    assert len(seen) == 3


def test_the_lambda_invoke_api_carries_the_trace_id(server: RunningServer) -> None:
    trace = "Root=1-6759e988-0123456789abcdef01234567;Sampled=0"
    response = signed_request(
        "POST",
        f"{server.url}/2015-03-31/functions/{TEXT}/invocations",
        server.credentials,
        content=b"{}",
        headers={"X-Amzn-Trace-Id": trace},
    )
    assert response.status_code == 200
    assert response.json()["traceId"] == trace
    assert response.headers["x-amzn-trace-id"] == trace
    record = record_of(server, TEXT, response.headers["x-amzn-requestid"])
    assert record["trace_id"] == trace


# -- Lambda's JSON log format --------------------------------------------------------------------


def test_json_log_records_have_lambdas_fields(server: RunningServer) -> None:
    done = invoke(server, STRUCTURED, {"marker": "json-1"})
    request_id = done["requestId"]
    log = record_of(server, STRUCTURED, request_id)["log"]
    entries = json_lines(log)
    start, report = entries[0], entries[-1]
    assert start["type"] == "platform.start"
    assert start["record"] == {"requestId": request_id, "version": "$LATEST"}
    assert report["type"] == "platform.report"
    assert report["record"]["requestId"] == request_id
    assert report["record"]["status"] == "success"
    metrics = report["record"]["metrics"]
    assert metrics["durationMs"] > 0
    assert metrics["billedDurationMs"] >= 1
    assert metrics["memorySizeMB"] == 1024
    assert metrics["maxMemoryUsedMB"] > 0
    for entry in (start, report):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])

    application = [e for e in entries if "level" in e]
    # applicationLogLevel INFO (the provider's): no DEBUG record.
    assert [(e["level"], e["message"]) for e in application] == [
        ("INFO", "info json-1"),
        ("WARN", "warning json-1"),
    ]
    for entry in application:
        assert entry["requestId"] == request_id
        assert entry["logger"] == "observe"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])
    assert application[0]["order"] == 42  # a record's `extra` fields are logged too
    # print() is not a logging record: it stays a line of text, as in Lambda's Python.
    assert "printed json-1" in log.splitlines()
    assert "START RequestId" not in log and "REPORT RequestId" not in log


def test_log_levels_filter_application_and_system_records(server: RunningServer) -> None:
    done = invoke(server, WARNINGS, {"marker": "levels"})
    log = record_of(server, WARNINGS, done["requestId"])["log"]
    entries = json_lines(log)
    # applicationLogLevel WARN: the warning only; systemLogLevel WARN: no platform records.
    assert [(e["level"], e["message"]) for e in entries] == [("WARN", "warning levels")]


def test_node_functions_write_json_at_their_level_and_see_the_trace_id(
    server: RunningServer,
) -> None:
    trace = "Root=1-6759e988-00000000000000000000abcd;Sampled=0"
    response = signed_request(
        "POST",
        f"{server.url}/2015-03-31/functions/{NODE}/invocations",
        server.credentials,
        content=b'{"marker": "node-1"}',
        headers={"X-Amzn-Trace-Id": trace},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"traceId": trace}
    request_id = response.headers["x-amzn-requestid"]
    entries = json_lines(record_of(server, NODE, request_id)["log"])
    application = [e for e in entries if "level" in e]
    # applicationLogLevel WARN: Lambda's Node.js runtime drops console.debug and .info.
    assert [(e["level"], e["requestId"]) for e in application] == [("WARN", request_id)]
    assert application[0]["message"].startswith("node warning")
    assert "node-1" in application[0]["message"]
    assert [e["type"] for e in entries if "type" in e] == ["platform.start", "platform.report"]


def test_a_logged_exception_and_a_failed_invocation_in_json(server: RunningServer) -> None:
    done = invoke(server, FAILING, {})
    assert done["error"] == "Unhandled"
    entries = json_lines(record_of(server, FAILING, done["requestId"])["log"])
    logged = next(e for e in entries if e.get("message") == "caught it")
    assert logged["level"] == "ERROR"
    assert logged["errorType"] == "ValueError"
    assert logged["errorMessage"] == "inner"
    assert isinstance(logged["stackTrace"], list) and logged["stackTrace"]
    report = entries[-1]
    assert report["type"] == "platform.report"
    assert report["record"]["status"] == "error"


def test_text_functions_keep_lambdas_text_lines(server: RunningServer) -> None:
    done = invoke(server, TEXT, {"marker": "plain"})
    log = record_of(server, TEXT, done["requestId"])["log"]
    lines = log.splitlines()
    assert lines[0].startswith(f"START RequestId: {done['requestId']}")
    assert lines[-1].startswith(f"REPORT RequestId: {done['requestId']}")
    # Python's default level in Text: the warning only, in awslambdaric's text format.
    assert any(line.startswith("[WARNING]\t") and "warning plain" in line for line in lines)
    assert not any("info plain" in line for line in lines)


def test_logging_config_through_the_lambda_api(server: RunningServer) -> None:
    client = lambda_client(server.url, server.credentials)
    shown = client.get_function_configuration(FunctionName=STRUCTURED)["LoggingConfig"]
    assert shown == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": f"/aws/lambda/{STRUCTURED}",
    }
    with pytest.raises(ClientError) as bad_value:
        client.update_function_configuration(
            FunctionName=WARNINGS, LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "ERROR"}
        )
    assert bad_value.value.response["Error"]["Code"] == "ValidationException"
    assert "systemLogLevel" in bad_value.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as text_levels:
        client.update_function_configuration(
            FunctionName=WARNINGS,
            LoggingConfig={"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"},
        )
    assert text_levels.value.response["Error"]["Code"] == "InvalidParameterValueException"

    updated = client.update_function_configuration(
        FunctionName=WARNINGS, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"}
    )
    assert updated["LoggingConfig"]["ApplicationLogLevel"] == "DEBUG"
    assert updated["LoggingConfig"]["SystemLogLevel"] == "INFO"
    done = invoke(server, WARNINGS, {"marker": "debugging"})
    entries = json_lines(record_of(server, WARNINGS, done["requestId"])["log"])
    levels = [e.get("level") or e["type"] for e in entries]
    assert levels == ["platform.start", "DEBUG", "INFO", "WARN", "platform.report"]
    client.update_function_configuration(
        FunctionName=WARNINGS,
        LoggingConfig={
            "LogFormat": "JSON",
            "ApplicationLogLevel": "WARN",
            "SystemLogLevel": "WARN",
        },
    )


# -- faasbox logs ------------------------------------------------------------------------------


def test_logs_lines_are_timestamped_and_filtered(server: RunningServer) -> None:
    invoke(server, TEXT, {"marker": "needle-7"})
    invoke(server, TEXT, {"marker": "hay-8"})
    everything = faasbox_cli(server, "logs", "-f", TEXT)
    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert lines and all(STAMPED.match(line) for line in lines), lines
    assert any(line.endswith("printed hay-8") for line in lines)

    filtered = faasbox_cli(server, "logs", "-f", TEXT, "--filter", "needle-7")
    assert filtered.returncode == 0, filtered.stderr
    found = filtered.stdout.splitlines()
    assert found and all("needle-7" in line for line in found), found
    assert any(line.endswith("printed needle-7") for line in found)
    assert "hay-8" not in filtered.stdout

    none = faasbox_cli(server, "logs", "-f", TEXT, "-n", "0")
    assert none.returncode == 0 and none.stdout == ""


def test_logs_start_time_takes_relative_iso_and_epoch_ms(server: RunningServer) -> None:
    invoke(server, TEXT, {"marker": "before-cut"})
    cut = time.time()
    invoke(server, TEXT, {"marker": "after-cut"})

    since_cut = faasbox_cli(server, "logs", "-f", TEXT, "--startTime", str(int(cut * 1000)))
    assert since_cut.returncode == 0, since_cut.stderr
    assert "printed after-cut" in since_cut.stdout
    assert "before-cut" not in since_cut.stdout

    recent = faasbox_cli(server, "logs", "-f", TEXT, "--startTime", "10m")
    assert "printed before-cut" in recent.stdout and "printed after-cut" in recent.stdout

    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    future = faasbox_cli(server, "logs", "-f", TEXT, "--startTime", tomorrow)
    assert future.returncode == 0 and future.stdout == ""

    bad = faasbox_cli(server, "logs", "-f", TEXT, "--startTime", "yesterday-ish")
    assert bad.returncode == 2
    assert "--startTime" in bad.stderr and "30m" in bad.stderr


def test_logs_tail_with_n_0_prints_only_new_invocations(server: RunningServer) -> None:
    invoke(server, TEXT, {"marker": "old-one"})
    request_line = f'"GET /_faasbox/functions/{TEXT}/logs" 200'

    def log_requests() -> int:
        return sum(request_line in line for line in list(server.output))

    asked = log_requests()
    tail = subprocess.Popen(
        [sys.executable, "-m", "faasbox", "logs", "-f", TEXT, "--tail", "-n", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=server.client_env(),
        cwd=ROOT,
    )
    try:
        output = LineReader(tail.stdout)
        # Its first request answered (the access log says so), it follows from there on.
        wait_until(lambda: log_requests() > asked, 30, "the tail's first request")
        invoke(server, TEXT, {"marker": "new-one"})
        wait_until(lambda: "printed new-one" in output.text, 60, "the new invocation")
        assert "old-one" not in output.text
    finally:
        tail.terminate()
        tail.wait()


# -- /metrics ----------------------------------------------------------------------------------


def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = signed_request("GET", f"{server.url}/metrics", server.credentials)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_a_signature_and_keep_their_path(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 403
    # A function's route at /metrics does not take it over: skipped, with a warning.
    assert "route GET /metrics is under a reserved prefix; skipped" in "".join(server.output)
    assert scrape(server)  # Prometheus's text, not the function's JSON


def test_metrics_parse_and_move_with_invocations(server: RunningServer) -> None:
    invoke(server, TEXT, {})  # warm: what follows is counted from here
    before = scrape(server)
    for _ in range(3):
        invoke(server, TEXT, {})
    invoke(server, FAILING, {})
    after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("faasbox_invocations_total", function=TEXT) == 3
    assert moved("faasbox_duration_seconds_count", function=TEXT) == 3
    assert moved("faasbox_duration_seconds_sum", function=TEXT) > 0
    assert moved("faasbox_errors_total", function=TEXT, status="error") == 0
    assert moved("faasbox_errors_total", function=FAILING, status="error") == 1
    assert value(after, "faasbox_cold_starts_total", function=TEXT) >= 1
    assert value(after, "faasbox_init_duration_seconds_count", function=TEXT) >= 1
    assert value(after, "faasbox_concurrent_executions", function=TEXT) == 0
    assert value(after, "faasbox_queue_depth", function=TEXT) == 0
    assert (
        value(after, "faasbox_workers", function=TEXT, executor="process", state="idle")
        + value(after, "faasbox_workers", function=TEXT, executor="process", state="busy")
        >= 1
    )


def test_metrics_count_throttles_and_concurrent_executions(server: RunningServer) -> None:
    before = scrape(server)
    first: dict[str, Any] = {}
    running = threading.Thread(
        target=lambda: first.update(invoke(server, SLOW, {"seconds": 5})), daemon=True
    )
    running.start()
    try:
        wait_until(
            lambda: value(scrape(server), "faasbox_concurrent_executions", function=SLOW) == 1,
            60,
            "the slow invocation to run",
        )
        # reservedConcurrency 1 and a 0.5 s queue timeout: the second is throttled (once:
        # a plain signed request, where boto3 would retry).
        throttled = signed_request(
            "POST",
            f"{server.url}/2015-03-31/functions/{SLOW}/invocations",
            server.credentials,
            content=b'{"seconds": 0}',
        )
        assert throttled.status_code == 429
        assert throttled.headers["x-amzn-errortype"].startswith("TooManyRequestsException")
    finally:
        running.join(60)
    after = scrape(server)
    assert first["payload"] == "slept"
    throttles = value(after, "faasbox_throttles_total", function=SLOW) - value(
        before, "faasbox_throttles_total", function=SLOW
    )
    assert throttles == 1
    assert value(after, "faasbox_concurrent_executions", function=SLOW) == 0


# -- the access log ----------------------------------------------------------------------------


def test_each_request_gets_an_access_log_line(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/observe/text?secret=s3cr3t", timeout=30)
    request_id = response.headers["apigw-requestid"]
    line = wait_until(
        lambda: next((x for x in server.output if request_id in x), None),
        30,
        "the request's access log line",
    )
    assert re.match(
        r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 "GET /observe/text" 200 '
        rf"\d+\.\d\d ms {request_id}$",
        line.strip(),
    ), line
    assert "s3cr3t" not in "".join(server.output)  # query strings may hold keys


# -- logs that last --------------------------------------------------------------------------


def test_logs_survive_a_restart_and_quiet_serves_without_access_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = RunningServer([OBSERVE], data).start()
    try:
        done = invoke(first, TEXT, {"marker": "from-before"})
        seq_before = record_of(first, TEXT, done["requestId"])["seq"]
    finally:
        first.stop()

    second = RunningServer([OBSERVE], data, "--quiet").start()
    try:
        kept = faasbox_cli(second, "logs", "-f", TEXT, "--filter", "from-before")
        assert kept.returncode == 0, kept.stderr
        assert "printed from-before" in kept.stdout
        assert done["requestId"] in kept.stdout
        again = invoke(second, TEXT, {"marker": "from-after"})
        # Sequence numbers go on from where they were: followers never see one twice.
        assert record_of(second, TEXT, again["requestId"])["seq"] > seq_before
        assert again["requestId"] not in "".join(second.output)  # --quiet: no access log
    finally:
        second.stop()


@pytest.mark.parametrize("wait", ["nan", "inf", "-1"])
def test_a_logs_query_with_a_bad_wait_is_a_400(server: RunningServer, wait: str) -> None:
    response = signed_request(
        "GET",
        f"{server.url}/_faasbox/functions/{TEXT}/logs",
        server.credentials,
        params={"wait": wait},
    )
    assert response.status_code == 400, response.text
    assert "wait must be 0 to 30 seconds" in response.json()["Message"]
