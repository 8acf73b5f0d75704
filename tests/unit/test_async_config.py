"""serverless.yml's async settings, queues and sqs events, as the loader checks them."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest

from faasbox.config import load_service
from faasbox.errors import ConfigError, InvalidParameterValue
from faasbox.events.invoke_config import AsyncConfig, apply_request


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / "serverless.yml").write_text(dedent(text))
    (tmp_path / "h.py").write_text("def h(event, context):\n    return event\n")
    return load_service(tmp_path)


SERVICE = """\
service: shop
provider: {name: aws, runtime: python3.11}
functions:
  worker:
    handler: h.h
    maximumRetryAttempts: 1
    maximumEventAge: 120
    destinations:
      onSuccess: audit
      onFailure: {type: sqs, arn: {Fn::GetAtt: [Failed, Arn]}}
    onError: arn:aws:sqs:us-east-1:000000000000:dead
    events:
      - sqs:
          arn: {Fn::GetAtt: [Jobs, Arn]}
          batchSize: 5
          functionResponseType: ReportBatchItemFailures
      - sqs: arn:aws:sqs:us-east-1:000000000000:other
  audit:
    handler: h.h
resources:
  Resources:
    Jobs:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: jobs
        VisibilityTimeout: 10
        RedrivePolicy: {deadLetterTargetArn: {Fn::GetAtt: [Failed, Arn]}, maxReceiveCount: 3}
    Failed:
      Type: AWS::SQS::Queue
"""


def test_async_settings_queues_and_sqs_events(tmp_path: Path) -> None:
    spec = load(tmp_path, SERVICE)
    assert spec.warnings == []
    worker = spec.functions["worker"]
    assert worker.async_config == {
        "maximumRetryAttempts": 1,
        "maximumEventAge": 120,
        "onSuccess": "audit",
        "onFailure": "arn:aws:sqs:us-east-1:000000000000:Failed",
        "onError": "arn:aws:sqs:us-east-1:000000000000:dead",
    }
    assert spec.functions["audit"].async_config is None
    assert spec.queues["Failed"] == {"name": "Failed", "attributes": {}}
    jobs = spec.queues["Jobs"]
    assert jobs["name"] == "jobs"
    assert jobs["attributes"]["VisibilityTimeout"] == "10"
    assert json.loads(jobs["attributes"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:Failed",
        "maxReceiveCount": 3,
    }


ARN = "arn:aws:sqs:us-east-1:000000000000"
QUEUE = "resources: {Resources: {Jobs: {Type: AWS::SQS::Queue, Properties: %s}}}\n"


@pytest.mark.parametrize(
    ("timeout", "properties", "event", "refused"),
    [
        (10, "{VisibilityTimeout: 5}", "{arn: {Fn::GetAtt: [Jobs, Arn]}}",
         "5 seconds is less than Function timeout: 10"),
        (31, "{}", f"{ARN}:Jobs", "30 seconds is less than Function timeout: 31"),
        (8, "{QueueName: jobs, VisibilityTimeout: 7}", f"{ARN}:jobs", "7 seconds is less"),
        (10, "{VisibilityTimeout: 10}", "{arn: {Fn::GetAtt: [Jobs, Arn]}}", None),
        (900, "{}", f"{ARN}:elsewhere", None),
    ],
)  # fmt: skip
def test_an_sqs_event_needs_a_visibility_timeout_of_at_least_the_function_timeout(
    tmp_path: Path, timeout: int, properties: str, event: str, refused: str | None
) -> None:
    text = (
        "service: s\nprovider: {name: aws}\nfunctions:\n  f:\n    handler: h.h\n"
        f"    timeout: {timeout}\n    events: [{{sqs: {event}}}]\n" + QUEUE % properties
    )
    if refused is None:
        assert load(tmp_path, text).functions["f"].timeout == timeout
        return
    where = r"functions\.f\.events\[0\]\.sqs"
    with pytest.raises(ConfigError, match=rf"{where}: Queue visibility timeout: {refused}"):
        load(tmp_path, text)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("maximumRetryAttempts: 3", "maximumRetryAttempts: expected an integer between 0 and 2"),
        ("maximumEventAge: 30", "maximumEventAge: expected an integer between 60 and 21600"),
        ("onError: arn:aws:sns:us-east-1:000000000000:t", "onError: faasbox delivers to"),
        ("destinations: {onFailure: {type: eventBus, arn: x}}", "got type 'eventBus'"),
        ("events: [{sqs: {arn: nope}}]", "expected a queue's ARN"),
        ("events: [{sqs: {arn: 'arn:aws:sqs:us-east-1:000000000000:q', batchSize: 0}}]",
         "batchSize: expected an integer between 1 and 10000"),
    ],
)  # fmt: skip
def test_bad_async_settings_say_what_is_wrong(tmp_path: Path, setting: str, message: str) -> None:
    text = (
        f"service: s\nprovider: {{name: aws}}\nfunctions:\n  f:\n    handler: h.h\n    {setting}\n"
    )
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_put_and_update_event_invoke_config_check_like_lambda() -> None:
    put = apply_request(None, {"MaximumRetryAttempts": 1})
    assert (put.maximum_retry_attempts, put.maximum_event_age_s) == (1, 21600)
    updated = apply_request(put, {"MaximumEventAgeInSeconds": 600})
    assert (updated.maximum_retry_attempts, updated.maximum_event_age_s) == (1, 600)
    with pytest.raises(InvalidParameterValue, match="less than or equal to 2"):
        apply_request(None, {"MaximumRetryAttempts": 3})
    with pytest.raises(InvalidParameterValue, match="is invalid"):
        apply_request(None, {"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:x"}}})
    assert AsyncConfig().to_api("arn")["DestinationConfig"] == {}


@pytest.mark.parametrize(
    ("async_config", "message"),
    [
        ({"maximumRetryAttempts": 5}, "maximumRetryAttempts must be an integer from 0 to 2"),
        ({"onFailure": 3}, "onFailure must be a function name or an ARN"),
        ({"mystery": 1}, "unknown member 'mystery'"),
        ("yes", "async_config must be an object"),
    ],
)
def test_a_deployed_async_config_is_checked(async_config: object, message: str) -> None:
    from faasbox.registry.models import checked_config

    with pytest.raises(ValueError, match=message):
        checked_config({"name": "f", "handler": "h.h", "async_config": async_config})
    assert checked_config({"name": "f", "handler": "h.h", "async_config": {"maximumEventAge": 60}})
