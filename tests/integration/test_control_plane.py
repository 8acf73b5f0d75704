"""The Lambda control plane of a real server, through boto3 and the AWS CLI (v1)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import platform
import re
import stat
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from faasbox.config import load_service
from faasbox.registry.services import package_zip
from tests.support import (
    EXAMPLES,
    JAILED,
    RunningServer,
    aws_cli_path,
    lambda_client,
    processes_of,
    signed_request,
    wait_until,
)

ROLE = "arn:aws:iam::123456789012:role/lambda-role"
# Functions run on the server's own machine, and say so.
HOST_ARCHITECTURE = "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
LAST_MODIFIED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
HANDLER = """\
import os

VERSION = {version!r}
INSTANCE = os.urandom(8).hex()  # which worker answered


def handler(event, context):
    return {{
        "version": VERSION,
        "greeting": os.environ.get("GREETING"),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "function_version": context.function_version,
        "pid": os.getpid(),
        "uid": os.getuid(),
        "instance": INSTANCE,
    }}
"""


# --- helpers ---


def make_zip(files: dict[str, bytes | str], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # unix, so the mode says "symbolic link"
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buf.getvalue()


def code(version: str) -> bytes:
    return make_zip({"handler.py": HANDLER.format(version=version)})


def stopped(pid: int) -> bool:
    """The process has ended (gone, or a zombie its parent has yet to reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until_stopped(seen: dict[str, Any], others: int = 0, timeout: float = 30.0) -> None:
    """Wait for the worker that answered `seen` to end. A jailed worker's pid is that of its
    own namespace: then wait until only `others` processes run as its function's uid."""
    if JAILED:
        uid = seen["uid"]
        wait_until(
            lambda: len(processes_of(uid)) <= others,
            timeout,
            f"the workers of uid {uid} to stop after its function changed",
        )
        return
    pid = seen["pid"]
    wait_until(lambda: stopped(pid), timeout, f"worker {pid} to stop after its function changed")


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def create(aws: Any, name: str, zip_data: bytes | None = None, **settings: Any) -> Any:
    request = {
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": zip_data if zip_data is not None else code("v1")},
        **settings,
    }
    return aws.create_function(**request)


def invoke(aws: Any, name: str, qualifier: str | None = None) -> tuple[dict[str, Any], str]:
    extra = {"Qualifier": qualifier} if qualifier else {}
    response = aws.invoke(FunctionName=name, Payload=b"{}", **extra)
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read()), response["ExecutedVersion"]


def error_of(call: Any, *args: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def credentials_of(server: RunningServer) -> tuple[str, str]:
    credentials = getattr(server, "credentials", None)
    if credentials is None:
        return "test", "test"
    return credentials.access_key_id, credentials.secret_access_key


# --- fixtures: one server for the module ---


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([EXAMPLES / "hello"], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


@pytest.fixture(scope="module")
def aws(server: RunningServer) -> Any:
    return lambda_client(server.url, getattr(server, "credentials", None))


@pytest.fixture(scope="module")
def unchecked(server: RunningServer) -> Any:
    """boto3 without its client-side parameter validation, to reach the server's own."""
    key, secret = credentials_of(server)
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            retries={"total_max_attempts": 1}, parameter_validation=False, read_timeout=60
        ),
    )


