"""`faasbox serve --database postgresql://...` as a user runs it: a real server on a real
PostgreSQL database deploys (serverless.yml and the Lambda API) and invokes; a second gateway
with an empty data dir of its own, on the same database, serves all of it after the first
stopped: functions, published versions, code, keys, invocation logs, the async queue."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.postgres import PostgresServer
from tests.support import ROOT, RunningServer, clean_env, lambda_client, signed_request

EXAMPLES = ROOT / "examples"
HANDLER = "def handler(event, context):\n    print('made by the API')\n    return {'got': event}\n"


@pytest.fixture
def database_url(postgres: PostgresServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.database(name)
    yield postgres.url(name)
    postgres.drop(name)


def a_zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", text)
    return buffer.getvalue()


def test_a_second_gateway_on_the_same_database_serves_what_the_first_deployed(
    tmp_path: Path, database_url: str
) -> None:
    master = {"FAASBOX_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    first = RunningServer(
        [EXAMPLES / "hello"], tmp_path / "gateway-a", "--database", database_url
    ).start(env=master)
    try:
        assert first.credentials is not None
        aws = lambda_client(first.url, first.credentials)
        aws.create_function(
            FunctionName="made-by-api",
            Runtime="python3.11",
            Role="arn:aws:iam::000000000000:role/x",
            Handler="app.handler",
            Code={"ZipFile": a_zip(HANDLER)},
        )
        version = aws.publish_version(FunctionName="made-by-api")["Version"]
        reply = aws.invoke(FunctionName="made-by-api", Payload=b'{"n": 1}')
        assert json.loads(reply["Payload"].read()) == {"got": {"n": 1}}
        queued = aws.invoke(FunctionName="made-by-api", InvocationType="Event", Payload=b"{}")
        assert queued["StatusCode"] == 202
        assert httpx.get(f"{first.url}/hello", timeout=30).json()["message"] == "Hello, world!"
        code_sha = aws.get_function(FunctionName="made-by-api")["Configuration"]["CodeSha256"]
    finally:
        assert first.stop() == 0, "".join(first.output)

    # The same service again (an unchanged redeploy), and everything the Lambda API made.
    second = RunningServer([EXAMPLES / "hello"], tmp_path / "gateway-b").start(
        env={**master, "FAASBOX_DATABASE": database_url}  # the variable, this time
    )
    try:
        assert second.credentials is None  # the database had a key: no new admin key
        # The first gateway's invocation logs are in the database (searched there by text).
        found = signed_request(
            "GET",
            f"{second.url}/_faasbox/functions/made-by-api/logs",
            first.credentials,
            params={"filter": "made by the API", "limit": 0},
        )
        assert found.status_code == 200, found.text
        assert "made by the API" in found.text
        aws = lambda_client(second.url, first.credentials)  # the first gateway's key works
        got = aws.get_function(FunctionName="made-by-api")["Configuration"]
        assert got["CodeSha256"] == code_sha
        reply = aws.invoke(FunctionName="made-by-api", Qualifier=version, Payload=b'"again"')
        assert json.loads(reply["Payload"].read()) == {"got": "again"}
        assert (tmp_path / "gateway-b" / "code").is_dir()  # unpacked into its own cache
        assert httpx.get(f"{second.url}/hello", timeout=30).json()["message"] == "Hello, world!"
        # The new gateway's invocation, with its log tail.
        logs = aws.invoke(FunctionName="made-by-api", LogType="Tail", Payload=b"{}")
        assert "made by the API" in base64.b64decode(logs["LogResult"]).decode()
    finally:
        assert second.stop() == 0, "".join(second.output)

    listed = subprocess.run(
        [sys.executable, "-m", "faasbox", "keys", "list", "--database", database_url],
        capture_output=True, text=True, env=clean_env(**master), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert first.credentials.access_key_id in listed.stdout


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://root@localhost/x", "unsupported database mysql://root@localhost/x"),
        ("postgresql://me:secret@127.0.0.1:1/none", "cannot use the database"),
    ],
)
def test_a_database_that_cannot_be_used_is_a_clear_error(
    tmp_path: Path, url: str, said: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "faasbox", "serve", str(EXAMPLES / "hello"), "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--database", url],
        capture_output=True, text=True, env=clean_env(), cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "secret" not in done.stderr  # the password is not printed
