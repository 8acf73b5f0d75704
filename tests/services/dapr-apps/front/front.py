"""Fetches an order from the `orders` app through /v1.0/invoke (DAPR_HTTP_ENDPOINT)."""

import json
import os
import urllib.error
import urllib.request


def handle(event, context):
    order_id = event["pathParameters"]["id"]
    url = f"{os.environ['DAPR_HTTP_ENDPOINT']}/v1.0/invoke/orders/method/orders/{order_id}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    return {"statusCode": 200, "body": json.dumps({"via": "dapr", "status": status,
                                                    "order": json.loads(body)})}
