"""The jail, attacked: a deployed function tries to reach outside its execution environment
(tests/services/attacker) on a real server, deployed from serverless.yml and through the
Lambda control plane (CreateFunction with a zip); every attack must fail."""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    JAILED,
    ROOT,
    SERVICES,
    RunningServer,
    lambda_client,
    processes_of,
    wait_until,
    zombie_children,
)

pytestmark = pytest.mark.skipif(not JAILED, reason="jailing workers needs root and namespaces")

ATTACKER = SERVICES / "attacker"
VICTIM = SERVICES / "victim"


def wait_until_gone(uid: int, what: str) -> None:
    """Wait until no process runs as `uid` (a worker's, its daemons' too)."""
    wait_until(lambda: processes_of(uid) == [], 30, what)


def cgroups_of(server_pid: int) -> list[Path]:
    """The cgroups a server made (named faasbox-<its pid>-...) in any hierarchy."""
    found: list[Path] = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, rel = line.split(":", 2)
        for name in controllers.split(",") or [""]:
            mount = Path("/sys/fs/cgroup") / (name or "unified")
            found += (mount / rel.lstrip("/")).glob(f"faasbox-{server_pid}-*")
    return found


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    data_dir = ROOT / "build" / "test-data" / f"jail-{time.monotonic_ns()}"
    # --require-isolation: a machine that can jail starts, and says nothing is missing.
    running = RunningServer([ATTACKER, VICTIM], data_dir, "--require-isolation").start()
    assert "NOT isolated" not in "".join(running.output)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def invoke(server: RunningServer, name: str, event: dict[str, Any] | None = None) -> Any:
    aws = lambda_client(server.url, server.credentials)
    response = aws.invoke(FunctionName=name, Payload=json.dumps(event or {}), LogType="Tail")
    payload = json.loads(response["Payload"].read())
    log = base64.b64decode(response.get("LogResult", "")).decode()
    return response.get("FunctionError"), payload, log


def targets(server: RunningServer) -> dict[str, Any]:
    """The victim warm (its marker in its /tmp), and where the attacker should look."""
    error, seen, _ = invoke(server, "victim-dev-victim")
    assert error is None, seen
    assert seen["task_root"] == "/var/task"
    victims = processes_of(seen["uid"])
    assert victims, "the victim's worker runs as its own uid"
    assert server.proc is not None
    error, provided, _ = invoke(server, "victim-dev-provided-victim")
    assert error is None, provided
    assert provided["uid"] not in (0, seen["uid"])
    return {
        "runtime_api": provided["runtime_api"],  # a custom runtime's API, on the loopback
        "data_dir": str(server.data_dir.resolve()),
        "server_pid": server.proc.pid,
        "victim_pid": victims[0],
        "victim_code": str(next(server.data_dir.resolve().glob("code/*/victim.py"))),
        "victim_uid": seen["uid"],
    }


def assert_every_attack_failed(
    report: dict[str, Any], victim_uid: int, own_pids: tuple[int, ...] = (2,)
) -> None:
    succeeded = {name: what for name, what in report["found"].items() if what}
    assert succeeded == {}
    assert report["uid"] not in (0, victim_uid), "each function has a uid of its own"
    assert report["processes"] < 1024 and report["threads"] < 1024
    assert report["open_files"] < 1024
    assert 500 <= report["tmp_mb"] <= 512, "/tmp holds the default 512 MB ephemeral storage"
    # Its own pid namespace: itself and what it started; not even its init (another uid).
    assert report["visible_pids"] == list(own_pids)


