"""Fetches an order from the `orders` app through Dapr's service invocation, with the real
Dapr SDK (DaprClient finds faasbox's Dapr APIs through DAPR_HTTP_ENDPOINT/DAPR_GRPC_ENDPOINT)."""

import json

from dapr.clients import DaprClient


def handle(event, context):
    order_id = event["pathParameters"]["id"]
    with DaprClient() as client:
        response = client.invoke_method("orders", f"orders/{order_id}", http_verb="GET")
        saved = client.get_state("statestore", f"order-{order_id}")
    return {
        "statusCode": 200,
        "body": json.dumps(
            {"via": "dapr-sdk", "order": json.loads(response.data), "state": json.loads(saved.data)}
        ),
    }
