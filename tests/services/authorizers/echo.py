import json
from typing import Any


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "body": json.dumps(
            {
                "authorizer": event["requestContext"].get("authorizer"),
                "identity": event["requestContext"].get("identity"),
            }
        ),
    }