@pytest.fixture
def host_shared_memory() -> Iterator[int]:
    """A System V shared memory segment of the host's, open to all (mode 0666)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(0, 4096, 0o1666)  # IPC_PRIVATE, IPC_CREAT | 0666
    assert segment >= 0
    try:
        yield segment
    finally:
        libc.shmctl(segment, 0, None)  # IPC_RMID


def test_a_deployed_function_cannot_reach_outside_its_jail(
    server: RunningServer, host_shared_memory: int
) -> None:
    where = targets(server)
    error, report, _ = invoke(server, "attacker-dev-attack", where)
    assert error is None, report
    assert_every_attack_failed(report, where["victim_uid"])
    assert "the victim's secret" not in json.dumps(report)
    code = Path(where["victim_code"]).read_text()
    assert "pwned" not in code


@pytest.mark.parametrize(
    ("name", "own_pids"),
    [
        ("attacker-dev-node-attack", (2,)),  # node, exec'd in the jail by its worker
        # The bootstrap; its Runtime API worker (pid 2, not dumpable) is out of its sight.
        ("attacker-dev-provided-attack", (3,)),
    ],
)
def test_nor_can_a_nodejs_or_custom_runtime_function(
    server: RunningServer, host_shared_memory: int, name: str, own_pids: tuple[int, ...]
) -> None:
    where = targets(server)
    error, report, _ = invoke(server, name, where)
    assert error is None, report
    assert_every_attack_failed(report, where["victim_uid"], own_pids)
    assert "the victim's secret" not in json.dumps(report)
    assert "pwned" not in Path(where["victim_code"]).read_text()


def test_a_function_created_through_the_control_plane_cannot_either(
    server: RunningServer,
) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.write(ATTACKER / "attack.py", "attack.py")
    aws = lambda_client(server.url, server.credentials)
    aws.create_function(
        FunctionName="cp-attacker",
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/lambda-role",
        Handler="attack.attack",
        Code={"ZipFile": buf.getvalue()},
        MemorySize=4096,
        Timeout=30,
    )
    where = targets(server)
    error, report, _ = invoke(server, "cp-attacker", where)
    assert error is None, report
    assert_every_attack_failed(report, where["victim_uid"])


@pytest.mark.parametrize(
    ("name", "error_type"),
    [
        ("attacker-dev-linger-timeout", "Sandbox.Timedout"),
        ("attacker-dev-node-linger-timeout", "Sandbox.Timedout"),
        ("attacker-dev-provided-linger-timeout", "Sandbox.Timedout"),
        ("attacker-dev-linger-memory", None),
    ],
)
def test_nothing_outlives_a_worker_killed_for_time_or_memory(
    server: RunningServer, name: str, error_type: str | None
) -> None:
    error, payload, log = invoke(server, name)
    assert error == "Unhandled", payload
    if error_type:
        assert payload["errorType"] == error_type
    else:
        assert payload["errorType"] == "Runtime.ExitError", payload
        assert payload["errorMessage"].endswith("signal: killed")
    uid = int(log.split("uid ", 1)[1].split()[0])
    wait_until_gone(uid, "the worker's daemon to die with it")


@pytest.mark.parametrize(
    ("name", "times"),
    [
        ("attacker-dev-crash", 100),
        ("attacker-dev-node-crash", 30),  # node's cold starts are slower: fewer
        ("attacker-dev-provided-crash", 30),
    ],
)
def test_the_server_reaps_every_child_of_faulty_invocations(
    server: RunningServer, name: str, times: int
) -> None:
    for _ in range(times):
        error, payload, _ = invoke(server, name)
        assert error == "Unhandled" and payload["errorType"] == "Runtime.ExitError", payload
    pid = server.proc.pid if server.proc else 0
    wait_until(lambda: zombie_children(pid) == [], 30, "the server to reap every child")


def test_network_none_leaves_only_loopback(server: RunningServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    error, offline, _ = invoke(server, "attacker-dev-offline", {"port": port})
    assert error is None, offline
    assert offline["interfaces"] == ["lo"]
    assert offline["server_port"].startswith("refused")
    error, online, _ = invoke(server, "attacker-dev-online", {"port": port})
    assert error is None, online
    assert online["server_port"] == "connected", "functions keep their network, as on Lambda"
    assert "size=614400k" in online["tmp_mount"], "ephemeralStorage sizes /tmp"


def test_nothing_outlives_the_server_and_no_cgroup_is_left() -> None:
    data_dir = ROOT / "build" / "test-data" / f"jail-stop-{time.monotonic_ns()}"
    running = RunningServer([ATTACKER], data_dir).start()
    try:
        assert running.proc is not None
        server_pid = running.proc.pid
        error, seen, _ = invoke(running, "attacker-dev-linger-normal")
        assert error is None, seen
        assert len(processes_of(seen["uid"])) >= 2, "the worker and its daemon run"
        assert cgroups_of(server_pid), "the server made cgroups for its workers"
    finally:
        running.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    wait_until_gone(seen["uid"], "the worker and its daemon to end with the server")
    assert cgroups_of(server_pid) == []


def test_a_new_server_cleans_what_a_crashed_one_left() -> None:
    data_dir = ROOT / "build" / "test-data" / f"jail-crash-{time.monotonic_ns()}"
    crashed = RunningServer([ATTACKER], data_dir).start()
    try:
        assert crashed.proc is not None
        crashed_pid = crashed.proc.pid
        error, seen, _ = invoke(crashed, "attacker-dev-linger-normal")
        assert error is None, seen
        crashed.proc.kill()  # SIGKILL: no shutdown, nothing cleaned
        crashed.proc.wait()
        # Its workers see their socket close and end, and their daemons with them.
        wait_until_gone(seen["uid"], "the crashed server's worker and daemon to end")
        assert cgroups_of(crashed_pid), "a crash leaves the server's cgroups"
        assert list((data_dir / "run").glob(f"root-{crashed_pid}-*"))
        restarted = RunningServer([ATTACKER], data_dir).start()
        try:
            assert cgroups_of(crashed_pid) == []
            assert not list((data_dir / "run").glob(f"root-{crashed_pid}-*"))
        finally:
            restarted.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
