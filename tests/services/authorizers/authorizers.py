"""Authorizers as API Gateway calls them: each prints one AUTHORIZER line per invocation, so a
test counts its calls in the function's log."""

from typing import Any


def policy(principal: str, effect: str, resource: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


def token(event: dict[str, Any], context: Any) -> Any:
    token = event["authorizationToken"]
    print(f"AUTHORIZER {event['type']} {token}")
    arn = event["methodArn"]
    base = arn.split("/", 1)[0]  # arn:aws:execute-api:region:account:apiId
    if token.startswith("allow"):
        # Every method and path of every stage of this API, as most authorizers write it.
        return policy("alice", "Allow", f"{base}/*", {"user": "alice", "level": 7, "admin": True})
    if token == "only-token":
        return policy("carol", "Allow", f"{base}/*/GET/token", {})
    if token == "deny":
        return policy("mallory", "Deny", arn, {})
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token == "invalid":
        return {"principalId": "x"}  # no policy: API Gateway's 500
    raise RuntimeError(f"unexpected token {token}")


def request(event: dict[str, Any], context: Any) -> Any:
    user = event["headers"]["X-User"]
    print(f"AUTHORIZER {event['type']} {user}")
    effect = "Allow" if user == "bob" else "Deny"
    seen = {
        "key": event["queryStringParameters"]["key"],
        "item": event["pathParameters"]["item"],
        "resource": event["resource"],
        "method": event["httpMethod"],
    }
    return policy(user, effect, event["methodArn"], seen)


def simple(event: dict[str, Any], context: Any) -> Any:
    key = event["headers"]["x-key"]
    print(f"AUTHORIZER {event['type']} {event['version']} {key}")
    assert event["identitySource"] == [key]
    if key == "invalid":
        return {"allowed": True}
    return {
        "isAuthorized": key.startswith("open"),
        "context": {"key": key, "level": 3, "route": event["routeKey"]},
    }


def policy_v2(event: dict[str, Any], context: Any) -> Any:
    key = event["headers"]["x-key"]
    print(f"AUTHORIZER {event['type']} {event['version']} {key}")
    effect = "Allow" if key == "open" else "Deny"
    return policy("dave", effect, event["routeArn"], {"key": key})
