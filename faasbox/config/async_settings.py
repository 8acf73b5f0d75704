"""A function's async settings in serverless.yml, as the Serverless Framework writes them:

    maximumRetryAttempts: 0-2          (Lambda's MaximumRetryAttempts, default 2)
    maximumEventAge: 60-21600          (MaximumEventAgeInSeconds, default 21600)
    destinations:
      onSuccess: NAME | KEY | arn:aws:lambda:... | arn:aws:sqs:...   (or {type, arn})
      onFailure: (the same)
    onError: arn:aws:sqs:...           (the dead-letter queue; an SNS topic is refused)

Checked here; run by faasbox.events (the values land in FunctionConfig.async_config).
"""

from __future__ import annotations

from typing import Any

from faasbox.config.fields import Context, integer, mapping, show
from faasbox.config.keypath import KeyPath
from faasbox.config.queues import queue_ref

ASYNC_KEYS = frozenset({"maximumRetryAttempts", "maximumEventAge", "destinations", "onError"})
DESTINATION_TYPES = ("function", "sqs")


def async_settings(ctx: Context, doc: dict[str, Any], path: KeyPath) -> dict[str, Any] | None:
    """The function's async settings (None when it sets none)."""
    settings: dict[str, Any] = {}
    if "maximumRetryAttempts" in doc:
        where = (*path, "maximumRetryAttempts")
        settings["maximumRetryAttempts"] = integer(ctx, doc["maximumRetryAttempts"], where, 0, 2)
    if "maximumEventAge" in doc:
        where = (*path, "maximumEventAge")
        settings["maximumEventAge"] = integer(
            ctx, doc["maximumEventAge"], where, 60, 21600, "seconds"
        )
    if doc.get("destinations") is not None:
        where = (*path, "destinations")
        destinations = mapping(ctx, doc["destinations"], where, "a mapping of onSuccess, onFailure")
        for key, value in destinations.items():
            if key not in ("onSuccess", "onFailure"):
                ctx.warn((*where, key), f"faasbox does not support {key!r} and ignores it")
                continue
            settings[key] = _destination(ctx, value, (*where, key))
    if doc.get("onError") is not None:
        where = (*path, "onError")
        target = _destination(ctx, doc["onError"], where)
        if not target.startswith("arn:aws:sqs:"):
            raise ctx.error(
                where, f"expected the ARN of a queue (arn:aws:sqs:...) as the DLQ, got {target!r}"
            )
        settings["onError"] = target
    return settings or None


def _destination(ctx: Context, value: object, path: KeyPath) -> str:
    """A function (its key in this file, its name or ARN) or a queue's ARN."""
    if isinstance(value, dict) and "arn" in value:
        kind = value.get("type", "function")
        if kind not in DESTINATION_TYPES:
            raise ctx.error(
                (*path, "type"),
                f"faasbox delivers to a function or an sqs queue, got type {show(kind)}",
            )
        value = value["arn"]
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        return queue_ref(ctx, value, path)  # a queue of this service's resources
    if not isinstance(value, str) or not value:
        raise ctx.error(path, f"expected a function name or an ARN, got {show(value)}")
    if value.startswith("arn:") and not value.startswith(("arn:aws:lambda:", "arn:aws:sqs:")):
        raise ctx.error(
            path, f"faasbox delivers to a function or a queue (arn:aws:sqs:...), got {value!r}"
        )
    return value


def async_config_problem(data: object) -> str | None:
    """What is wrong with a FunctionConfig's async_config from untrusted JSON (the
    management API's deploy), or None."""
    if data is None:
        return None
    if not isinstance(data, dict):
        return "async_config must be an object"
    ranges = {"maximumRetryAttempts": (0, 2), "maximumEventAge": (60, 21600)}
    for key, value in data.items():
        if key in ranges:
            low, high = ranges[key]
            if type(value) is not int or not low <= value <= high:
                return f"async_config.{key} must be an integer from {low} to {high}"
        elif key in ("onSuccess", "onFailure", "onError"):
            if not isinstance(value, str) or not value:
                return f"async_config.{key} must be a function name or an ARN"
        else:
            return f"async_config has an unknown member {key!r}"
    return None
