"""The `faasbox` command as a person types it, against a real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    EXAMPLES,
    ROOT,
    LineReader,
    RunningServer,
    clean_env,
    lambda_client,
    wait_until,
)


def faasbox(
    *args: str,
    server: RunningServer | None = None,
    url: str | None = None,
    cwd: Path = ROOT,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """The CLI as its user runs it: against `server` (its URL, and its data dir as FAASBOX_HOME
    for the credentials file) or against `url` with no credentials."""
    env = server.client_env() if server is not None else clean_env()
    if url:
        env["FAASBOX_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "faasbox", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([EXAMPLES], tmp_path_factory.mktemp("data")).start()
    yield running
    running.stop()


def test_serve_prints_try_lines_that_work(server: RunningServer) -> None:
    text = "".join(server.output)
    assert f"serving on {server.url}" in text
    assert server.credentials is not None
    assert server.credentials.secret_access_key not in text
    tries = text.split("Try:\n", 1)[1].split("Press Ctrl+C", 1)[0]
    commands = [line.strip() for line in tries.splitlines() if line.strip()]
    assert any(c.startswith("curl -s --aws-sigv4 ") for c in commands), commands
    assert any("faasbox invoke" in c for c in commands), commands
    # Pasted into a shell as printed (the venv's bin on PATH, as after `make run`).
    env = clean_env(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-ec", "\n".join(commands)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Hello, you!") == 2, done.stdout  # faasbox invoke, then curl
    assert "START RequestId: " in done.stderr


def test_cli_without_credentials_says_where_to_get_them(server: RunningServer) -> None:
    done = faasbox("ls", url=server.url)
    assert done.returncode == 1
    assert "requires signed requests and no credentials were found" in done.stderr
    assert "Traceback" not in done.stderr


def test_invoke_with_log(server: RunningServer) -> None:
    done = faasbox("invoke", "-f", "hello", "-d", '{"name":"x"}', "--log", server=server)
    assert done.returncode == 0, done.stderr
    assert '"message": "Hello, x!"' in done.stdout
    assert "START RequestId: " in done.stderr
    assert "greeting x" in done.stderr
    assert "END RequestId: " in done.stderr
    assert "REPORT RequestId: " in done.stderr and "Max Memory Used: " in done.stderr


def test_invoke_function_error_exits_non_zero(server: RunningServer) -> None:
    done = faasbox("invoke", "-f", "raising", server=server)
    assert done.returncode == 1
    assert '"errorType": "OddError"' in done.stderr


def test_invoke_missing_function(server: RunningServer) -> None:
    done = faasbox("invoke", "-f", "nope", server=server)
    assert done.returncode == 1
    assert "Function not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_invoke_with_payload_file(server: RunningServer, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"name": "file"}')
    done = faasbox("invoke", "-f", "hello", "-p", str(event), server=server)
    assert '"message": "Hello, file!"' in done.stdout


def test_logs_and_ls(server: RunningServer) -> None:
    faasbox("invoke", "-f", "hello", "-d", '{"name":"logged"}', server=server)
    done = faasbox("logs", "-f", "hello", server=server)
    assert done.returncode == 0
    assert "greeting logged" in done.stdout
    listing = faasbox("ls", server=server)
    assert listing.returncode == 0
    for name in ("hello-dev-hello", "limits-dev-sleepy", "limits-dev-raising"):
        assert name in listing.stdout


def test_logs_tail_follows_new_invocations(server: RunningServer) -> None:
    env = server.client_env()
    faasbox("invoke", "-f", "hello", "-d", '{"name":"before"}', server=server)
    tail = subprocess.Popen(
        [sys.executable, "-m", "faasbox", "logs", "-f", "hello", "--tail", "-n", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        output = LineReader(tail.stdout)
        # Its first page (the last invocation) is printed: it is following from here on.
        wait_until(lambda: "greeting before" in output.text, 60, "the tail's first page")
        faasbox("invoke", "-f", "hello", "-d", '{"name":"tailed"}', server=server)
        wait_until(lambda: "greeting tailed" in output.text, 60, "the new invocation's log")
        assert output.text.index("greeting before") < output.text.index("greeting tailed")
    finally:
        tail.terminate()
        tail.wait()


def test_deploy_to_running_server_and_remove(server: RunningServer, tmp_path: Path) -> None:
    service = tmp_path / "greeter"
    service.mkdir()
    (service / "serverless.yml").write_text(
        "service: greeter\nprovider:\n  name: aws\n  environment:\n    WORD: ${env:WORD, 'hi'}\n"
        "functions:\n  greet:\n    handler: app.greet\n"
    )
    (service / "app.py").write_text(
        "import os\n\ndef greet(event, context):\n    return os.environ['WORD'] + ' v1'\n"
    )
    done = faasbox("deploy", str(service), server=server)
    assert done.returncode == 0, done.stderr
    assert "greeter-dev-greet: created" in done.stdout  # new: created, not "updated"
    assert '"hi v1"' in faasbox("invoke", "-f", "greet", server=server).stdout

    (service / "app.py").write_text(
        "import os\n\ndef greet(event, context):\n    return os.environ['WORD'] + ' v2'\n"
    )
    changed = faasbox("deploy", str(service), server=server)
    assert changed.returncode == 0 and "greeter-dev-greet: updated" in changed.stdout
    assert '"hi v2"' in faasbox("invoke", "-f", "greet", server=server).stdout
    again = faasbox("deploy", str(service), server=server)
    assert "greeter-dev-greet: unchanged" in again.stdout

    removed = faasbox("rm", "greeter-dev-greet", server=server)
    assert removed.returncode == 0
    assert "Function not found" in faasbox("invoke", "-f", "greet", server=server).stderr


def test_invoke_local_needs_no_server(tmp_path: Path) -> None:
    done = faasbox(
        "invoke",
        "local",
        "-f",
        "hello",
        "-c",
        str(EXAMPLES / "hello"),
        "-d",
        '{"name":"l"}',
        "--log",
        url="http://127.0.0.1:9",
    )
    assert done.returncode == 0, done.stderr
    assert '"message": "Hello, l!"' in done.stdout
    assert "REPORT RequestId:" in done.stderr


def test_invoke_local_reports_timeouts(tmp_path: Path) -> None:
    done = faasbox("invoke", "local", "-f", "sleepy", "-c", str(EXAMPLES / "limits"))
    assert done.returncode == 1
    assert "Task timed out after 1.00 seconds" in done.stderr


def test_no_server_is_a_clear_error() -> None:
    done = faasbox("invoke", "-f", "hello", url="http://127.0.0.1:9")
    assert done.returncode == 3
    assert "No faasbox server at http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_serverless_yml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "serverless.yml").write_text(
        "service: bad\nfunctions:\n  f:\n    handler: h.f\n    memorySize: lots\n"
    )
    done = faasbox("deploy", str(tmp_path), url="http://127.0.0.1:9")
    assert done.returncode == 2
    assert "functions.f.memorySize" in done.stderr
    assert "serverless.yml" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_keys_warn_but_deploy(server: RunningServer, tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "hello", tmp_path / "svc")
    yml = tmp_path / "svc" / "serverless.yml"
    yml.write_text(
        # Its own route: GET /hello belongs to service hello.
        yml.read_text().replace("service: hello", "service: hello2").replace("/hello", "/hello2")
        + "plugins:\n  - serverless-offline\ncustom:\n  x: 1\n"
    )
    done = faasbox("deploy", str(tmp_path / "svc"), server=server)
    assert done.returncode == 0, done.stderr
    assert "Warning" in done.stderr and "plugins" in done.stderr
    faasbox("rm", "hello2-dev-hello", server=server)


REGIONAL_YML = """\
service: regional
provider:
  name: aws
  environment:
    TABLE: ${self:service}-${opt:stage, self:provider.stage}
    TABLE_ARN: arn:aws:dynamodb:${opt:region, self:provider.region}:${aws:accountId}:table/t
    WHERE: ${aws:region}
    GREETING: ${param:greeting}
