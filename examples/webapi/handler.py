"""Handlers as they are written for API Gateway's Lambda proxy integrations."""

import json


def echo(event, context):
    """Returns the event it got, so a caller can see what API Gateway passed."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(event),
    }


def item(event, context):
    params = event.get("pathParameters") or {}
    query = event.get("queryStringParameters") or {}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Item": params.get("id", "special")},
        "multiValueHeaders": {"X-Multi": ["one", "two"]},
        "body": json.dumps({"id": params.get("id"), "query": query, "resource": event["resource"]}),
    }


def binary(event, context):
    """Sends the request body back byte for byte, with its content type."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        import base64

        body = base64.b64encode(body.encode()).decode()
    return {
        "statusCode": 200,
        "headers": {"Content-Type": headers.get("content-type", "application/octet-stream")},
        "body": body,
        "isBase64Encoded": True,
    }


def plain(event, context):
    """HTTP API's shortcut: a plain value becomes a 200 JSON response."""
    return {"hello": "world", "path": event["rawPath"]}


def cookies(event, context):
    return {
        "statusCode": 200,
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": json.dumps({"received": event.get("cookies", [])}),
    }


def secret(event, context):
    return {"statusCode": 200, "body": "the secret"}


def malformed(event, context):
    return {"statusCode": "not a number", "body": {"not": "a string"}}


def fails(event, context):
    raise ValueError("this route always fails")
