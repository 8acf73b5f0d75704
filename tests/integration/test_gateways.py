"""Two `faasbox serve` processes sharing one database, as two gateways behind a load balancer:
on one data dir (its SQLite file), and on PostgreSQL with a data dir each (nothing shared but
the database, as on two machines). A function created through one is served by the other;
API keys and access keys made on one work on the other; 100 async events sent through both
run once each; a gateway killed with events in flight loses none (the other runs them) and
the other keeps serving.

The two servers are shared by the module; the kill comes last."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from faasbox.registry.access_keys import Credentials
from tests.async_support import Collector
from tests.postgres import PostgresServer
from tests.support import (
    ROOT,
    SERVICES,
    RunningServer,
    clean_env,
    faasbox_cli,
    lambda_client,
    wait_until,
)

RECORDER = "asynctest-dev-recorder"  # reservedConcurrency: 2 (per gateway)
DEADLINE_S = 30.0  # a bound for a loaded machine; the follow itself takes about 0.25 s


@dataclass(frozen=True)
class Shared:
    """What the two gateways share: one data dir (SQLite), or a PostgreSQL database."""

    data_dirs: tuple[Path, Path]
    database: str | None  # the PostgreSQL URL
    # Gateways with data dirs of their own share the access keys' master key (docs/security.md).
    env: dict[str, str]

    def serve_args(self) -> list[str]:
        return ["--database", self.database] if self.database else []

    def query(self, sql: str, *params: object) -> tuple[object, ...]:
        if self.database:
            with psycopg.connect(self.database) as conn:
                row = conn.execute(sql.replace("?", "%s"), params).fetchone()
        else:
            path = self.data_dirs[0] / "registry.sqlite3"
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                row = db.execute(sql, params).fetchone()
        assert row is not None
        return tuple(row)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    if request.param == "sqlite":
        data = tmp_path_factory.mktemp("shared-data")
        yield Shared((data, data), None, {})
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"gateways_{uuid.uuid4().hex[:12]}"
    server.database(name)
    try:
        dirs = (tmp_path_factory.mktemp("data-a"), tmp_path_factory.mktemp("data-b"))
        master_key = base64.b64encode(os.urandom(32)).decode()
        yield Shared(dirs, server.url(name), {"FAASBOX_MASTER_KEY": master_key})
    finally:
        server.drop(name)


@pytest.fixture(scope="module")
def gateways(shared: Shared) -> Iterator[tuple[RunningServer, RunningServer]]:
    # Both started with the same services, as gateways of one deployment are: the second
    # one's deploy of them is unchanged.
    a, b = (
        RunningServer([SERVICES / "async"], data, "--metrics-public", *shared.serve_args())
        for data in shared.data_dirs
    )
    try:
        a.start(env=shared.env)
        b.start(env=shared.env)
        # The admin key is made once, by the first gateway on the database, in its data dir.
        b.credentials = b.credentials or a.credentials
        yield a, b
    finally:  # also when B failed to start: A must not outlive the test run
        for server in (a, b):
            if server.alive():
                server.stop()


@pytest.fixture(scope="module")
def collector(shared: Shared) -> Iterator[Collector]:
    """The events' side effects, one collector per backend (a number runs once in each)."""
    running = Collector()
    yield running
    running.close()


def zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", source)
    return buffer.getvalue()


def invoke(aws: Any, name: str, payload: Any = None) -> tuple[int, Any]:
    """(status, parsed payload); 404 when the function is not (yet) known there."""
    try:
        response = aws.invoke(FunctionName=name, Payload=json.dumps(payload or {}))
    except aws.exceptions.ResourceNotFoundException:
        return 404, None
    return response["StatusCode"], json.loads(response["Payload"].read())


def test_a_function_created_through_one_gateway_is_served_by_the_other(
    gateways: tuple[RunningServer, RunningServer],
) -> None:
    a, b = gateways
    through_a, through_b = lambda_client(a.url, a.credentials), lambda_client(b.url, b.credentials)
    through_a.create_function(
        FunctionName="shared-hello",
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/lambda",
        Handler="handler.run",
        Code={"ZipFile": zipped("def run(event, context):\n    return 'v1'\n")},
    )
    wait_until(lambda: invoke(through_b, "shared-hello") == (200, "v1"), DEADLINE_S, "B serves v1")
    assert through_b.get_function(FunctionName="shared-hello")["Configuration"]["Handler"] == (
        "handler.run"
    )

    # New code through A: B's warm worker of v1 is drained, B serves v2.
    through_a.update_function_code(
        FunctionName="shared-hello",
        ZipFile=zipped("def run(event, context):\n    return 'v2'\n"),
    )
    wait_until(lambda: invoke(through_b, "shared-hello") == (200, "v2"), DEADLINE_S, "B serves v2")

    # Removed through B: A stops serving it.
    through_b.delete_function(FunctionName="shared-hello")
    wait_until(lambda: invoke(through_a, "shared-hello")[0] == 404, DEADLINE_S, "A forgets it")