@pytest.fixture(scope="module")
def cli(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Runs `aws lambda ...` against the server; returns the finished process."""
    key, secret = credentials_of(server)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FAASBOX_"))}
    env.update(
        AWS_ACCESS_KEY_ID=key,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_MAX_ATTEMPTS="1",
    )
    cwd = tmp_path_factory.mktemp("cli")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        endpoint = ["--endpoint-url", server.url, "--region", "us-east-1"]
        return subprocess.run(
            [aws_cli_path(), "lambda", *args, *endpoint],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )

    run.cwd = cwd  # type: ignore[attr-defined]
    return run


# --- create, get, invoke ---


def test_a_created_function_is_described_as_lambda_does_and_runs_at_once(
    aws: Any, server: RunningServer
) -> None:
    zip_data = code("v1")
    created = create(aws, "cp-basic", zip_data, Description="a test", MemorySize=256)

    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    config = without_metadata(created)
    assert config["FunctionName"] == "cp-basic"
    assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:cp-basic"
    assert config["Runtime"] == "python3.11"
    assert config["Role"] == ROLE
    assert config["Handler"] == "handler.handler"
    assert config["CodeSize"] == len(zip_data)
    assert config["CodeSha256"] == sha256_b64(zip_data)
    assert config["Description"] == "a test"
    assert config["Timeout"] == 3
    assert config["MemorySize"] == 256
    assert LAST_MODIFIED.match(config["LastModified"])
    assert config["Version"] == "$LATEST"
    assert config["Environment"] == {"Variables": {}}
    assert re.fullmatch(r"[0-9a-f-]{36}", config["RevisionId"])
    assert config["State"] == "Active"
    assert config["LastUpdateStatus"] == "Successful"
    assert config["PackageType"] == "Zip"
    assert config["Architectures"] == [HOST_ARCHITECTURE]
    assert config["EphemeralStorage"] == {"Size": 512}
    assert config["TracingConfig"] == {"Mode": "PassThrough"}

    result, executed = invoke(aws, "cp-basic")
    assert result["version"] == "v1"
    assert result["memory"] == "256"
    assert executed == "$LATEST"

    got = aws.get_function(FunctionName="cp-basic")
    assert got["Configuration"] == config
    assert got["Code"]["RepositoryType"] == "S3"
    download = signed_request("GET", got["Code"]["Location"], getattr(server, "credentials", None))
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert download.content == zip_data

    assert without_metadata(aws.get_function_configuration(FunctionName="cp-basic")) == config
    by_arn = aws.get_function_configuration(FunctionName=config["FunctionArn"])
    assert by_arn["RevisionId"] == config["RevisionId"]


def test_a_folder_deployed_function_reports_the_sha256_of_its_package_zip(
    aws: Any, server: RunningServer
) -> None:
    expected = package_zip(load_service(EXAMPLES / "hello"))

    got = aws.get_function(FunctionName="hello-dev-hello")

    config = got["Configuration"]
    assert config["CodeSha256"] == sha256_b64(expected)
    assert config["CodeSize"] == len(expected)
    assert config["Role"].startswith("arn:aws:iam::000000000000:role/hello-dev-")
    assert config["Timeout"] == 6
    assert config["Environment"] == {"Variables": {"GREETING": "Hello"}}
    download = signed_request("GET", got["Code"]["Location"], getattr(server, "credentials", None))
    assert download.content == expected


def test_the_waiters_pass(aws: Any) -> None:
    create(aws, "cp-waiters")
    fast = {"Delay": 1, "MaxAttempts": 3}
    for waiter in ("function_exists", "function_active_v2", "function_active"):
        aws.get_waiter(waiter).wait(FunctionName="cp-waiters", WaiterConfig=fast)
    aws.update_function_configuration(FunctionName="cp-waiters", Timeout=5)
    for waiter in ("function_updated_v2", "function_updated"):
        aws.get_waiter(waiter).wait(FunctionName="cp-waiters", WaiterConfig=fast)
    version = aws.publish_version(FunctionName="cp-waiters")["Version"]
    aws.get_waiter("published_version_active").wait(
        FunctionName="cp-waiters", Qualifier=version, WaiterConfig=fast
    )


def test_list_functions_pages_with_an_opaque_marker(aws: Any) -> None:
    names = [f"cp-list-{i}" for i in range(5)]
    for name in names:
        create(aws, name)

    seen: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"MaxItems": 2}
    while True:
        page = aws.list_functions(**kwargs)
        pages += 1
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        if "NextMarker" not in page:
            break
        kwargs["Marker"] = page["NextMarker"]

    assert len(seen) == len(set(seen))
    assert [n for n in seen if n.startswith("cp-list-")] == names
    assert "hello-dev-hello" in seen
    assert pages == -(-len(seen) // 2)
    listed = aws.list_functions()["Functions"]
    assert all(f["Version"] == "$LATEST" and "State" not in f for f in listed)
    paginated = [
        f["FunctionName"]
        for page in aws.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3})
        for f in page["Functions"]
    ]
    assert paginated == seen

    assert error_of(aws.list_functions, Marker="not a marker")[:2] == (
        "InvalidParameterValueException",
        400,
    )


def test_list_all_versions(aws: Any) -> None:
    create(aws, "cp-all-versions")
    aws.publish_version(FunctionName="cp-all-versions")

    listed = aws.list_functions(FunctionVersion="ALL")["Functions"]

    mine = [f for f in listed if f["FunctionName"] == "cp-all-versions"]
    assert [f["Version"] for f in mine] == ["$LATEST", "1"]
    assert [f["FunctionArn"].rsplit(":", 1)[1] for f in mine] == ["$LATEST", "1"]


# --- updates ---


def test_update_code_serves_the_new_code_on_the_next_invoke(aws: Any) -> None:
    created = create(aws, "cp-update-code")
    before = invoke(aws, "cp-update-code")[0]
    assert before["version"] == "v1"
    new_zip = code("v2")

    updated = aws.update_function_code(
        FunctionName="cp-update-code", ZipFile=new_zip, RevisionId=created["RevisionId"]
    )

    assert updated["CodeSha256"] == sha256_b64(new_zip) != created["CodeSha256"]
    assert updated["CodeSize"] == len(new_zip)
    assert updated["RevisionId"] != created["RevisionId"]
    assert updated["LastUpdateStatus"] == "Successful"
    after = invoke(aws, "cp-update-code")[0]
    assert after["version"] == "v2"
    assert after["instance"] != before["instance"]
    wait_until_stopped(before, others=1)  # the worker of the old code is retired
    # an update naming the revision it read before the last update is refused
    assert error_of(
        aws.update_function_code,
        FunctionName="cp-update-code",
        ZipFile=code("v3"),
        RevisionId=created["RevisionId"],
    ) == (
        "PreconditionFailedException",
        412,
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    )
    assert invoke(aws, "cp-update-code")[0]["version"] == "v2"


def test_update_configuration_is_seen_by_the_handler(aws: Any) -> None:
    created = create(aws, "cp-update-config")
    before, _ = invoke(aws, "cp-update-config")
    assert before["greeting"] is None
    assert before["remaining_ms"] <= 3000

    updated = aws.update_function_configuration(
        FunctionName="cp-update-config",
        Environment={"Variables": {"GREETING": "bonjour"}},
        Timeout=10,
        MemorySize=512,
        Description="updated",
        RevisionId=created["RevisionId"],
    )

    assert updated["Environment"] == {"Variables": {"GREETING": "bonjour"}}
    assert (updated["Timeout"], updated["MemorySize"]) == (10, 512)
    assert updated["Description"] == "updated"
    assert updated["CodeSha256"] == created["CodeSha256"]
    after, _ = invoke(aws, "cp-update-config")
    assert after["greeting"] == "bonjour"
    assert 3000 < after["remaining_ms"] <= 10000
    assert after["memory"] == "512"
    assert error_of(
        aws.update_function_configuration,
        FunctionName="cp-update-config",
        Timeout=20,
        RevisionId=created["RevisionId"],
    )[:2] == ("PreconditionFailedException", 412)
    # clearing the environment
    aws.update_function_configuration(FunctionName="cp-update-config", Environment={})
    assert invoke(aws, "cp-update-config")[0]["greeting"] is None


# --- versions ---


def test_published_versions_keep_their_code_and_qualifier_selects_them(aws: Any) -> None:
    v1_zip = code("v1")
    create(aws, "cp-versions", v1_zip)

    first = aws.publish_version(FunctionName="cp-versions", Description="first")
    again = aws.publish_version(FunctionName="cp-versions")  # nothing changed since
    latest = aws.update_function_code(FunctionName="cp-versions", ZipFile=code("v2"))
    second = aws.publish_version(FunctionName="cp-versions", CodeSha256=latest["CodeSha256"])

    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (first["Version"], again["Version"], second["Version"]) == ("1", "1", "2")
    assert first["FunctionArn"].endswith(":function:cp-versions:1")
    assert first["Description"] == "first"
    assert first["CodeSha256"] == sha256_b64(v1_zip)
    assert second["CodeSha256"] == latest["CodeSha256"]
    aws.update_function_code(FunctionName="cp-versions", ZipFile=code("v3"))

    v1, executed = invoke(aws, "cp-versions", "1")
    assert (v1["version"], v1["function_version"], executed) == ("v1", "1", "1")
    assert invoke(aws, "cp-versions", "2")[0]["version"] == "v2"
    assert invoke(aws, "cp-versions")[0]["version"] == "v3"
    assert invoke(aws, first["FunctionArn"])[0]["version"] == "v1"  # a qualified ARN
    assert invoke(aws, "cp-versions:2")[0]["version"] == "v2"

    versions = aws.list_versions_by_function(FunctionName="cp-versions")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert versions[0]["FunctionArn"].endswith(":cp-versions:$LATEST")
    paged = aws.list_versions_by_function(FunctionName="cp-versions", MaxItems=2)
    assert len(paged["Versions"]) == 2
    rest = aws.list_versions_by_function(FunctionName="cp-versions", Marker=paged["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2"]
    assert "NextMarker" not in rest
    got = aws.get_function_configuration(FunctionName="cp-versions", Qualifier="1")
    assert got["CodeSha256"] == sha256_b64(v1_zip)
    assert got["FunctionArn"] == first["FunctionArn"]
    assert (
        aws.get_function(FunctionName="cp-versions", Qualifier="2")["Configuration"]["Version"]
        == "2"
    )

    code_sha_error = error_of(aws.publish_version, FunctionName="cp-versions", CodeSha256="abc")
    assert code_sha_error[:2] == ("InvalidParameterValueException", 400)
    assert "is different from current CodeSHA256 in $LATEST" in code_sha_error[2]
    assert error_of(
        aws.publish_version, FunctionName="cp-versions", RevisionId=first["RevisionId"]
    )[:2] == ("PreconditionFailedException", 412)
    assert error_of(aws.get_function, FunctionName="cp-versions", Qualifier="9") == (
        "ResourceNotFoundException",
        404,
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:cp-versions:9",
    )
    assert error_of(aws.invoke, FunctionName="cp-versions", Qualifier="9")[:2] == (
        "ResourceNotFoundException",
        404,
    )

    # deleting one version; numbers are not reused
    deleted = aws.delete_function(FunctionName="cp-versions", Qualifier="2")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(aws.invoke, FunctionName="cp-versions", Qualifier="2")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert aws.publish_version(FunctionName="cp-versions")["Version"] == "3"
    assert invoke(aws, "cp-versions", "1")[0]["version"] == "v1"
    assert error_of(aws.delete_function, FunctionName="cp-versions", Qualifier="$LATEST") == (
        "InvalidParameterValueException",
        400,
        "$LATEST version cannot be deleted without deleting the function.",
    )


# --- delete ---


def test_delete_removes_the_function_and_its_versions(aws: Any) -> None:
    create(aws, "cp-delete")
    aws.publish_version(FunctionName="cp-delete")
    latest = invoke(aws, "cp-delete")[0]  # warm workers, to be retired
    version = invoke(aws, "cp-delete", "1")[0]

    deleted = aws.delete_function(FunctionName="cp-delete")

    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    wait_until_stopped(latest)
    wait_until_stopped(version)
    missing = "Function not found: arn:aws:lambda:us-east-1:000000000000:function:cp-delete"
    assert error_of(aws.get_function, FunctionName="cp-delete") == (
        "ResourceNotFoundException",
        404,
        missing,
    )
    assert error_of(aws.invoke, FunctionName="cp-delete")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(aws.get_function, FunctionName="cp-delete", Qualifier="1")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(aws.delete_function, FunctionName="cp-delete")[:2] == (
        "ResourceNotFoundException",
        404,
    )
    # the name can be taken again, with versions numbered afresh
    create(aws, "cp-delete", code("again"))
    assert invoke(aws, "cp-delete")[0]["version"] == "again"
    assert aws.publish_version(FunctionName="cp-delete")["Version"] == "1"


def test_deleting_a_version_retires_its_warm_workers_at_once(
    aws: Any, server: RunningServer
) -> None:
    create(aws, "cp-retire")
    aws.publish_version(FunctionName="cp-retire")
    latest = invoke(aws, "cp-retire")[0]
    invoke(aws, "cp-retire", "1")

    def workers() -> list[dict[str, Any]]:
        url = f"{server.url}/_faasbox/functions/cp-retire"
        found: list[dict[str, Any]] = signed_request("GET", url, server.credentials).json()[
            "workers"
        ]
        return found

    # The pids the server knows (a jailed worker's init), by version.
    listed = {w["version"]: w["pid"] for w in workers()}
    assert set(listed) == {"$LATEST", "1"}

    aws.delete_function(FunctionName="cp-retire", Qualifier="1")

    # Gone now, not at the idle reap (minutes away on this server).
    assert [w["version"] for w in workers()] == ["$LATEST"]
    wait_until(lambda: stopped(listed["1"]), 30, "version 1's worker to stop")
    assert not stopped(listed["$LATEST"])
    payload, _ = invoke(aws, "cp-retire")
    assert payload["instance"] == latest["instance"]  # $LATEST's worker is still warm


# --- packages ---


def test_a_link_inside_the_package_is_stored_as_a_copy_of_its_target(aws: Any) -> None:
    zip_data = make_zip(
        {"lib/handler.py": HANDLER.format(version="linked")},
        {"alias.py": "lib/handler.py", "pkg": "lib"},
    )
    create(aws, "cp-links", zip_data, Handler="alias.handler")
    assert invoke(aws, "cp-links")[0]["version"] == "linked"
    aws.update_function_configuration(FunctionName="cp-links", Handler="pkg/handler.handler")
    assert invoke(aws, "cp-links")[0]["version"] == "linked"


UNZIPPED_LIMIT_MESSAGE = "Unzipped size must be smaller than 262144000 bytes"
UNZIP_MESSAGE = "Could not unzip uploaded file. Please check your file, then try to upload again."


def oversized_unzipped() -> bytes:
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("big.bin", "w", force_zip64=True) as out,
    ):
        block = b"\0" * (1 << 24)
        for _ in range(16):  # 256 MiB of zeros: a few hundred KB zipped
            out.write(block)
    return buf.getvalue()


def corrupt_deflate() -> bytes:
    raw = bytearray(make_zip({"handler.py": "x = 1\n" * 1000}))
    start = 30 + len(b"handler.py")
    for i in range(start, start + 8):
        raw[i] ^= 0xFF
    return bytes(raw)


@pytest.mark.parametrize(
    ("zip_data", "message"),
    [
        pytest.param(b"this is not a zip", UNZIP_MESSAGE, id="not-a-zip"),
        pytest.param(code("v1")[:-30], UNZIP_MESSAGE, id="truncated"),
        pytest.param(corrupt_deflate, UNZIP_MESSAGE, id="corrupt-data"),
        pytest.param(
            make_zip({"/etc/cron.d/evil": "x"}), "Zip entry '/etc/cron.d/evil'", id="absolute"
        ),
        pytest.param(make_zip({"a/../../evil.py": "x"}), "points outside", id="dotdot"),
        pytest.param(
            make_zip({"handler.py": "x"}, {"passwd": "../../etc/passwd"}),
            "'passwd' is a link pointing outside the package",
            id="link-outside",
        ),
        pytest.param(
            make_zip({"handler.py": "x"}, {"passwd": "/etc/passwd"}),
            "'passwd' is a link pointing outside the package",
            id="link-absolute",
        ),
        pytest.param(oversized_unzipped, UNZIPPED_LIMIT_MESSAGE, id="unzipped-over-250MB"),
    ],
)
def test_a_bad_package_is_refused(
    aws: Any, to_update: str, zip_data: bytes | Callable[[], bytes], message: str
) -> None:
    if callable(zip_data):  # built here, not when the tests are collected
        zip_data = zip_data()
    code_error = error_of(create, aws, "cp-bad-package", zip_data)
    assert code_error[:2] == ("InvalidParameterValueException", 400)
    assert message in code_error[2]
    if message == UNZIP_MESSAGE:
        assert code_error[2] == message
    assert "cp-bad-package" not in names(aws)

    update_error = error_of(aws.update_function_code, FunctionName=to_update, ZipFile=zip_data)
    assert update_error == code_error
    assert invoke(aws, to_update)[0]["version"] == "v1"


@pytest.fixture(scope="module")
def to_update(aws: Any) -> str:
    create(aws, "cp-bad-update")
    return "cp-bad-update"


def names(aws: Any) -> set[str]:
    return {f["FunctionName"] for f in aws.list_functions(MaxItems=1000)["Functions"]}


def test_a_package_over_50MB_is_too_large(aws: Any) -> None:
    zip_data = os.urandom(50 * 1024 * 1024 + 1)
    assert error_of(create, aws, "cp-too-large", zip_data) == (
        "RequestEntityTooLargeException",
        413,
        "Request must be smaller than 69905067 bytes for the CreateFunction operation",
    )


# --- validation ---


def test_creating_an_existing_function_conflicts(aws: Any) -> None:
    create(aws, "cp-conflict")
    assert error_of(create, aws, "cp-conflict", code("v2")) == (
        "ResourceConflictException",
        409,
        "Function already exist: cp-conflict",
    )
    assert invoke(aws, "cp-conflict")[0]["version"] == "v1"


def validation(field: str, value: object, rule: str) -> str:
    return (
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: {rule}"
    )


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        pytest.param(
            {"FunctionName": "bad name!"},
            "ValidationException",
            "Value 'bad name!' at 'functionName' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern",
            id="name-pattern",
        ),
        pytest.param(
            {"FunctionName": "x" * 65},
            "InvalidParameterValueException",
            validation(
                "functionName", "x" * 65, "Member must have length less than or equal to 64"
            ),
            id="name-too-long",
        ),
        pytest.param(
            {"FunctionName": "cp-named:1"},
            "ValidationException",
            "at 'functionName' failed to satisfy constraint",
            id="name-qualified",
        ),
        pytest.param(
            {"MemorySize": 64},
            "ValidationException",
            validation("memorySize", 64, "Member must have value greater than or equal to 128"),
            id="memory-too-small",
        ),
        pytest.param(
            {"MemorySize": 10241},
            "ValidationException",
            validation("memorySize", 10241, "Member must have value less than or equal to 10240"),
            id="memory-too-large",
        ),
        pytest.param(
            {"Timeout": 0},
            "ValidationException",
            validation("timeout", 0, "Member must have value greater than or equal to 1"),
            id="timeout-zero",
        ),
        pytest.param(
            {"Timeout": 901},
            "ValidationException",
            validation("timeout", 901, "Member must have value less than or equal to 900"),
            id="timeout-too-long",
        ),
        pytest.param(
            {"Runtime": "java21"},
            "InvalidParameterValueException",
            "Value java21 at 'runtime' failed to satisfy constraint",
            id="runtime-unsupported",
        ),
        pytest.param(
            {"Handler": None},
            "InvalidParameterValueException",
            "Runtime and Handler are mandatory parameters for functions created with "
            "deployment packages.",
            id="handler-missing",
        ),
        pytest.param(
            {"Runtime": None},
            "InvalidParameterValueException",
            "Runtime and Handler are mandatory parameters",
            id="runtime-missing",
        ),
        pytest.param(
            {"Role": None},
            "ValidationException",
            "1 validation error detected: Value null at 'role' failed to satisfy constraint: "
            "Member must not be null",
            id="role-missing",
        ),
        pytest.param(
            {"Role": "my-role"},
            "ValidationException",
            "Value 'my-role' at 'role' failed to satisfy constraint: Member must satisfy "
            "regular expression pattern",
            id="role-not-an-arn",
        ),
        pytest.param(
            {"Environment": {"Variables": {"AWS_REGION": "eu-west-1"}}},
            "InvalidParameterValueException",
            "Reserved keys used in this request: AWS_REGION",
            id="reserved-variable",
        ),
        pytest.param(
            {"Environment": {"Variables": {"BIG": "x" * 5000}}},
            "InvalidParameterValueException",
            "exceeded the 4KB limit",
            id="environment-too-large",
        ),
        pytest.param(
            {"Code": {"S3Bucket": "b", "S3Key": "k"}},
            "InvalidParameterValueException",
            "ZipFile",
            id="code-from-s3",
        ),
        pytest.param(
            {"Timeout": "ten"},
            "InvalidRequestContentException",
            "Timeout must be an integer",
            id="timeout-not-a-number",
        ),
    ],
)
def test_create_validates_as_lambda_does(
    unchecked: Any, settings: dict[str, Any], error: str, message: str
) -> None:
    request: dict[str, Any] = {
        "FunctionName": "cp-invalid",
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "handler.handler",
        "Code": {"ZipFile": code("v1")},
    }
    request.update(settings)
    request = {k: v for k, v in request.items() if v is not None}

    code_, status, text = error_of(unchecked.create_function, **request)

    assert (code_, status) == (error, 400)
    assert message in text
    assert "cp-invalid" not in names(unchecked)


def test_updates_validate_as_create_does(unchecked: Any, aws: Any) -> None:
    create(aws, "cp-update-invalid")
    assert error_of(
        unchecked.update_function_configuration, FunctionName="cp-update-invalid", MemorySize=20000
    ) == (
        "ValidationException",
        400,
        validation("memorySize", 20000, "Member must have value less than or equal to 10240"),
    )
    assert error_of(
        unchecked.update_function_configuration, FunctionName="cp-update-invalid", Runtime="java21"
    )[:2] == ("InvalidParameterValueException", 400)
    assert error_of(
        unchecked.update_function_configuration, FunctionName="nope-nope", Timeout=5
    ) == (
        "ResourceNotFoundException",
        404,
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope-nope",
    )
    assert error_of(unchecked.update_function_code, FunctionName="nope-nope", ZipFile=code("x"))[
        :2
    ] == ("ResourceNotFoundException", 404)
    assert error_of(unchecked.get_function, FunctionName="bad name")[:2] == (
        "ValidationException",
        400,
    )
    assert aws.get_function_configuration(FunctionName="cp-update-invalid")["MemorySize"] == 128


def test_malformed_requests_get_aws_shaped_4xx_errors(server: RunningServer) -> None:
    credentials = getattr(server, "credentials", None)
    base = f"{server.url}/2015-03-31/functions"
    not_base64 = json.dumps(
        {
            "FunctionName": "cp-malformed",
            "Runtime": "python3.11",
            "Role": ROLE,
            "Handler": "handler.handler",
            "Code": {"ZipFile": "%%% not base64"},
        }
    ).encode()
    cases = [
        ("POST", base, b"{not json", 400, "InvalidRequestContentException"),
        ("POST", base, b"[1, 2]", 400, "InvalidRequestContentException"),
        ("POST", base, b"[" * 100_000, 400, "InvalidRequestContentException"),
        ("POST", base, not_base64, 400, "InvalidRequestContentException"),
        (
            "PUT",
            f"{base}/hello-dev-hello/code",
            b'{"ZipFile": 5}',
            400,
            "InvalidRequestContentException",
        ),
        ("PATCH", f"{base}/hello-dev-hello", b"", 404, "UnknownOperationException"),
        ("GET", f"{base}/hello-dev-hello/aliases", b"", 404, "UnknownOperationException"),
        ("GET", f"{base}/hello-dev-hello/code/{'0' * 64}.zip", b"", 404, None),
        ("GET", f"{base}?MaxItems=0", b"", 400, "ValidationException"),
        ("GET", f"{base}?FunctionVersion=SOME", b"", 400, "ValidationException"),
    ]
    for method, url, body, status, error in cases:
        response = signed_request(method, url, credentials, content=body)
        assert response.status_code == status, (method, url, response.text)
        assert response.headers["x-amzn-errortype"] == (error or "ResourceNotFoundException")
        assert response.json()["Message"]


# --- the AWS CLI ---


def test_the_aws_cli_manages_functions(cli: Any, tmp_path: Path) -> None:
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(code("cli-1"))
    common = ["--runtime", "python3.11", "--role", ROLE, "--handler", "handler.handler"]

    created = cli("create-function", "--function-name", "cp-cli", *common,
                  "--zip-file", f"fileb://{zip_path}")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["CodeSha256"] == sha256_b64(zip_path.read_bytes())

    conflict = cli("create-function", "--function-name", "cp-cli", *common,
                   "--zip-file", f"fileb://{zip_path}")  # fmt: skip
    assert conflict.returncode == 255  # AWS CLI v1: a service error
    assert "(ResourceConflictException)" in conflict.stderr
    assert "Function already exist: cp-cli" in conflict.stderr

    too_big = cli("update-function-configuration", "--function-name", "cp-cli",
                  "--memory-size", "20000")  # fmt: skip
    assert too_big.returncode == 255
    assert "(ValidationException)" in too_big.stderr

    configured = cli("update-function-configuration", "--function-name", "cp-cli",
                     "--environment", "Variables={GREETING=hi}", "--timeout", "30")  # fmt: skip
    assert configured.returncode == 0, configured.stderr
    assert json.loads(configured.stdout)["Timeout"] == 30

    published = cli("publish-version", "--function-name", "cp-cli")
    assert json.loads(published.stdout)["Version"] == "1"

    zip_path.write_bytes(code("cli-2"))
    updated = cli("update-function-code", "--function-name", "cp-cli",
                  "--zip-file", f"fileb://{zip_path}")  # fmt: skip
    assert updated.returncode == 0, updated.stderr

    for qualifier, expected in (("1", "cli-1"), ("$LATEST", "cli-2")):
        out = tmp_path / f"out-{qualifier}.json"
        # AWS CLI v1 sends --payload as it is (v2's --cli-binary-format does not exist in v1)
        invoked = cli("invoke", "--function-name", "cp-cli", "--qualifier", qualifier,
                      "--payload", '{"from": "cli"}', str(out))  # fmt: skip
        assert invoked.returncode == 0, invoked.stderr
        assert json.loads(invoked.stdout)["ExecutedVersion"] == qualifier
        result = json.loads(out.read_text())
        assert (result["version"], result["greeting"]) == (expected, "hi")

    got = cli("get-function-configuration", "--function-name", "cp-cli", "--qualifier", "1")
    assert json.loads(got.stdout)["Version"] == "1"

    first = json.loads(cli("list-functions", "--max-items", "1").stdout)
    assert len(first["Functions"]) == 1 and first["NextToken"]
    second = json.loads(
        cli("list-functions", "--max-items", "1", "--starting-token", first["NextToken"]).stdout
    )
    assert second["Functions"][0]["FunctionName"] != first["Functions"][0]["FunctionName"]

    deleted = cli("delete-function", "--function-name", "cp-cli")
    assert deleted.returncode == 0, deleted.stderr
    gone = cli("get-function", "--function-name", "cp-cli")
    assert gone.returncode == 255
    assert "(ResourceNotFoundException)" in gone.stderr
