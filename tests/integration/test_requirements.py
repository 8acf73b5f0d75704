"""requirements.txt and package.json, installed at deploy: `faasbox deploy` against a real
server, the function then invoked with boto3, as a user would check it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import SERVICES, RunningServer, lambda_client

REQUIREMENTS = SERVICES / "requirements"
NODE_DEPS = SERVICES / "node-deps"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([SERVICES / "environment"], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")  # the CLI's bundle cache (FAASBOX_CACHE_DIR)


def deploy(server: RunningServer, cache: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faasbox", "deploy", str(folder)],
        capture_output=True,
        text=True,
        env=server.client_env(FAASBOX_CACHE_DIR=str(cache)),
        timeout=300,
    )


def invoke(server: RunningServer, name: str, event: Any = None) -> Any:
    aws = lambda_client(server.url, server.credentials)
    response = aws.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return payload


@pytest.fixture(scope="module")
def first_deploy(server: RunningServer, cache: Path) -> subprocess.CompletedProcess[str]:
    done = deploy(server, cache, REQUIREMENTS)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_requirements_are_installed_and_win_over_faasbox_own(
    server: RunningServer, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    assert "Successfully installed" in first_deploy.stdout  # pip's progress, shown
    seen = invoke(server, "requirements-dev-versions")
    assert seen["pydantic"] == "1.10.22", seen  # its requirements' version, not faasbox's 2.x
    assert seen["pydantic_file"].startswith(("/var/task/", str(server.data_dir)))
    assert seen["table"].split() == ["a", "b", "1", "2"]
    assert seen["size"] == "3.0 MB"


def test_a_redeploy_with_the_same_requirements_installs_nothing(
    server: RunningServer, cache: Path, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    bundles = sorted(p.name for p in cache.glob("dependencies/python-*"))
    again = deploy(server, cache, REQUIREMENTS)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to install" in again.stdout
    assert "pip install" not in again.stdout
    assert sorted(p.name for p in cache.glob("dependencies/python-*")) == bundles
    assert "versions: unchanged" in again.stdout  # the same package: the same code


def test_a_failed_install_refuses_the_deploy_and_the_previous_version_serves(
    server: RunningServer,
    cache: Path,
    first_deploy: subprocess.CompletedProcess[str],
    tmp_path: Path,
) -> None:
    broken = tmp_path / "requirements"
    shutil.copytree(REQUIREMENTS, broken)
    (broken / "requirements.txt").write_text("faasbox-test-no-such-package==1.0\n")
    (broken / "handler.py").write_text("def versions(event, context):\n    return 'new'\n")
    done = deploy(server, cache, broken)
    assert done.returncode == 1, done.stdout + done.stderr
    # pip's own words, in the error the CLI prints.
    assert "No matching distribution found for faasbox-test-no-such-package==1.0" in done.stderr
    assert invoke(server, "requirements-dev-versions")["pydantic"] == "1.10.22"


def test_package_json_dependencies_resolve(server: RunningServer, cache: Path) -> None:
    done = deploy(server, cache, NODE_DEPS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "npm install" in done.stdout
    seen = invoke(server, "node-deps-dev-duration", {"text": "2h"})
    assert seen == {"ms": 7_200_000, "devDependencyPackaged": False}
