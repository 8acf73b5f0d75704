"""Three services of the Serverless Framework's own examples (tests/services/sls-examples,
copied unchanged), deployed by `faasbox serve` and called on their routes with httpx."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support import SERVICES, RunningServer, lambda_client

EXAMPLES = SERVICES / "sls-examples"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([EXAMPLES], tmp_path_factory.mktemp("data")).start(timeout=300)
    yield running
    assert running.stop() == 0, "".join(running.output)


def test_flask_api_answers_its_routes_through_wsgi_handler(server: RunningServer) -> None:
    # serverless-wsgi's `wsgi_handler.handler`, provided by faasbox, serving Flask 1.1.4
    # installed from the service's requirements.txt.
    root = httpx.get(f"{server.url}/", timeout=30)
    assert root.status_code == 200
    assert root.json() == {"message": "Hello from root!"}
    assert root.headers["content-type"] == "application/json"
    assert httpx.get(f"{server.url}/hello", timeout=30).json() == {"message": "Hello from path!"}
    missing = httpx.get(f"{server.url}/no/such/page", timeout=30)
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not found!"}


def test_simple_http_endpoint_tells_the_time(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/time", timeout=30)
    assert response.status_code == 200
    message = response.json()["message"]
    assert re.fullmatch(r"Hello, the current time is \d\d:\d\d:\d\d(\.\d+)?", message), message


def test_rest_api_with_dynamodb_routes_reach_boto3(server: RunningServer) -> None:
    # No DynamoDB here: each handler imports boto3 (the runtime's) and fails at the call.
    for method, path in [("GET", "/todos"), ("GET", "/todos/1"), ("DELETE", "/todos/1")]:
        response = httpx.request(method, f"{server.url}{path}", timeout=30)
        assert response.status_code == 502, (method, path, response.text)
        assert response.headers["access-control-allow-origin"] == "*"  # `cors: true`
    aws = lambda_client(server.url, server.credentials)
    for name, event in [
        ("list", {}),
        ("get", {"pathParameters": {"id": "1"}}),
        ("create", {"body": json.dumps({"text": "buy milk"})}),
    ]:
        response = aws.invoke(
            FunctionName=f"serverless-rest-api-with-dynamodb-dev-{name}",
            Payload=json.dumps(event).encode(),
        )
        error = json.loads(response["Payload"].read())
        assert response["FunctionError"] == "Unhandled"
        # botocore's own error for the missing AWS credentials: imports and routing worked.
        assert error["errorType"] == "NoCredentialsError", error
        assert f"todos/{name}.py" in error["stackTrace"][0]  # the example's own frame first


def test_rest_api_validation_runs_before_any_dynamodb_call(server: RunningServer) -> None:
    aws = lambda_client(server.url, server.credentials)
    response = aws.invoke(
        FunctionName="serverless-rest-api-with-dynamodb-dev-create",
        Payload=json.dumps({"body": json.dumps({"no": "text"})}).encode(),
    )
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "Exception"
    assert error["errorMessage"] == "Couldn't create the todo item."