params:
  default:
    greeting: hello
functions:
  where:
    handler: app.where
"""
REGIONAL_APP = """\
import os

def where(event, context):
    keys = ("TABLE", "TABLE_ARN", "WHERE", "GREETING", "AWS_REGION")
    return {**{k: os.environ[k] for k in keys}, "arn": context.invoked_function_arn}
"""


def regional_service(tmp_path: Path) -> Path:
    service = tmp_path / "regional"
    service.mkdir()
    (service / "serverless.yml").write_text(REGIONAL_YML)
    (service / "app.py").write_text(REGIONAL_APP)
    return service


def test_deploy_with_region_and_params(server: RunningServer, tmp_path: Path) -> None:
    service = regional_service(tmp_path)
    done = faasbox(
        "deploy", str(service), "--region", "eu-west-1", "--param", "greeting=hola", server=server
    )
    assert done.returncode == 0, done.stderr
    assert "Deployed regional (dev, eu-west-1)" in done.stdout
    invoked = faasbox("invoke", "-f", "regional-dev-where", server=server)
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {
        "TABLE": "regional-dev",
        "TABLE_ARN": "arn:aws:dynamodb:eu-west-1:000000000000:table/t",
        "WHERE": "eu-west-1",
        "GREETING": "hola",
        "AWS_REGION": "eu-west-1",
        "arn": "arn:aws:lambda:eu-west-1:000000000000:function:regional-dev-where",
    }
    aws = lambda_client(server.url, server.credentials)
    arn = aws.get_function(FunctionName="regional-dev-where")["Configuration"]["FunctionArn"]
    assert arn == "arn:aws:lambda:eu-west-1:000000000000:function:regional-dev-where"


def test_invoke_local_with_region_and_params(tmp_path: Path) -> None:
    service = regional_service(tmp_path)
    args = ("invoke", "local", "-f", "where", "-c", str(service))
    done = faasbox(*args, "--stage", "qa", "--region", "ap-south-1", "--param", "greeting=hej")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["TABLE"], result["WHERE"], result["GREETING"]) == (
        "regional-qa",
        "ap-south-1",
        "hej",
    )
    assert result["AWS_REGION"] == "ap-south-1"
    defaults = json.loads(faasbox(*args).stdout)
    assert (defaults["TABLE"], defaults["WHERE"], defaults["GREETING"]) == (
        "regional-dev",
        "us-east-1",
        "hello",
    )


def test_bad_region_and_param_are_clear_errors(tmp_path: Path) -> None:
    service = regional_service(tmp_path)
    args = ("invoke", "local", "-f", "where", "-c", str(service))
    bad_param = faasbox(*args, "--param", "greeting")
    assert bad_param.returncode == 2
    assert "expected key=value, got 'greeting'" in bad_param.stderr
    bad_region = faasbox("deploy", str(service), "--region", "moon", url="http://127.0.0.1:9")
    assert bad_region.returncode == 2
    assert "--region" in bad_region.stderr and "expected a region such as" in bad_region.stderr
    (service / "serverless.yml").write_text(REGIONAL_YML.replace("greeting: hello", "other: x"))
    missing = faasbox(*args)
    assert missing.returncode == 2
    assert "provider.environment.GREETING" in missing.stderr
    assert "parameter greeting is not set by --param" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_serve_with_region_and_params(tmp_path: Path) -> None:
    service = regional_service(tmp_path)
    serving = RunningServer(
        [service], tmp_path / "data", "--region", "eu-north-1", "--param", "greeting=moi"
    ).start()
    try:
        aws = lambda_client(serving.url, serving.credentials)
        result = json.loads(aws.invoke(FunctionName="regional-dev-where")["Payload"].read())
    finally:
        serving.stop()
    assert (result["WHERE"], result["GREETING"], result["AWS_REGION"]) == (
        "eu-north-1",
        "moi",
        "eu-north-1",
    )
    assert result["arn"] == "arn:aws:lambda:eu-north-1:000000000000:function:regional-dev-where"


def test_deploy_help_shows_both_forms() -> None:
    done = faasbox("deploy", "--help")
    assert done.returncode == 0, done.stderr
    assert "deploy [OPTIONS] COMMAND" in done.stdout
    assert "function" in done.stdout and "service" in done.stdout
    # A service deploy's own options still have their help.
    done = faasbox("deploy", "--stage", "dev", "--help")
    assert done.returncode == 0, done.stderr
    assert "--stage" in done.stdout
