"""The whole cluster on one machine: a real PostgreSQL server, the 2-node Ray cluster of the
conftest, and two `faasbox serve --ray ... --database postgresql://...` gateways on two ports,
each with a data dir of its own (they share the database and the master key only, as on two
machines). A service deployed through A is served by B, on both nodes, with the code B got
through the database; reservedConcurrency holds across both gateways (the ledger) and does
not lock B out while A's environment sits idle; 100 async events sent through both run once
each; A killed, B keeps serving and runs what A had accepted.

The raylet kill is tests/cluster/test_ray_executor.py's. The gateways are shared by the
module; the kill comes last."""

from __future__ import annotations

import base64
import itertools
import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.async_support import Collector
from tests.cluster.conftest import live_worker_node
from tests.postgres import PostgresServer
from tests.support import RunningServer, faasbox_cli, lambda_client, signed_request, wait_until

WAIT_S = 60.0  # bounds for Ray, PostgreSQL and two servers on a loaded 2-core machine
NAP_S = 1.5

SERVED = """
import json
import time
import urllib.request


def _report(url, doc):
    request = urllib.request.Request(url, data=json.dumps(doc).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def record(event, context):
    time.sleep(event.get("sleep", 0))
    _report(event["collector"], {"n": event["n"]})
    return {"n": event["n"]}


def nap(event, context):
    started = time.time()
    time.sleep(event["seconds"])
    _report(event["collector"], {"nap": event["tag"], "start": started, "end": time.time()})
    return {"tag": event["tag"]}
"""
# Started with both gateways (as a deployment's gateways start alike).
BOTH = {
    "recorder": {"handler": "handler.record", "timeout": 10},
    "single": {"handler": "handler.nap", "timeout": 30, "reservedConcurrency": 1},
}
# Deployed through A only, once both run: B gets it through the deploy revision, and its code
# through the database's code_zips, and ships that to the Ray nodes.
DEPLOYED_LATER = """
def where(event, context):
    return {"answer": event["question"] * 2}
"""
PINNED = {
    "onA": {"handler": "handler.where", "faasbox": {"resources": {"node_a": 1}}},
    "onB": {"handler": "handler.where", "faasbox": {"resources": {"node_b": 1}}},
}


def service(folder: Path, name: str, code: str, functions: dict[str, Any]) -> Path:
    folder.mkdir(parents=True)
    (folder / "handler.py").write_text(code)
    doc = {
        "service": name,
        # 128 MB: each environment asks Ray for 0.07 of a core, so both nodes hold them all.
        "provider": {"name": "aws", "runtime": "python3.11", "memorySize": 128},
        "functions": functions,
    }
    (folder / "serverless.yml").write_text(json.dumps(doc))
    return folder


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> Iterator[str]:
    name = f"cluster_{uuid.uuid4().hex[:12]}"
    postgres.database(name)
    try:
        yield postgres.url(name)
    finally:
        postgres.drop(name)


@pytest.fixture(scope="module")
def gateways(
    cluster: Any, database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, RunningServer]]:
    live_worker_node(cluster)  # the raylet test may have killed the first one
    folder = service(tmp_path_factory.mktemp("services") / "pair", "pair", SERVED, BOTH)
    env = {"FAASBOX_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    a, b = (
        RunningServer(
            [folder],
            tmp_path_factory.mktemp(f"data-{which}"),
            "--ray",
            cluster.address,
            "--database",
            database,
            "--max-workers",
            "4",
            # A request may wait for the other gateway's environment to free and a new one to
            # start in its place (seconds on a loaded machine); under boto3's 60 s read timeout.
            "--queue-timeout",
            "45",
            "--metrics-public",
        )
        for which in "ab"
    )
    try:
        a.start(WAIT_S, env)
        b.start(WAIT_S, env)
        # The admin key is made once, by the first gateway on the database, in its data dir.
        b.credentials = b.credentials or a.credentials
        yield a, b
    finally:  # also when B failed to start: A must not outlive the test run
        for server in (a, b):
            if server.alive():
                server.stop()


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.close()


def invoke(server: RunningServer, name: str, event: dict[str, Any]) -> tuple[Any, Any]:
    """(FunctionError or None, parsed payload)."""
    aws = lambda_client(server.url, server.credentials)
    response = aws.invoke(FunctionName=name, Payload=json.dumps(event))
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def workers(server: RunningServer, name: str) -> list[dict[str, Any]]:
    response = signed_request("GET", f"{server.url}/_faasbox/functions/{name}", server.credentials)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["workers"]
    return found


def health_nodes(server: RunningServer) -> dict[str, int]:
    response = httpx.get(f"{server.url}/_faasbox/health", timeout=30)
    response.raise_for_status()
    return {n["id"]: n["workers"] for n in response.json()["nodes"]}


def known(server: RunningServer, name: str) -> bool:
    aws = lambda_client(server.url, server.credentials)
    try:
        aws.get_function(FunctionName=name)
    except aws.exceptions.ResourceNotFoundException:
        return False
    return True


