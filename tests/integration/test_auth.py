"""SigV4 authentication of a real server, with the real clients: boto3, the AWS CLI, curl
--aws-sigv4, and the faasbox CLI; keys issued with `faasbox keys` while the server runs."""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import botocore
import botocore.exceptions
import httpx
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

from faasbox.registry.access_keys import Credentials, read_credentials_file
from tests.support import (
    EXAMPLES,
    ROOT,
    RunningServer,
    aws_cli_path,
    clean_env,
    lambda_client,
    signed_request,
    wait_until,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([EXAMPLES / "hello"], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


@pytest.fixture(scope="module")
def credentials(server: RunningServer) -> Credentials:
    assert server.credentials is not None, "".join(server.output)
    return server.credentials


def invoke_url(server: RunningServer, name: str = "hello-dev-hello") -> str:
    return f"{server.url}/2015-03-31/functions/{name}/invocations"


def faasbox(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faasbox", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def error_of(info: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[int, str, str]:
    response: Any = info.value.response
    error = response["Error"]
    return response["ResponseMetadata"]["HTTPStatusCode"], error["Code"], error["Message"]


# --- what `faasbox serve` sets up ---


def test_first_start_creates_an_admin_key_in_a_private_credentials_file(
    server: RunningServer, credentials: Credentials
) -> None:
    text = "".join(server.output)
    path = server.data_dir / "credentials"
    assert f"Created the admin access key {credentials.access_key_id}" in text
    assert str(path) in text
    assert credentials.secret_access_key not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("[faasbox]\naws_access_key_id = AKIA")
    assert len(credentials.access_key_id) == 20 and credentials.access_key_id.startswith("AKIA")
    assert len(credentials.secret_access_key) == 40
    master = server.data_dir / "master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600


def test_no_secret_is_stored_in_plaintext(server: RunningServer, credentials: Credentials) -> None:
    created = faasbox("keys", "create", "-d", "plaintext check", env=server.client_env())
    assert created.returncode == 0, created.stderr
    other = read_credentials(created.stdout)
    secrets = [credentials.secret_access_key.encode(), other.secret_access_key.encode()]
    databases = list(server.data_dir.glob("registry.sqlite3*"))
    assert databases
    for path in databases:
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, path
    # The key ids are there (a reader of the file learns which keys exist, nothing usable).
    assert any(credentials.access_key_id.encode() in p.read_bytes() for p in databases)
    # Nowhere in the data dir but the credentials file `faasbox serve` wrote for its admin.
    for path in server.data_dir.rglob("*"):
        if path.is_file() and path.name != "credentials":
            data = path.read_bytes()
            assert not any(secret in data for secret in secrets), path


# --- boto3 ---


def test_signed_boto3_invoke_works(server: RunningServer, credentials: Credentials) -> None:
    aws = lambda_client(server.url, credentials)
    response = aws.invoke(FunctionName="hello-dev-hello", Payload=b'{"name": "signed"}')
    assert json.loads(response["Payload"].read())["message"] == "Hello, signed!"


def test_any_region_in_the_credential_scope_is_accepted(
    server: RunningServer, credentials: Credentials
) -> None:
    response = signed_request(
        "POST", invoke_url(server), credentials, content=b'{"name": "eu"}', region="eu-west-1"
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Hello, eu!"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/2015-03-31/functions/hello-dev-hello/invocations"),
        ("GET", "/2015-03-31/functions/"),
        ("GET", "/_faasbox/functions"),
        ("POST", "/_faasbox/deploy"),
        ("DELETE", "/_faasbox/functions/hello-dev-hello"),
    ],
)
def test_unsigned_requests_are_missing_authentication_token(
    server: RunningServer, method: str, path: str
) -> None:
    response = httpx.request(method, f"{server.url}{path}", content=b"{}")
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert response.json()["Message"] == "Missing Authentication Token"


def test_health_and_api_gateway_routes_stay_public(server: RunningServer) -> None:
    health = httpx.get(f"{server.url}/_faasbox/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    route = httpx.get(f"{server.url}/hello")  # hello's httpApi event: no signature
    assert route.status_code == 200, route.text
    assert route.json()["message"] == "Hello, world!"


def test_unsigned_boto3_is_refused(server: RunningServer) -> None:
    import boto3

    aws = boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(signature_version=botocore.UNSIGNED, retries={"total_max_attempts": 1}),
    )
    with pytest.raises(botocore.exceptions.ClientError) as info:
        aws.invoke(FunctionName="hello-dev-hello", Payload=b"{}")
    assert error_of(info)[:2] == (403, "MissingAuthenticationTokenException")


def test_wrong_secret_is_invalid_signature(server: RunningServer, credentials: Credentials) -> None:
    aws = lambda_client(server.url, Credentials(credentials.access_key_id, "x" * 40))
    with pytest.raises(botocore.exceptions.ClientError) as info:
        aws.invoke(FunctionName="hello-dev-hello", Payload=b"{}")
    status, code, message = error_of(info)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")


def test_unknown_key_is_unrecognized_client(server: RunningServer) -> None:
    aws = lambda_client(server.url, Credentials("AKIAIOSFODNN7EXAMPLE", "y" * 40))
    with pytest.raises(botocore.exceptions.ClientError) as info:
        aws.invoke(FunctionName="hello-dev-hello", Payload=b"{}")
    assert error_of(info) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_tampered_body_is_refused(server: RunningServer, credentials: Credentials) -> None:
    request = AWSRequest(method="POST", url=invoke_url(server), data=b'{"name": "a"}')
    from botocore.auth import SigV4Auth

    SigV4Auth(
        BotoCredentials(credentials.access_key_id, credentials.secret_access_key),
        "lambda",
        "us-east-1",
    ).add_auth(request)
    headers = dict(request.headers.items())
    ok = httpx.post(invoke_url(server), content=b'{"name": "a"}', headers=headers)
    assert ok.status_code == 200 and ok.json()["message"] == "Hello, a!"
    tampered = httpx.post(invoke_url(server), content=b'{"name": "b"}', headers=headers)
    assert tampered.status_code == 403
    assert tampered.headers["x-amzn-errortype"] == "InvalidSignatureException"


def signed_at(
    server: RunningServer, credentials: Credentials, moment: datetime.datetime
) -> httpx.Response:
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        return signed_request("POST", invoke_url(server), credentials, content=b"{}")


def test_a_request_replayed_after_five_minutes_is_refused(
    server: RunningServer, credentials: Credentials
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    recent = signed_at(server, credentials, now - datetime.timedelta(minutes=4))
    assert recent.status_code == 200 and recent.json()["message"] == "Hello, world!"
    old = signed_at(server, credentials, now - datetime.timedelta(minutes=6))
    assert old.status_code == 403
    assert old.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert old.json()["Message"].startswith("Signature expired: ")
    assert old.json()["Message"].endswith(" - 5 min.)")


def test_a_request_from_the_future_is_refused(
    server: RunningServer, credentials: Credentials
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    future = signed_at(server, credentials, now + datetime.timedelta(minutes=6))
    assert future.status_code == 403
    assert future.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert future.json()["Message"].startswith("Signature not yet current: ")


def test_presigned_url_works(server: RunningServer, credentials: Credentials) -> None:
    request = AWSRequest(method="GET", url=f"{server.url}/_faasbox/functions")
    SigV4QueryAuth(
        BotoCredentials(credentials.access_key_id, credentials.secret_access_key),
        "lambda",
        "us-east-1",
        expires=60,
    ).add_auth(request)
    response = httpx.get(request.url)
    assert response.status_code == 200, response.text
    assert any(f["name"] == "hello-dev-hello" for f in response.json()["functions"])


# --- the AWS CLI ---


def aws_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [aws_cli_path(), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_aws_cli_with_the_credentials_file_profile(server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "config").write_text("")
    env = clean_env(
        AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "credentials"),
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_PROFILE="faasbox",
    )
    done = aws_cli(
        "lambda",
        "invoke",
        "--endpoint-url",
        server.url,
        "--region",
        "us-east-1",
        "--function-name",
        "hello-dev-hello",
        "--payload",
        '{"name": "aws cli"}',
        "out.json",
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out.json").read_text())["message"] == "Hello, aws cli!"


def test_aws_cli_with_a_wrong_secret(
    server: RunningServer, credentials: Credentials, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text("")
    env = clean_env(
        AWS_ACCESS_KEY_ID=credentials.access_key_id,
        AWS_SECRET_ACCESS_KEY="z" * 40,
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    done = aws_cli(
        "lambda",
        "invoke",
        "--endpoint-url",
        server.url,
        "--region",
        "us-east-1",
        "--function-name",
        "hello-dev-hello",
        "out.json",
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 255  # AWS CLI v1: a service error
    assert "(InvalidSignatureException)" in done.stderr
    assert not (tmp_path / "out.json").exists()


# --- curl --aws-sigv4 ---


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", *args], capture_output=True, text=True, env=clean_env(), timeout=60
    )


def test_curl_aws_sigv4_as_the_readme_shows(
    server: RunningServer, credentials: Credentials
) -> None:
    user = f"{credentials.access_key_id}:{credentials.secret_access_key}"
    done = curl(
        "--aws-sigv4",
        "aws:amz:us-east-1:lambda",
        "--user",
        user,
        "-X",
        "POST",
        invoke_url(server) + "?Qualifier=%24LATEST",
        "-d",
        '{"name": "curl"}',
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["message"] == "Hello, curl!"


def test_curl_with_a_wrong_secret(server: RunningServer, credentials: Credentials) -> None:
    done = curl(
        "--aws-sigv4",
        "aws:amz:us-east-1:lambda",
        "--user",
        f"{credentials.access_key_id}:wrong",
        "-i",
        "-X",
        "POST",
        invoke_url(server),
        "-d",
        "{}",
    )
    assert done.stdout.startswith("HTTP/1.1 403")
    assert "x-amzn-errortype: InvalidSignatureException" in done.stdout


# --- keys issued and deleted while the server runs ---


def read_credentials(text: str) -> Credentials:
    lines = dict(
        line.split(" = ", 1) for line in text.splitlines() if " = " in line and "[" not in line
    )
    return Credentials(lines["aws_access_key_id"], lines["aws_secret_access_key"])


def test_keys_created_while_serving_work_at_once_and_deleted_ones_stop(
    server: RunningServer,
) -> None:
    env = clean_env()
    created = faasbox(
        "keys", "create", "--description", "ci bot", "--data-dir", str(server.data_dir), env=env
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("[faasbox]\n")
    assert "shown only now" in created.stderr
    key = read_credentials(created.stdout)
    response = signed_request("POST", invoke_url(server), key, content=b'{"name": "new"}')
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Hello, new!"

    listed = faasbox("keys", "list", env=server.client_env())
    assert listed.returncode == 0, listed.stderr
    assert key.access_key_id in listed.stdout and "ci bot" in listed.stdout
    assert key.secret_access_key not in listed.stdout

    deleted = faasbox("keys", "delete", key.access_key_id, env=server.client_env())
    assert deleted.returncode == 0, deleted.stderr

    # The server rereads the key file when it changes: wait for it to refuse the key.
    def refused() -> httpx.Response | None:
        response = signed_request("POST", invoke_url(server), key, content=b"{}")
        return response if response.status_code == 403 else None

    response = wait_until(refused, 30, "the server to refuse the deleted key")
    assert response.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    again = faasbox("keys", "delete", key.access_key_id, env=server.client_env())
    assert again.returncode == 1 and "no access key" in again.stderr


# --- the faasbox CLI's credentials ---


def test_cli_reads_the_aws_shared_credentials_file(
    server: RunningServer, credentials: Credentials, tmp_path: Path
) -> None:
    shared = tmp_path / "aws-credentials"
    shared.write_text(
        "[default]\naws_access_key_id = AKIAWRONGWRONGWRONG0\naws_secret_access_key = x\n\n"
        f"[edge]\naws_access_key_id = {credentials.access_key_id}\n"
        f"aws_secret_access_key = {credentials.secret_access_key}\n"
    )
    env = clean_env(
        FAASBOX_URL=server.url, AWS_SHARED_CREDENTIALS_FILE=str(shared), AWS_PROFILE="edge"
    )
    done = faasbox("ls", env=env, cwd=tmp_path)  # no ./.faasbox here
    assert done.returncode == 0, done.stderr
    assert "hello-dev-hello" in done.stdout


def test_cli_environment_credentials_come_first_and_errors_say_which_key(
    server: RunningServer, credentials: Credentials
) -> None:
    env = server.client_env(
        AWS_ACCESS_KEY_ID=credentials.access_key_id, AWS_SECRET_ACCESS_KEY="w" * 40
    )
    done = faasbox("invoke", "-f", "hello", env=env)
    assert done.returncode == 1
    assert "does not match the signature you provided" in done.stderr
    assert f"access key {credentials.access_key_id} from AWS_ACCESS_KEY_ID" in done.stderr
    assert "Canonical String" not in done.stderr
    unknown = server.client_env(
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE", AWS_SECRET_ACCESS_KEY="w" * 40
    )
    done = faasbox("invoke", "-f", "hello", env=unknown)
    assert done.returncode == 1
    assert "The security token included in the request is invalid." in done.stderr
    assert "faasbox keys create" in done.stderr


# --- --no-auth ---


def test_no_auth_server_accepts_unsigned_requests_and_warns(tmp_path: Path) -> None:
    running = RunningServer([EXAMPLES / "hello"], tmp_path, "--no-auth").start()
    try:
        text = "".join(running.output)
        assert "WARNING: authentication is OFF (--no-auth)" in text
        assert running.credentials is None
        assert not (tmp_path / "credentials").exists()
        response = httpx.post(invoke_url(running), content=b'{"name": "open"}')
        assert response.json()["message"] == "Hello, open!"
        listed = faasbox("ls", env=clean_env(FAASBOX_URL=running.url), cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "hello-dev-hello" in listed.stdout
    finally:
        assert running.stop() == 0


def test_no_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    done = faasbox(
        "serve",
        str(EXAMPLES / "hello"),
        "--no-auth",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        env=clean_env(),
    )
    assert done.returncode == 2
    assert "--i-know-this-is-unsafe" in done.stderr
    assert not list(tmp_path.iterdir())  # refused before anything was set up


def test_master_key_from_the_environment_is_not_written_to_disk(tmp_path: Path) -> None:
    import base64

    master = base64.b64encode(os.urandom(32)).decode()
    running = RunningServer([EXAMPLES / "hello"], tmp_path).start(
        env={"FAASBOX_MASTER_KEY": master}
    )
    try:
        assert not (tmp_path / "master.key").exists()
        assert running.credentials is not None
        aws = lambda_client(running.url, running.credentials)
        answer = aws.invoke(FunctionName="hello-dev-hello", Payload=b'{"name": "keyed"}')
        assert json.loads(answer["Payload"].read())["message"] == "Hello, keyed!"
    finally:
        assert running.stop() == 0
    # Without the master key, the server cannot read its keys and says so.
    again = RunningServer([EXAMPLES / "hello"], tmp_path)
    with pytest.raises(RuntimeError, match="FAASBOX_MASTER_KEY"):
        again.start()
    assert read_credentials_file(tmp_path / "credentials", "faasbox") == running.credentials


def test_unsigned_large_upload_is_refused_before_its_body(server: RunningServer) -> None:
    """The 403 comes back while the client has sent only the headers of a 60 MB upload."""
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 60000000\r\n\r\n"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"MissingAuthenticationTokenException" in answer
