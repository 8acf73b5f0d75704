"""A handler run by awslambdaric (vendored), through faasbox's Runtime API."""

import awslambdaric


def handler(event, context):
    query = event.get("queryStringParameters") or {}
    if event.get("fail") or query.get("mode") == "fail":
        raise ValueError("the event asked to fail")
    print("handling", context.aws_request_id)
    return {
        "echo": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ms_positive": context.get_remaining_time_in_millis() > 0,
        "ric": awslambdaric.__file__,
        "custom": context.client_context.custom if context.client_context else None,
        "runtime": "awslambdaric",
    }


def hello(event, context):
    """The benchmarks' hello."""
    return {"message": "Hello"}
