"""A proxy response by name, for the binary path's tests (faasbox.execution.body_beside)."""

import base64
import json


def handler(event, context):
    """The response the request's `x-case` header names; most carry the event the handler
    saw, as json.dumps wrote it (keys in their order), base64."""
    seen = json.dumps(event)  # the dict as the handler got it, keys in their order
    b64 = base64.b64encode(seen.encode()).decode()
    responses = {
        "event": {"statusCode": 200, "body": b64, "isBase64Encoded": True},
        "event-rest": {
            "statusCode": "201",
            "multiValueHeaders": {"X-A": ["1", "2"]},
            "isBase64Encoded": True,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": b64,
        },
        "invalid-base64": {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
        "non-str-body": {"statusCode": 200, "body": {"a": 1}, "isBase64Encoded": True},
        "not-base64": {"statusCode": 200, "body": seen, "isBase64Encoded": False},
        "truthy-flag": {"statusCode": 200, "body": b64, "isBase64Encoded": 1},
        "no-status": {"body": b64, "isBase64Encoded": True},
        "unknown-key": {"statusCode": 200, "body": b64, "isBase64Encoded": True, "extra": 1},
        "int-key": {"statusCode": 200, "body": b64, "isBase64Encoded": True, 1: "one"},
        "not-json": {"statusCode": 200, "body": b64, "isBase64Encoded": True, "x": {1, 2}},
        "too-large": {"statusCode": 200, "body": "QUJD" * 1_600_000, "isBase64Encoded": True},
    }
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    case = headers.get("x-case", "event")
    return responses[case]
