"""Destination records in AWS's shape: what an onSuccess/onFailure destination receives
for one asynchronous invocation (Lambda's "invocation record")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

RECORD_VERSION = "1.0"
SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"


def _json_or_text(data: bytes) -> Any:
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: bytes,
    executed_version: str | None,
    function_error: str | None,
    response_payload: bytes | None,
    now: float,
) -> dict[str, Any]:
    """`function_arn` is qualified (…:function:NAME:$LATEST), as AWS writes it; an event
    dropped for its age before any run has no response members."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "timestamp": stamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
    }
    if executed_version is not None:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
        if function_error:
            response["functionError"] = function_error
        record["responseContext"] = response
        record["responsePayload"] = _json_or_text(response_payload or b"")
    return record
