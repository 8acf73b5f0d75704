"""Unit tests of the small pieces of observability: `--startTime`, trace ids, Lambda's JSON
platform records, the access log line, and `logs` in serverless.yml."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import click
import pytest

from faasbox.cli.logs import parse_start_time, timestamped_lines
from faasbox.config import load_service
from faasbox.errors import ConfigError
from faasbox.gateway.observe import access_line
from faasbox.lambda_ import log_format, tracing

NOW = 1_764_583_200.0  # 2025-12-01T10:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", NOW - 30),
        ("10m", NOW - 600),
        ("2h", NOW - 7200),
        ("3d", NOW - 3 * 86400),
        ("1w", NOW - 7 * 86400),
        ("2025-12-01", NOW - 10 * 3600),
        ("2025-12-01T10:00:00Z", NOW),
        ("2025-12-01T12:00:00+02:00", NOW),
        ("1764583200000", NOW),  # epoch ms
        ("1764583200", NOW),  # epoch seconds, the Framework's example's shape
    ],
)
def test_start_time_forms(text: str, expected: float) -> None:
    assert parse_start_time(text, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "10 minutes", "-5m", "2025-13-01", ""])
def test_bad_start_times_say_what_is_accepted(text: str) -> None:
    with pytest.raises(click.BadParameter, match="30m, 2h, 3d"):
        parse_start_time(text, now=NOW)


def test_log_lines_get_their_invocations_times() -> None:
    log = "START RequestId: r Version: $LATEST\nhello\nEND RequestId: r\nREPORT RequestId: r\t\n"
    record = {"started_at": NOW, "duration_ms": 1500.0, "init_ms": 500.0, "log": log}
    lines = timestamped_lines(record, None)
    assert [line.split("\t", 1)[0] for line in lines] == [
        "2025-12-01T10:00:00.500Z",
        "2025-12-01T10:00:00.500Z",
        "2025-12-01T10:00:02.000Z",
        "2025-12-01T10:00:02.000Z",
    ]
    assert timestamped_lines(record, "hello") == ["2025-12-01T10:00:00.500Z\thello"]


def test_trace_ids_kept_or_made() -> None:
    kept = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert tracing.trace_id_from(kept) == kept
    for bad in (None, "", "Root=1-xyz", "Root=1-5759e988-bd862e3fe1be46a994272793\n", "a" * 300):
        made = tracing.trace_id_from(bad)
        assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0", made)
    assert tracing.new_trace_id() != tracing.new_trace_id()


def test_json_platform_records_and_system_log_level() -> None:
    config = {"LogFormat": "JSON"}
    log = log_format.json_invocation_log(
        config, NOW, "req", "$LATEST", '{"level": "INFO"}', "timeout", 3000.4, 128, 40, 12.5
    )
    start, output, report = (json.loads(line) for line in log.splitlines())
    assert start == {
        "time": "2025-12-01T10:00:00.000Z",
        "type": "platform.start",
        "record": {"requestId": "req", "version": "$LATEST"},
    }
    assert output == {"level": "INFO"}
    assert report["time"] == "2025-12-01T10:00:03.000Z"
    assert report["record"] == {
        "requestId": "req",
        "metrics": {
            "durationMs": 3000.4,
            "billedDurationMs": 3001,
            "memorySizeMB": 128,
            "maxMemoryUsedMB": 40,
            "initDurationMs": 12.5,
        },
        "status": "timeout",
        "errorType": "Sandbox.Timedout",
    }
    quiet = {"LogFormat": "JSON", "SystemLogLevel": "WARN"}
    assert (
        log_format.json_invocation_log(
            quiet, NOW, "req", "$LATEST", "out", "success", 1.0, 128, 40, None
        )
        == "out\n"
    )


def test_the_runtime_is_told_the_format_and_level_in_json_only() -> None:
    assert log_format.runtime_env({}) == {}
    assert log_format.runtime_env({"LogFormat": "JSON"}) == {
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
    }
    assert log_format.lambda_logging_config({}, "/aws/lambda/f") == {
        "LogFormat": "Text",
        "LogGroup": "/aws/lambda/f",
    }


def test_the_access_line() -> None:
    assert access_line("10.0.0.1", "GET", "/hello", 200, 1.234, "rid") == (
        '10.0.0.1 "GET /hello" 200 1.23 ms rid'
    )
    assert access_line("-", "GET", "/x", 0, 0.5, "rid").startswith('- "GET /x" - ')


def load(tmp_path: Path, text: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    (tmp_path / "serverless.yml").write_text(textwrap.dedent(text))
    spec = load_service(tmp_path, {}, {})
    return {k: f.logging_config for k, f in spec.functions.items()}, spec.warnings


def test_logs_in_serverless_yml_function_over_provider(tmp_path: Path) -> None:
    configs, warnings = load(
        tmp_path,
        """
        service: demo
        provider:
          name: aws
          logs:
            restApi: true
            lambda: {logFormat: JSON, applicationLogLevel: warn, systemLogLevel: DEBUG}
        functions:
          inherits: {handler: h.f}
          own:
            handler: h.f
            logs: {applicationLogLevel: TRACE, logGroup: /custom/group}
          text:
            handler: h.f
            logs: {logFormat: Text}
        """,
    )
    assert configs["inherits"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "WARN",
        "SystemLogLevel": "DEBUG",
    }
    assert configs["own"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "TRACE",
        "SystemLogLevel": "DEBUG",
        "LogGroup": "/custom/group",
    }
    # The provider's levels do not apply to a Text function: said once, not an error.
    assert configs["text"] == {"LogFormat": "Text"}
    assert [w for w in warnings if "logFormat: JSON only" in w] == [
        f"{tmp_path / 'serverless.yml'}: provider.logs.lambda: applicationLogLevel and "
        "systemLogLevel apply with logFormat: JSON only; ignored for the functions whose "
        "logs are Text"
    ]


@pytest.mark.parametrize(
    ("logs", "message"),
    [
        ("{logFormat: XML}", "functions.f.logs.logFormat: expected one of Text, JSON, got 'XML'"),
        ("{logFormat: JSON, systemLogLevel: ERROR}", "expected one of DEBUG, INFO, WARN"),
        ("{applicationLogLevel: DEBUG}", "applicationLogLevel need logFormat: JSON"),
        ("JSON", "functions.f.logs: expected a mapping"),
    ],
)
def test_bad_logs_settings_are_errors(tmp_path: Path, logs: str, message: str) -> None:
    (tmp_path / "serverless.yml").write_text(
        f"service: demo\nprovider:\n  name: aws\nfunctions:\n  f:\n    handler: h.f\n"
        f"    logs: {logs}\n"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_service(tmp_path, {}, {})


def test_invocation_metrics_in_prometheus_text() -> None:
    """The invoker's plain counters come out as the Counter, Histogram and Gauge series they
    stand for: cumulative buckets with prometheus-client's `le`, _count and _sum, error series
    in the order they first occurred, the functions' in flight."""
    from prometheus_client import generate_latest

    from faasbox.execution.metrics import DURATION_BUCKETS, InvocationMetrics

    metrics = InvocationMetrics()
    metrics.finished("a", "success", 0.4, True, 12.5)  # 0.0004 s: in the first bucket
    metrics.finished("b", "timeout", 6000, False, None)
    metrics.finished("a", "error", 1500, False, None)
    metrics.of("a").concurrent += 2
    metrics.of("b").throttles += 1
    text = generate_latest(metrics.registry).decode()
    lines = text.splitlines()
    assert 'faasbox_invocations_total{function="a"} 2.0' in lines
    assert 'faasbox_throttles_total{function="b"} 1.0' in lines
    errors = [line for line in lines if line.startswith("faasbox_errors_total{")]
    assert errors == [
        'faasbox_errors_total{function="b",status="timeout"} 1.0',
        'faasbox_errors_total{function="a",status="error"} 1.0',
    ]
    buckets = [
        line for line in lines if line.startswith('faasbox_duration_seconds_bucket{function="a"')
    ]
    assert len(buckets) == len(DURATION_BUCKETS) + 1
    assert buckets[0] == 'faasbox_duration_seconds_bucket{function="a",le="0.0005"} 1.0'
    assert 'faasbox_duration_seconds_bucket{function="a",le="1.0"} 1.0' in buckets
    assert 'faasbox_duration_seconds_bucket{function="a",le="2.5"} 2.0' in buckets
    assert buckets[-1] == 'faasbox_duration_seconds_bucket{function="a",le="+Inf"} 2.0'
    assert 'faasbox_duration_seconds_count{function="a"} 2.0' in lines
    assert 'faasbox_duration_seconds_sum{function="a"} 1.5004' in lines
    assert 'faasbox_cold_starts_total{function="a"} 1.0' in lines
    assert 'faasbox_init_duration_seconds_count{function="a"} 1.0' in lines
    assert 'faasbox_concurrent_executions{function="a"} 2.0' in lines
    assert "# TYPE faasbox_concurrent_executions gauge" in lines
    assert "# TYPE faasbox_duration_seconds histogram" in lines