def test_api_keys_and_access_keys_made_on_one_work_on_the_other(
    gateways: tuple[RunningServer, RunningServer],
    shared: Shared,
    tmp_path: Path,
) -> None:
    a, b = gateways
    service = tmp_path / "parity"
    shutil.copytree(SERVICES / "cli-parity", service)
    done = faasbox_cli(a, "deploy", str(service))
    assert done.returncode == 0, done.stderr
    match = re.search(r"api key parity-key: (\S+)", done.stdout)
    assert match, done.stdout
    key = match.group(1)

    def private(server: RunningServer, value: str) -> int:
        return httpx.post(f"{server.url}/parity/private", headers={"x-api-key": value}).status_code

    # Past the key check, the function runs (a 502: its reply is no API Gateway response);
    # a 404 is a route B does not know yet, a 403 a key it does not know.
    wait_until(
        lambda: private(b, key) not in (403, 404), DEADLINE_S, "B to take the API key made on A"
    )
    assert private(b, key) == private(a, key) == 502
    assert private(b, key + "x") == 403

    # An access key issued on the database (as `faasbox keys create` does) signs for both.
    issued = subprocess.run(
        [
            sys.executable,
            "-m",
            "faasbox",
            "keys",
            "create",
            "--data-dir",
            str(shared.data_dirs[0]),
            *shared.serve_args(),
        ],
        capture_output=True,
        text=True,
        env=clean_env(**shared.env),
        cwd=ROOT,
        timeout=60,
    )
    assert issued.returncode == 0, issued.stderr
    fields = dict(re.findall(r"^(aws_\w+)\s*=\s*(\S+)$", issued.stdout, re.MULTILINE))
    new = Credentials(fields["aws_access_key_id"], fields["aws_secret_access_key"])
    for server in (a, b):
        aws = lambda_client(server.url, new)
        names = wait_until(
            lambda aws=aws: [f["FunctionName"] for f in aws.list_functions()["Functions"]],
            DEADLINE_S,
            "the new key to sign",
        )
        assert RECORDER in names


def unfinished(shared: Shared, function: str) -> int:
    """Async invocations of `function` not yet done, as the shared database holds them."""
    (count,) = shared.query(
        "SELECT COUNT(*) FROM queue_messages WHERE queue = ?"
        " AND state NOT IN ('succeeded', 'failed')",
        f"function:{function}",
    )
    return int(count)  # type: ignore[call-overload]


def invocations_run(server: RunningServer, function: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(
        rf'^faasbox_invocations_total{{function="{re.escape(function)}"}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def send_events(servers: list[RunningServer], collector: Collector, numbers: range, sleep: float):
    """Event invocations of the recorder, through each server in turn; all must be 202."""
    clients = [lambda_client(s.url, s.credentials) for s in servers]
    for n in numbers:
        aws = clients[n % len(clients)]
        response = aws.invoke(
            FunctionName=RECORDER,
            InvocationType="Event",
            Payload=json.dumps({"collector": collector.url, "n": n, "sleep": sleep}),
        )
        assert response["StatusCode"] == 202


def test_100_async_events_through_both_gateways_run_once_each(
    gateways: tuple[RunningServer, RunningServer], collector: Collector, shared: Shared
) -> None:
    a, b = gateways
    before = [invocations_run(s, RECORDER) for s in gateways]
    send_events([a, b], collector, range(100), sleep=0.05)
    wait_until(lambda: set(range(100)) <= set(collector.runs_of("n")), 120, "all 100 events to run")
    wait_until(lambda: unfinished(shared, RECORDER) == 0, 60, "the queue to be done")
    runs = collector.runs_of("n")
    assert {n: runs[n] for n in range(100) if runs[n] != 1} == {}
    # Both gateways ran some: they share the queue, neither steals the other's leases.
    ran = [invocations_run(s, RECORDER) - was for s, was in zip(gateways, before, strict=True)]
    assert all(count > 0 for count in ran), ran
    assert sum(ran) == 100


def test_a_killed_gateways_events_run_on_the_other_and_it_keeps_serving(
    gateways: tuple[RunningServer, RunningServer], collector: Collector, shared: Shared
) -> None:
    a, b = gateways
    numbers = range(1000, 1030)
    # Through A only, each run long enough that A holds some leased when it is killed.
    send_events([a], collector, numbers, sleep=0.5)
    wait_until(
        lambda: any(n in collector.runs_of("n") for n in numbers), 60, "A to run some events"
    )
    assert a.proc is not None
    a.proc.kill()
    a.proc.wait()

    through_b = lambda_client(b.url, b.credentials)
    status, payload = invoke(through_b, RECORDER, {"collector": collector.url, "n": -1})
    assert (status, payload) == (200, {"n": -1})  # B serves sync calls with A dead

    # B finds A gone and runs what A had leased at once: this bound is under the leases'
    # length (timeout 10 s + 120 s), which B would otherwise wait out.
    wait_until(
        lambda: set(numbers) <= set(collector.runs_of("n")), 110, "every accepted event to run"
    )
    wait_until(lambda: unfinished(shared, RECORDER) == 0, 60, "the queue to be done")
    runs = collector.runs_of("n")
    # Only the events A was running at the kill (reservedConcurrency: 2) may have run twice.
    assert sum(runs[n] - 1 for n in numbers) <= 2, {n: runs[n] for n in numbers}
