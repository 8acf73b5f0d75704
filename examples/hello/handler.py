"""A greeting built from the event: the smallest useful Lambda function."""

import os


def hello(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print(f"greeting {name}")
    return {
        "message": f"{os.environ['GREETING']}, {name}!",
        "requestId": context.aws_request_id,
        "function": context.function_name,
        "remainingMs": context.get_remaining_time_in_millis(),
    }
