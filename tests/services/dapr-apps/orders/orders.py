"""Orders kept in Dapr's state store through the Dapr HTTP API faasbox serves."""

import json
import os
import urllib.error
import urllib.request

DAPR = os.environ.get("DAPR_HTTP_ENDPOINT", "")
STORE = f"{DAPR}/v1.0/state/statestore"


def _call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def handle(event, context):
    if event["requestContext"]["http"]["method"] == "POST":
        order = json.loads(event["body"])
        _call("POST", STORE, [{"key": f"order-{order['id']}", "value": order}])
        return {"statusCode": 201, "body": json.dumps({"saved": order["id"]})}
    status, body = _call("GET", f"{STORE}/order-{event['pathParameters']['id']}")
    if status == 204:
        return {"statusCode": 404, "body": json.dumps({"error": "no such order"})}
    headers = {"content-type": "application/json"}
    return {"statusCode": 200, "headers": headers, "body": body.decode()}


def _append(key, entry):
    status, body = _call("GET", f"{STORE}/{key}")
    seen = json.loads(body) if status == 200 else []
    _call("POST", STORE, [{"key": key, "value": [*seen, entry]}])


def on_event(event, context):
    """Records each delivery; answers as the event's data asks (SUCCESS, RETRY, DROP)."""
    data = event.get("data") or {}
    _append(f"deliveries-{data.get('id')}", {"id": event["id"], "topic": event["topic"]})
    return {"status": data.get("answer", "SUCCESS")}


def on_dead_letter(event, context):
    data = event.get("data") or {}
    _append(f"dead-{data.get('id')}", {"topic": event["topic"], "pubsub": event["pubsubname"]})
    return {"status": "SUCCESS"}
