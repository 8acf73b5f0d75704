"""Handlers the console tests drive: one that answers its event back, ones that fail, a
destination."""


def echo(event, context):
    print(f"echo got {sorted(event) if isinstance(event, dict) else type(event).__name__}")
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError(f"asked to fail: {event['fail']}")
    return {"received": event, "requestId": context.aws_request_id}


def failing(event, context):
    raise RuntimeError("this function always fails")


def size(event, context):
    """How large the request body was, as the function received it (base64 or not)."""
    body = event.get("body") or ""
    return {"bodyChars": len(body), "isBase64Encoded": event.get("isBase64Encoded")}


def unlucky(event, context):
    raise RuntimeError("unlucky again")


def audit(event, context):
    """A destination: takes the invocation record it is sent."""
    context_ = event.get("requestContext", {}) if isinstance(event, dict) else {}
    condition = context_.get("condition")
    print(f"audit got {condition}")
    return {"condition": condition}
