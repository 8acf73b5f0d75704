"""SigV4 at the edge (issue 11): a captured signed request cannot be changed by adding
headers: a second Authorization header or an unsigned X-Amz-Log-Type / X-Amz-Client-Context
is refused; the deploy API refuses authorizers faasbox cannot run and control characters
in the environment."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from faasbox.registry.access_keys import Credentials
from tests.support import EXAMPLES, RunningServer, lambda_client, signed_request


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([EXAMPLES / "hello"], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


@pytest.fixture(scope="module")
def credentials(server: RunningServer) -> Credentials:
    assert server.credentials is not None, "".join(server.output)
    return server.credentials


def captured(server: RunningServer, credentials: Credentials) -> dict[str, str]:
    """The headers of an Invoke request boto3's signer signed, as an eavesdropper sees them."""
    url = f"{server.url}/2015-03-31/functions/hello-dev-hello/invocations"
    request = AWSRequest(method="POST", url=url, data=b"{}", headers={})
    SigV4Auth(
        BotoCredentials(credentials.access_key_id, credentials.secret_access_key),
        "lambda",
        "us-east-1",
    ).add_auth(request)
    return dict(request.headers.items())


def replay(server: RunningServer, headers: list[tuple[str, str]]) -> httpx.Response:
    url = f"{server.url}/2015-03-31/functions/hello-dev-hello/invocations"
    return httpx.post(url, content=b"{}", headers=headers, timeout=30)


def test_the_captured_request_itself_is_accepted(
    server: RunningServer, credentials: Credentials
) -> None:
    response = replay(server, list(captured(server, credentials).items()))
    assert response.status_code == 200, response.text
    assert "x-amz-log-result" not in response.headers


@pytest.mark.parametrize("name", ["X-Amz-Log-Type", "X-Amz-Client-Context"])
def test_an_unsigned_header_that_changes_the_answer_is_refused(
    server: RunningServer, credentials: Credentials, name: str
) -> None:
    value = "Tail" if name == "X-Amz-Log-Type" else base64.b64encode(b"{}").decode()
    response = replay(server, [*captured(server, credentials).items(), (name, value)])
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"] == "IncompleteSignatureException"
    assert name.lower() in response.json()["Message"]
    assert "x-amz-log-result" not in response.headers


def test_the_same_header_signed_is_honoured(
    server: RunningServer, credentials: Credentials
) -> None:
    response = signed_request(
        "POST",
        f"{server.url}/2015-03-31/functions/hello-dev-hello/invocations",
        credentials,
        content=b"{}",
        headers={"X-Amz-Log-Type": "Tail"},
    )
    assert response.status_code == 200, response.text
    assert "REPORT" in base64.b64decode(response.headers["x-amz-log-result"]).decode()


def test_two_authorization_headers_are_refused(
    server: RunningServer, credentials: Credentials
) -> None:
    headers = captured(server, credentials)
    valid = headers.pop("Authorization")
    forged = valid.rsplit("Signature=", 1)[0] + "Signature=" + "0" * 64
    for pair in ([valid, forged], [forged, valid]):
        listed = [*headers.items(), *(("Authorization", v) for v in pair)]
        response = replay(server, listed)
        assert response.status_code == 403
        assert response.headers["x-amzn-errortype"] == "IncompleteSignatureException"
        assert "one Authorization header" in response.json()["Message"]


def deploy_body(config: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("handler.py", "def hello(event, context):\n    return 1\n")
    body = {
        "service": "edge",
        "functions": [{"name": "edge-fn", "handler": "handler.hello", **config}],
        "code_zip": base64.b64encode(buf.getvalue()).decode(),
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {
                "events": [
                    {
                        "http": {
                            "path": "/x",
                            "method": "get",
                            "authorizer": {"type": "COGNITO_USER_POOLS", "authorizerId": "a"},
                        }
                    }
                ]
            },
            "Function edge-fn, event http GET /x: authorizer key(s) authorizerId are not "
            "supported; faasbox supports",
        ),
        (
            {"events": [{"httpApi": {"path": "/x", "method": "GET", "authorizer": {"name": "j"}}}]},
            "Function edge-fn, event httpApi GET /x: authorizer 'j' is not one of "
            "provider.httpApi.authorizers (none)",
        ),
        ({"environment": {"A": "x\u0000y"}}, "control character U+0000"),
    ],
)
def test_the_deploy_api_refuses_what_cannot_be_served_safely(
    server: RunningServer, credentials: Credentials, config: dict[str, object], expected: str
) -> None:
    response = signed_request(
        "POST",
        f"{server.url}/_faasbox/deploy",
        credentials,
        content=deploy_body(config),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert expected in response.text
    functions = signed_request("GET", f"{server.url}/_faasbox/functions", credentials).json()
    assert "edge-fn" not in [f["name"] for f in functions["functions"]]


def test_create_function_refuses_a_nul_in_the_environment(
    server: RunningServer, credentials: Credentials
) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("handler.py", "def hello(event, context):\n    return 1\n")
    client = lambda_client(server.url, credentials)
    with pytest.raises(client.exceptions.InvalidParameterValueException, match="U\\+0000"):
        client.create_function(
            FunctionName="nul-env",
            Runtime="python3.11",
            Role="arn:aws:iam::000000000000:role/x",
            Handler="handler.hello",
            Code={"ZipFile": buf.getvalue()},
            Environment={"Variables": {"TOKEN": "x\0y"}},
        )
