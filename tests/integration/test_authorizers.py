"""Lambda authorizers of `http` routes (issue 11): real TOKEN and REQUEST authorizer functions
on a real server decide, their context reaches the route's function, their answers are cached
per identity, and failures get API Gateway's own answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from faasbox.registry.access_keys import Credentials
from tests.support import RunningServer, signed_request

SERVICE = Path(__file__).resolve().parent.parent / "services" / "authorizers"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([SERVICE], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


def get(server: RunningServer, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=60)


def calls(server: RunningServer, function: str, marker: str) -> int:
    """How many times the authorizer was invoked with this identity, from its log."""
    assert server.credentials is not None
    credentials: Credentials = server.credentials
    url = f"{server.url}/_faasbox/functions/authz-dev-{function}/logs?limit=1000"
    records = signed_request("GET", url, credentials).json()["records"]
    return sum(r["log"].count(f"AUTHORIZER {marker}\n") for r in records)


def test_an_allowed_token_reaches_the_function_with_its_context(server: RunningServer) -> None:
    response = get(server, "/token", Authorization="allow-context")
    assert response.status_code == 200, response.text
    authorizer = response.json()["authorizer"]
    assert authorizer["principalId"] == "alice"
    # A REST API hands the function the context's values as strings.
    assert (authorizer["user"], authorizer["level"], authorizer["admin"]) == (
        "alice",
        "7",
        "true",
    )
    assert isinstance(authorizer["integrationLatency"], int)


def test_the_answer_is_cached_per_identity(server: RunningServer) -> None:
    token = f"allow-{uuid.uuid4().hex}"
    for path in ("/token", "/token", "/other"):
        assert get(server, path, Authorization=token).status_code == 200
    assert calls(server, "tokenAuth", f"TOKEN {token}") == 1
    other = f"allow-{uuid.uuid4().hex}"
    assert get(server, "/token", Authorization=other).status_code == 200
    assert calls(server, "tokenAuth", f"TOKEN {other}") == 1


def test_a_ttl_of_zero_calls_the_authorizer_every_time(server: RunningServer) -> None:
    token = "allow-" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex)
    for _ in range(2):
        assert get(server, "/fresh", **{"X-Token": token}).status_code == 200
    assert calls(server, "tokenAuth", f"TOKEN {token}") == 2


def test_a_cached_policy_is_evaluated_against_each_route(server: RunningServer) -> None:
    assert get(server, "/token", Authorization="only-token").status_code == 200
    response = get(server, "/other", Authorization="only-token")
    assert response.status_code == 403
    assert response.json() == {"Message": "User is not authorized to access this resource"}


def test_an_explicit_deny_is_403(server: RunningServer) -> None:
    response = get(server, "/token", Authorization="deny")
    assert response.status_code == 403
    assert response.json() == {
        "Message": "User is not authorized to access this resource with an explicit deny"
    }
    assert response.headers["x-amzn-errortype"] == "AccessDeniedException"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/token", {}),
        ("/token", {"Authorization": "unauthorized"}),  # the authorizer raised "Unauthorized"
        ("/fresh", {"X-Token": "NOT-VALID-123"}),  # fails identityValidationExpression
        ("/request/a?key=k", {}),
        ("/request/a", {"X-User": "bob"}),  # one of two identity sources is missing
    ],
)
def test_a_missing_identity_is_401(
    server: RunningServer, path: str, headers: dict[str, str]
) -> None:
    response = get(server, path, **headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize("token", ["invalid", "crash"])
def test_an_authorizer_that_fails_is_500(server: RunningServer, token: str) -> None:
    response = get(server, "/token", Authorization=token)
    assert response.status_code == 500
    assert response.json() == {"message": None}


def test_a_request_authorizer_sees_the_request(server: RunningServer) -> None:
    response = get(server, "/request/item-1?key=k1", **{"X-User": "bob"})
    assert response.status_code == 200, response.text
    authorizer = response.json()["authorizer"]
    assert authorizer["principalId"] == "bob"
    assert authorizer["key"] == "k1"
    assert authorizer["item"] == "item-1"
    assert (authorizer["resource"], authorizer["method"]) == ("/request/{item}", "GET")
    assert get(server, "/request/item-1?key=k1", **{"X-User": "eve"}).status_code == 403


def test_a_route_without_an_authorizer_is_open(server: RunningServer) -> None:
    response = get(server, "/open")
    assert response.status_code == 200
    assert response.json()["authorizer"] is None


def iam_signed(server: RunningServer, service: str, body: bytes) -> dict[str, str]:
    """Headers of a POST /iam that botocore's signer signed for `service`."""
    assert server.credentials is not None
    request = AWSRequest(method="POST", url=f"{server.url}/iam", data=body, headers={})
    SigV4Auth(
        BotoCredentials(server.credentials.access_key_id, server.credentials.secret_access_key),
        service,
        "us-east-1",
    ).add_auth(request)
    return dict(request.headers.items())