def test_deployed_through_one_served_by_the_other_on_both_nodes(
    gateways: tuple[RunningServer, RunningServer], cluster: Any, tmp_path: Path
) -> None:
    a, b = gateways
    folder = service(tmp_path / "later", "later", DEPLOYED_LATER, PINNED)
    done = faasbox_cli(a, "deploy", str(folder))
    assert done.returncode == 0, done.stderr
    wait_until(lambda: known(b, "later-dev-onB"), WAIT_S, "B to follow A's deploy")

    # B's data dir never saw the folder: the code reached B through the database, and the
    # nodes through B's object store.
    assert invoke(b, "later-dev-onA", {"question": 21}) == (None, {"answer": 42})
    assert invoke(b, "later-dev-onB", {"question": "ab"}) == (None, {"answer": "abab"})
    [on_a], [on_b] = workers(b, "later-dev-onA"), workers(b, "later-dev-onB")
    head = cluster.head_node.node_id
    assert on_a["node"] == head and on_b["node"] != head
    nodes = health_nodes(b)
    assert nodes[on_a["node"]] >= 1 and nodes[on_b["node"]] >= 1
    assert workers(a, "later-dev-onA") == []  # A started none: B ran them


def naps(collector: Collector) -> dict[str, tuple[float, float]]:
    return {r["nap"]: (r["start"], r["end"]) for r in collector.snapshot() if "nap" in r}


def test_reserved_concurrency_holds_across_both_gateways(
    gateways: tuple[RunningServer, RunningServer], collector: Collector
) -> None:
    a, b = gateways
    nap = {"collector": collector.url, "seconds": 0}
    # A's environment of `single` (reservedConcurrency 1) stays warm and idle after this...
    assert invoke(a, "pair-dev-single", {**nap, "tag": "a0"}) == (None, {"tag": "a0"})
    # ...and B is not locked out by it: B's claim waits, A gives its idle environment up.
    assert invoke(b, "pair-dev-single", {**nap, "tag": "b0"}) == (None, {"tag": "b0"})

    # One through each gateway at once: they take turns, never run side by side.
    calls = [(a, "a1"), (b, "b1")]
    with ThreadPoolExecutor(len(calls)) as pool:
        results = list(
            pool.map(
                lambda c: invoke(c[0], "pair-dev-single", {**nap, "seconds": NAP_S, "tag": c[1]}),
                calls,
            )
        )
    assert results == [(None, {"tag": tag}) for _, tag in calls]
    spans = sorted(span for tag, span in naps(collector).items() if tag in ("a1", "b1"))
    assert len(spans) == 2
    overlaps = [(x, y) for x, y in itertools.pairwise(spans) if y[0] < x[1]]
    assert overlaps == [], spans


def unfinished(database: str, function: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM queue_messages WHERE queue = %s"
            " AND state NOT IN ('succeeded', 'failed')",
            (f"function:{function}",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def send_events(servers: list[RunningServer], collector: Collector, numbers: range, sleep: float):
    clients = [lambda_client(s.url, s.credentials) for s in servers]
    for n in numbers:
        response = clients[n % len(clients)].invoke(
            FunctionName="pair-dev-recorder",
            InvocationType="Event",
            Payload=json.dumps({"collector": collector.url, "n": n, "sleep": sleep}),
        )
        assert response["StatusCode"] == 202


def ran_on(server: RunningServer, function: str) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines():
        if line.startswith(f'faasbox_invocations_total{{function="{function}"}} '):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_100_async_events_through_both_gateways_run_once_each(
    gateways: tuple[RunningServer, RunningServer], collector: Collector, database: str
) -> None:
    a, b = gateways
    send_events([a, b], collector, range(100), sleep=0.02)
    wait_until(lambda: set(range(100)) <= set(collector.runs_of("n")), 120, "all 100 to run")
    wait_until(lambda: unfinished(database, "pair-dev-recorder") == 0, WAIT_S, "the queue done")
    runs = collector.runs_of("n")
    assert {n: runs[n] for n in range(100) if runs[n] != 1} == {}
    ran = [ran_on(s, "pair-dev-recorder") for s in gateways]
    assert sum(ran) == 100 and all(count > 0 for count in ran), ran


def test_a_killed_gateway_the_other_keeps_serving_and_runs_its_events(
    gateways: tuple[RunningServer, RunningServer], collector: Collector, database: str
) -> None:
    a, b = gateways
    numbers = range(1000, 1030)
    # Through A only, each run long enough that A holds some leased when it is killed.
    # A holds `single`'s one environment when it dies: B's claim must outlive it.
    nap = {"collector": collector.url, "seconds": 0, "tag": "before-kill"}
    assert invoke(a, "pair-dev-single", nap) == (None, {"tag": "before-kill"})
    send_events([a], collector, numbers, sleep=0.5)
    wait_until(lambda: any(n in collector.runs_of("n") for n in numbers), WAIT_S, "A to run some")
    assert a.proc is not None
    a.proc.kill()
    a.proc.wait()

    # B serves at once, sync calls too; A's environments went with A (Ray ends a dead
    # driver's actors) and the ledger forgets their claims, so B's take their place.
    assert invoke(b, "pair-dev-recorder", {"collector": collector.url, "n": -1}) == (
        None,
        {"n": -1},
    )
    nap = {"collector": collector.url, "seconds": 0, "tag": "after-kill"}
    assert invoke(b, "pair-dev-single", nap) == (None, {"tag": "after-kill"})

    # B finds A gone (same machine: its process is not there) and runs what A had leased.
    # The bound is under the leases' length (timeout 10 s + 120 s), which B would otherwise wait.
    wait_until(lambda: set(numbers) <= set(collector.runs_of("n")), 110, "A's events to run")
    wait_until(lambda: unfinished(database, "pair-dev-recorder") == 0, WAIT_S, "the queue done")
    runs = collector.runs_of("n")
    # Only the events A was running at the kill may have run twice (A ran up to 4 at once).
    assert sum(runs[n] - 1 for n in numbers) <= 4, {n: runs[n] for n in numbers}
