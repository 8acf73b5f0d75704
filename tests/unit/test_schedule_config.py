"""Unit tests of `schedule` events in serverless.yml: checked when the file is loaded, with the
key path of what is wrong; a valid one gives no "not routed" warning."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from faasbox.config import ServiceSpec, load_service
from faasbox.errors import ConfigError


def load(folder: Path, events: str) -> ServiceSpec:
    path = folder / "serverless.yml"
    body = textwrap.indent(textwrap.dedent(events).strip(), " " * 6)
    path.write_text(
        f"service: cron\nfunctions:\n  tick:\n    handler: handler.run\n    events:\n{body}\n",
        encoding="utf-8",
    )
    return load_service(path, {}, {})


def test_valid_schedules_load_without_warnings(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
        - schedule: rate(10 minutes)
        - schedule: cron(0 12 ? * MON-FRI *)
        - schedule:
            rate:
              - rate(1 hour)
              - cron(0/5 8-17 ? * MON-FRI *)
            enabled: false
            name: every-hour
            description: hourly and working hours
            input:
              key1: value1
        - schedule:
            rate: rate(1 day)
            inputTransformer:
              inputPathsMap: {when: $.time}
              inputTemplate: '{"at": "<when>"}'
        """,
    )
    assert spec.warnings == []
    assert len(spec.functions["tick"].events) == 4


@pytest.mark.parametrize(
    ("events", "where", "message"),
    [
        ("- schedule: rate(1 minutes)", "events[0].schedule", "the unit is 'minute'"),
        ("- schedule: cron(0 10 * * * *)", "events[0].schedule", "must be '?'"),
        ("- schedule: {rate: 'cron(0 10 * *)'}", "events[0].schedule.rate", "six fields"),
        ("- schedule: {rate: rate(1 hour), enabled: 'yes'}", "schedule.enabled", "true or false"),
        ("- schedule: {rate: rate(1 hour), input: 'not json'}", "schedule.input", "JSON"),
        ("- schedule: {rate: rate(1 hour), inputPath: detail}", "schedule.inputPath", "JSON path"),
        (
            "- schedule: {rate: rate(1 hour), input: {a: 1}, inputPath: $.detail}",
            "schedule.inputPath",
            "only one of",
        ),
        ("- schedule: {rate: rate(1 hour), every: 2}", "schedule.every", "unknown key"),
        ("- schedule: {enabled: true}", "schedule.rate", "expected rate(...)"),
    ],
)
def test_a_bad_schedule_fails_the_load_naming_its_key(
    tmp_path: Path, events: str, where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, events)
    assert where in str(caught.value)
    assert message in str(caught.value)


def test_eventbridge_scheduler_keys_are_warned_about(tmp_path: Path) -> None:
    spec = load(tmp_path, "- schedule: {rate: rate(1 hour), method: scheduler, timezone: CET}")
    assert any("timezone" in w and "UTC" in w for w in spec.warnings)
