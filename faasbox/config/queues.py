"""Queues in serverless.yml: `AWS::SQS::Queue` resources, and functions' `sqs` events.

    resources:
      Resources:
        Jobs:                       # the logical id; the queue is named QueueName, else this
          Type: AWS::SQS::Queue
          Properties: {QueueName: jobs, VisibilityTimeout: 30,
                       RedrivePolicy: {deadLetterTargetArn: {Fn::GetAtt: [JobsDlq, Arn]},
                                       maxReceiveCount: 3}}
    functions:
      worker:
        events:
          - sqs: {arn: {Fn::GetAtt: [Jobs, Arn]}, batchSize: 10, maximumBatchingWindow: 5,
                  functionResponseType: ReportBatchItemFailures}
          - sqs: arn:aws:sqs:us-east-1:000000000000:jobs

A queue is named in an ARN (its last part), or by `{Fn::GetAtt: [LogicalId, Arn]}`, kept as
the ARN of the logical id and resolved by the queue service against the declared queues.
"""

from __future__ import annotations

import json
from typing import Any

from faasbox.config.fields import Context, integer, mapping, show
from faasbox.config.keypath import KeyPath

QUEUE_TYPE = "AWS::SQS::Queue"
ARN_PREFIX = "arn:aws:sqs:us-east-1:000000000000:"
PROPERTIES = (
    "VisibilityTimeout", "DelaySeconds", "MessageRetentionPeriod", "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
)  # fmt: skip
IGNORED_PROPERTIES = (
    "Tags",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)
SQS_EVENT_KEYS = frozenset(
    {"arn", "batchSize", "maximumBatchingWindow", "functionResponseType", "enabled"}
)
MAX_BATCH_SIZE = 10000
MAX_BATCHING_WINDOW_S = 300
DEFAULT_VISIBILITY_TIMEOUT_S = 30  # SQS's, for a queue declared without one


def queue_ref(ctx: Context, value: object, path: KeyPath) -> str:
    """A queue's ARN as written, or `{Fn::GetAtt: [Id, Arn]}` as the ARN of `Id`."""
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        attribute = value["Fn::GetAtt"]
        if isinstance(attribute, str):
            attribute = attribute.split(".")
        if isinstance(attribute, list) and len(attribute) == 2 and attribute[1] == "Arn":
            return ARN_PREFIX + str(attribute[0])
    if isinstance(value, str) and value.startswith("arn:aws:sqs:") and value.count(":") == 5:
        return value
    raise ctx.error(
        path,
        f"expected a queue's ARN (arn:aws:sqs:...) or {{Fn::GetAtt: [Id, Arn]}}, got {show(value)}",
    )


def declared_queues(ctx: Context, raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    """The `AWS::SQS::Queue` resources: logical id -> {name, attributes (SQS's strings)}."""
    resources = (raw.get("resources") or {}).get("Resources") or {}
    if not isinstance(resources, dict):
        return {}
    queues: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != QUEUE_TYPE:
            continue
        where: KeyPath = ("resources", "Resources", str(logical_id), "Properties")
        props = mapping(ctx, resource.get("Properties") or {}, where, "a mapping")
        if props.get("FifoQueue"):
            raise ctx.error((*where, "FifoQueue"), "faasbox does not support FIFO queues")
        attributes: dict[str, str] = {}
        for key, value in props.items():
            if key in PROPERTIES:
                attributes[key] = str(integer(ctx, value, (*where, key), 0, 1209600))
            elif key == "RedrivePolicy":
                policy = mapping(ctx, value, (*where, key), "a mapping")
                target = queue_ref(
                    ctx, policy.get("deadLetterTargetArn"), (*where, key, "deadLetterTargetArn")
                )
                count = integer(
                    ctx, policy.get("maxReceiveCount"), (*where, key, "maxReceiveCount"), 1, 1000
                )
                attributes[key] = json.dumps(
                    {"deadLetterTargetArn": target, "maxReceiveCount": count}
                )
            elif key not in ("QueueName", *IGNORED_PROPERTIES):
                ctx.warn((*where, key), f"faasbox does not support {key!r} and ignores it")
        name = props.get("QueueName") or str(logical_id)
        queues[str(logical_id)] = {"name": str(name), "attributes": attributes}
    return queues


def other_resources(value: object) -> list[str]:
    """The logical ids of resources faasbox does not create (all but queues)."""
    resources = value.get("Resources") if isinstance(value, dict) else None
    if not isinstance(resources, dict):
        return ["(resources)"] if value else []
    return [
        str(k)
        for k, v in resources.items()
        if not (isinstance(v, dict) and v.get("Type") == QUEUE_TYPE)
    ]


def check_sqs_event(ctx: Context, body: object, path: KeyPath) -> None:
    """An `sqs` event: an ARN, or {arn, batchSize, maximumBatchingWindow, functionResponseType}."""
    if not isinstance(body, dict):
        queue_ref(ctx, body, path)
        return
    queue_ref(ctx, body.get("arn"), (*path, "arn"))
    for key in body:
        if key not in SQS_EVENT_KEYS:
            ctx.warn((*path, key), f"faasbox does not support {key!r} and ignores it")
    if "batchSize" in body:
        integer(ctx, body["batchSize"], (*path, "batchSize"), 1, MAX_BATCH_SIZE)
    if "maximumBatchingWindow" in body:
        integer(
            ctx,
            body["maximumBatchingWindow"],
            (*path, "maximumBatchingWindow"),
            0,
            MAX_BATCHING_WINDOW_S,
            "seconds",
        )
    response_type = body.get("functionResponseType")
    if response_type not in (None, "ReportBatchItemFailures"):
        raise ctx.error(
            (*path, "functionResponseType"),
            f"expected ReportBatchItemFailures, got {show(response_type)}",
        )


def check_visibility(
    ctx: Context,
    queues: dict[str, dict[str, Any]],
    function: str,
    timeout: float,
    events: list[dict[str, Any]],
) -> None:
    """Lambda refuses an sqs event source whose queue's visibility timeout is below the
    function's timeout: a message would be visible again, and handed to a second invocation,
    while the first still runs. Checked for the queues this file declares (an ARN of a queue
    made elsewhere is not known here)."""
    for index, event in enumerate(events):
        if "sqs" not in event:
            continue
        body = event["sqs"]
        ref = body.get("arn") if isinstance(body, dict) else body
        name = queue_ref(ctx, ref, ()).rsplit(":", 1)[1]
        queue = queues.get(name) or next((q for q in queues.values() if q["name"] == name), None)
        if queue is None:
            continue
        visibility = int(queue["attributes"].get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT_S))
        if visibility < timeout:
            raise ctx.error(
                ("functions", function, "events", index, "sqs"),
                f"Queue visibility timeout: {visibility} seconds is less than Function timeout: "
                f"{timeout:g} seconds (raise the queue's VisibilityTimeout; AWS advises 6x the "
                "function's timeout)",
            )