def test_aws_iam_accepts_a_request_signed_by_a_faasbox_key(server: RunningServer) -> None:
    assert server.credentials is not None
    body = b'{"hello": 1}'
    response = httpx.post(
        f"{server.url}/iam", content=body, headers=iam_signed(server, "execute-api", body)
    )
    assert response.status_code == 200, response.text
    identity = response.json()["identity"]
    key = server.credentials.access_key_id
    assert (identity["accessKey"], identity["caller"], identity["user"]) == (key, key, key)
    assert identity["userArn"].endswith(f":user/{key}")


def test_aws_iam_refuses_an_unsigned_request(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/iam", content=b"{}")
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize("case", ["changed body", "lambda scope"])
def test_aws_iam_refuses_a_bad_signature(server: RunningServer, case: str) -> None:
    service = "lambda" if case == "lambda scope" else "execute-api"
    headers = iam_signed(server, service, b"{}")
    content = b'{"x": 1}' if case == "changed body" else b"{}"
    response = httpx.post(f"{server.url}/iam", content=content, headers=headers)
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_a_simple_v2_authorizer_allows_and_its_context_reaches_the_function(
    server: RunningServer,
) -> None:
    key = f"open-{uuid.uuid4().hex}"
    for _ in range(2):
        response = get(server, "/v2/simple", **{"X-Key": key})
        assert response.status_code == 200, response.text
    # The HTTP API keeps the context's types.
    assert response.json()["authorizer"] == {
        "lambda": {"key": key, "level": 3, "route": "GET /v2/simple"}
    }
    assert calls(server, "simpleAuth", f"REQUEST 2.0 {key}") == 1  # cached 300 s


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({"X-Key": "closed"}, 403, {"message": "Forbidden"}),
        ({}, 401, {"message": "Unauthorized"}),
        ({"X-Key": "invalid"}, 500, {"message": "Internal Server Error"}),
    ],
)
def test_a_simple_v2_authorizer_refuses(
    server: RunningServer, headers: dict[str, str], status: int, body: dict[str, str]
) -> None:
    response = get(server, "/v2/simple", **headers)
    assert response.status_code == status
    assert response.json() == body


def test_a_v2_authorizer_with_an_iam_policy(server: RunningServer) -> None:
    response = get(server, "/v2/policy", **{"X-Key": "open"})
    assert response.status_code == 200, response.text
    assert response.json()["authorizer"] == {"lambda": {"key": "open"}, "principalId": "dave"}
    denied = get(server, "/v2/policy", **{"X-Key": "shut"})
    assert denied.status_code == 403
    assert denied.json() == {"message": "Forbidden"}
    get(server, "/v2/policy", **{"X-Key": "open"})
    assert calls(server, "policyAuth", "REQUEST 2.0 open") == 2  # resultTtlInSeconds: 0
