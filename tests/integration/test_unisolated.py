"""A server on a machine that cannot jail its functions: it says so loudly and serves, or,
with --require-isolation, refuses to start. Run as root, the server is started without any
capability (setpriv), which is what an unprivileged user or a locked-down container has."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    ROOT,
    SERVICES,
    RunningServer,
    lambda_client,
    wait_until,
    zombie_children,
)

WRAPPER = (
    ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all"]
    if os.geteuid() == 0
    else []
)
pytestmark = pytest.mark.skipif(
    bool(WRAPPER) and shutil.which("setpriv") is None, reason="needs setpriv to drop root"
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = ROOT / "build" / "test-data" / f"unisolated-{uuid.uuid4().hex[:12]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_serve_says_what_is_missing_and_serves_anyway(data_dir: Path) -> None:
    server = RunningServer([SERVICES / "probe"], data_dir, wrapper=WRAPPER).start()
    try:
        output = "".join(server.output)
        assert "WARNING: functions are NOT isolated" in output
        assert ("root (" in output) or ("namespaces" in output)
        aws = lambda_client(server.url, server.credentials)
        response = aws.invoke(FunctionName="probe-dev-counter", Payload=b"{}")
        assert "FunctionError" not in response
        assert json.loads(response["Payload"].read())["calls"] == 1
    finally:
        assert server.stop() == 0


def test_without_a_jail_the_server_still_reaps_what_workers_leave(data_dir: Path) -> None:
    server = RunningServer([SERVICES / "attacker"], data_dir, wrapper=WRAPPER).start()
    try:
        aws = lambda_client(server.url, server.credentials)
        for _ in range(20):  # each forks a child and kills itself: the child is orphaned
            response = aws.invoke(FunctionName="attacker-dev-crash", Payload=b"{}")
            assert response.get("FunctionError") == "Unhandled"
        pid = server.proc.pid if server.proc else 0
        wait_until(lambda: zombie_children(pid) == [], 30, "the server to reap every orphan")
    finally:
        assert server.stop() == 0


def test_require_isolation_refuses_to_start(data_dir: Path) -> None:
    server = RunningServer([SERVICES / "probe"], data_dir, "--require-isolation", wrapper=WRAPPER)
    with pytest.raises(RuntimeError, match="--require-isolation") as refused:
        server.start()
    assert "functions cannot be isolated" in str(refused.value)
    assert server.proc is not None and server.proc.wait(timeout=10) == 1
