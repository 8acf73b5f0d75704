"""A Python function's imports are Lambda's: its code, its layers, the runtime's packages
(boto3 at the version Lambda's python3.11 runtime ships), the stdlib; never the server's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faasbox.execution.process.python import search_path
from tests.support import SERVICES, RunningServer, lambda_client

FAASBOX_DEPENDENCIES = ["pydantic", "uvicorn", "click", "rich", "yaml", "httpx", "watchfiles"]


def pinned(name: str) -> str:
    for line in Path(search_path.RUNTIME_REQUIREMENTS).read_text().splitlines():
        if line.startswith(f"{name}=="):
            return line.partition("==")[2].strip()
    raise AssertionError(f"{name} is not pinned in {search_path.RUNTIME_REQUIREMENTS}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([SERVICES / "environment"], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


def probe(server: RunningServer, names: list[str]) -> dict[str, Any]:
    aws = lambda_client(server.url, server.credentials)
    response = aws.invoke(
        FunctionName="environment-dev-probe", Payload=json.dumps({"names": names}).encode()
    )
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())  # type: ignore[no-any-return]


def test_faasbox_dependencies_are_not_importable(server: RunningServer) -> None:
    seen = probe(server, FAASBOX_DEPENDENCIES)
    assert seen["importable"] == {name: False for name in FAASBOX_DEPENDENCIES}
    # The worker loop imported nothing but the stdlib and its own stdlib-only modules.
    assert set(seen["loaded_at_init"]) - {"probe"} <= {"faasbox"}, seen["loaded_at_init"]


def test_boto3_is_the_lambda_runtimes_version(server: RunningServer) -> None:
    seen = probe(server, ["awslambdaric"])
    assert seen["boto3"] == pinned("boto3")
    assert seen["botocore"] == pinned("botocore")
    assert seen["importable"] == {"awslambdaric": True}


def test_sys_path_is_in_lambdas_order(server: RunningServer) -> None:
    path = probe(server, [])["sys_path"]
    task_root = path[0]
    assert task_root.endswith("/var/task") or "/code/" in task_root
    runtime = path.index(search_path.RUNTIME_PACKAGES)
    if task_root == "/var/task":  # in the jail: the layers' folders at /opt, in order
        assert path[1:runtime] == search_path.layer_paths("/opt")
    # Then the stdlib, and no site-packages of the server's virtualenv anywhere.
    assert not any(p.endswith("site-packages") and "/opt/" not in p for p in path), path
    assert any(p.endswith(search_path.PYTHON_DIR) for p in path[runtime:])


def test_the_preloaded_packages_are_importable(server: RunningServer) -> None:
    seen = probe(server, ["numpy", "PIL"])
    assert seen["importable"] == {"numpy": True, "PIL": True}
