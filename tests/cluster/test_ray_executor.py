"""The Ray executor on a real 2-node cluster, through a real `faasbox serve --ray`: functions
behave as on the local executor (results, errors, timeouts, REPORT lines), their environments
land on the node their resources name, /health lists both nodes, and a node whose raylet
dies fails only the invocations it was running (Runtime.ExitError) while the next succeed."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from faasbox.execution.process import protocol
from faasbox.execution.ray import channel
from tests.support import RunningServer, lambda_client, signed_request, wait_until

CODE = """
import os
import time


def hello(event, context):
    print("hello from", os.getpid())
    return {"hello": event.get("name", "world")}


def fail(event, context):
    raise ValueError("bad input: " + event.get("why", "none"))


calls = 0


def count(event, context):
    global calls
    calls += 1
    return {"calls": calls}


def nap(event, context):
    time.sleep(event.get("seconds", 0))
    return {"rested": event.get("seconds", 0), "request": context.aws_request_id}
"""
# A `provided` runtime that streams its response: its first piece, then the rest only once
# the test lets it go on (a byte over TCP to the port in the event): the test sees the first
# piece before it lets go only if the piece crossed the hop as it was made, not buffered.
STREAMING_BOOTSTRAP = """#!/usr/bin/env python3
import http.client, json, os, socket

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
base = "/2018-06-01/runtime/invocation"
api = http.client.HTTPConnection(host, int(port))
while True:
    api.request("GET", base + "/next")
    got = api.getresponse()
    request_id = got.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(got.read())
    api.putrequest("POST", base + "/" + request_id + "/response")
    api.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    api.putheader("Transfer-Encoding", "chunked")
    api.putheader("Content-Type", "text/plain")
    api.endheaders()
    def piece(data):
        api.send(b"%x\\r\\n%s\\r\\n" % (len(data), data))
    piece(b"first ")
    with socket.create_connection(("127.0.0.1", event["port"])) as gate:
        released = gate.recv(1) != b""
    piece(b"then the rest" if released else b"never released")
    api.send(b"0\\r\\n\\r\\n")
    api.getresponse().read()
"""
NAP_S = 3.0  # long enough to kill a node while its naps are in flight on a loaded machine
WAIT_S = 60.0  # bounds for Ray and the server on a loaded 2-core machine
FUNCTIONS = {
    "hello": {"handler": "handler.hello"},
    "fail": {"handler": "handler.fail"},
    "count": {"handler": "handler.count"},
    "sleepy": {"handler": "handler.nap", "timeout": 1},
    "onA": {"handler": "handler.hello", "faasbox": {"resources": {"node_a": 1}}},
    "onB": {"handler": "handler.hello", "faasbox": {"resources": {"node_b": 1}}},
    "limited": {"handler": "handler.nap", "timeout": 30, "reservedConcurrency": 1},
    "kept": {"handler": "handler.hello", "provisionedConcurrency": 1},
    # One environment per `slot`: node A has 2, node B 1, so three fill both nodes.
    "nap": {"handler": "handler.nap", "timeout": 30, "faasbox": {"resources": {"slot": 1}}},
}


@pytest.fixture(scope="module")
def server(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("services") / "onray"
    folder.mkdir()
    (folder / "handler.py").write_text(CODE)
    doc = {
        "service": "onray",
        # 128 MB: each environment asks Ray for 0.07 of a core (Lambda's share), so the
        # two nodes of 2 cores hold every environment of these tests at once.
        "provider": {"name": "aws", "runtime": "python3.11", "memorySize": 128},
        "functions": FUNCTIONS,
    }
    (folder / "serverless.yml").write_text(json.dumps(doc))
    streamer = folder.parent / "streamer"
    streamer.mkdir()
    (streamer / "bootstrap").write_text(STREAMING_BOOTSTRAP)
    (streamer / "bootstrap").chmod(0o755)
    streaming = {"runtime": "provided.al2023", "handler": "none", "timeout": 20}
    (streamer / "serverless.yml").write_text(
        json.dumps(
            {
                "service": "streamer",
                "provider": {"name": "aws", "memorySize": 128},
                "functions": {"streams": streaming},
            }
        )
    )
    running = RunningServer(
        [folder, streamer],
        tmp_path_factory.mktemp("data"),
        "--ray",
        cluster.address,
        "--queue-timeout",
        "30",
        "--memory-logs",
    ).start(timeout=WAIT_S)
    yield running
    running.stop()


def invoke(server: RunningServer, name: str, event: dict[str, Any]) -> dict[str, Any]:
    client = lambda_client(server.url, server.credentials)
    response = client.invoke(FunctionName=name, Payload=json.dumps(event), LogType="Tail")
    return {
        "payload": json.loads(response["Payload"].read()),
        "error": response.get("FunctionError"),
        "log": base64.b64decode(response.get("LogResult", "")).decode(),
    }


def health(server: RunningServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/_faasbox/health", timeout=30)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def workers(server: RunningServer, name: str) -> list[dict[str, Any]]:
    response = signed_request("GET", f"{server.url}/_faasbox/functions/{name}", server.credentials)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["workers"]
    return found


def test_warm_hello_error_and_timeout_behave_as_local(server: RunningServer) -> None:
    cold = invoke(server, "hello", {"name": "ray"})
    assert cold["error"] is None and cold["payload"] == {"hello": "ray"}
    assert "hello from" in cold["log"] and "Init Duration" in cold["log"]
    warm = invoke(server, "hello", {"name": "again"})
    assert warm["payload"] == {"hello": "again"}
    assert "REPORT RequestId" in warm["log"] and "Init Duration" not in warm["log"]
    [env] = workers(server, "hello")
    assert env["kind"] == "ray" and env["node"] and env["invocations"] == 2

    failed = invoke(server, "fail", {"why": "testing"})
    assert failed["error"] == "Unhandled"
    assert failed["payload"]["errorType"] == "ValueError"
    assert failed["payload"]["errorMessage"] == "bad input: testing"
    assert "Traceback" in failed["log"] or "ValueError" in failed["log"]

    timed_out = invoke(server, "sleepy", {"seconds": 5})
    assert timed_out["error"] == "Unhandled"
    assert timed_out["payload"]["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in timed_out["payload"]["errorMessage"]
    # The environment survives its worker's timeout: the next invocation runs, cold again.
    again = invoke(server, "sleepy", {"seconds": 0})
    assert again["error"] is None and again["payload"]["rested"] == 0


def test_invocations_land_on_both_nodes(server: RunningServer, cluster: Any) -> None:
    assert invoke(server, "onA", {"name": "a"})["payload"] == {"hello": "a"}
    assert invoke(server, "onB", {"name": "b"})["payload"] == {"hello": "b"}
    [on_a], [on_b] = workers(server, "onA"), workers(server, "onB")
    head = cluster.head_node.node_id
    assert on_a["node"] == head and on_b["node"] != head
    nodes = {n["id"]: n for n in health(server)["nodes"]}
    assert set(nodes) == {on_a["node"], on_b["node"]}
    assert all(n["address"] == "127.0.0.1" for n in nodes.values())
    assert nodes[on_a["node"]]["workers"] >= 1 and nodes[on_b["node"]]["workers"] >= 1


def test_reserved_and_provisioned_concurrency(server: RunningServer) -> None:
    # provisionedConcurrency: an environment starts at deploy and runs INIT before any call.
    wait_until(lambda: len(workers(server, "kept")) == 1, WAIT_S, "kept's provisioned worker")
    first = invoke(server, "kept", {"name": "warm"})
    assert first["payload"] == {"hello": "warm"} and "Init Duration" not in first["log"]

    # reservedConcurrency 1: two at once take turns in one environment (the queue waits 30 s).
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: invoke(server, "limited", {"seconds": 1}), range(2)))
    assert [r["payload"]["rested"] for r in both] == [1, 1]
    assert len(workers(server, "limited")) == 1


def test_a_dead_node_fails_only_its_invocations(server: RunningServer, cluster: Any) -> None:
    head = cluster.head_node.node_id
    with ThreadPoolExecutor(6) as pool:
        # Three naps fill every `slot`: two environments on node A, one on node B.
        # (Environments started for requests that a warm one served first join the pool.)
        first = list(pool.map(lambda _: invoke(server, "nap", {"seconds": 1}), range(3)))
        assert all(r["error"] is None for r in first)
        placed = wait_until(
            lambda: (
                nodes if len(nodes := [w["node"] for w in workers(server, "nap")]) == 3 else None
            ),
            WAIT_S,
            "three environments of nap",
        )
        assert sorted(n == head for n in placed) == [False, True, True]

        in_flight = [pool.submit(invoke, server, "nap", {"seconds": NAP_S}) for _ in range(3)]
        wait_until(
            lambda: sum(w["busy"] for w in workers(server, "nap")) == 3,
            WAIT_S,
            "three naps in flight",
        )
        [node_b] = [n for n in cluster.worker_nodes]
        node_b.kill_raylet()
        results = [f.result(timeout=WAIT_S) for f in in_flight]

        failed = [r for r in results if r["error"] is not None]
        assert len(failed) == 1, results  # node B's one nap, and only it
        assert failed[0]["payload"]["errorType"] == "Runtime.ExitError"
        assert all(r["payload"]["rested"] == NAP_S for r in results if r["error"] is None)

        after = list(pool.map(lambda _: invoke(server, "nap", {"seconds": 0.2}), range(3)))
        assert all(r["error"] is None for r in after), after
        assert invoke(server, "hello", {"name": "still"})["payload"] == {"hello": "still"}
        wait_until(
            lambda: [n["id"] for n in health(server)["nodes"]] == [head],
            WAIT_S,
            "node B to leave /health",
        )


def test_a_streamed_response_crosses_the_hop_as_it_is_made(server: RunningServer) -> None:
    client = lambda_client(server.url, server.credentials)
    with socket.create_server(("127.0.0.1", 0)) as gate:
        gate.settimeout(WAIT_S)
        response = client.invoke_with_response_stream(
            FunctionName="streams", Payload=json.dumps({"port": gate.getsockname()[1]})
        )
        events = iter(response["EventStream"])
        assert next(events) == {"PayloadChunk": {"Payload": b"first "}}
        released, _ = gate.accept()  # the function goes on only now
        with released:
            released.sendall(b"go")
            rest = list(events)
    chunks = [e["PayloadChunk"]["Payload"] for e in rest if "PayloadChunk" in e]
    assert b"".join(chunks) == b"then the rest"
    assert rest[-1] == {"InvokeComplete": {}}


def channel_of(cluster: Any, function: str) -> tuple[str, int]:
    """Where the one environment of `function` listens for its gateway (asked of its actor
    through Ray, as a driver of the cluster: the test knows no secret)."""
    import ray

    from faasbox.execution.ray.ledger import NAMESPACE

    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    try:
        names = [
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            # faasbox-env-<service>-<stage>-<function>-<12 hex>
            if a["name"].startswith("faasbox-env-") and a["name"][:-13].endswith(f"-{function}")
        ]
        [name] = names
        info = ray.get(ray.get_actor(name).info.remote(), timeout=WAIT_S)
        return info["address"], info["port"]
    finally:
        ray.shutdown()


def refused(raw: socket.socket) -> bool:
    """The other end closed the connection without a byte (a reset: it left bytes unread)."""
    try:
        return raw.recv(1) == b""
    except ConnectionResetError:
        return True


def test_the_channel_runs_nothing_for_a_client_without_the_secret(
    server: RunningServer, cluster: Any
) -> None:
    assert invoke(server, "count", {})["payload"] == {"calls": 1}
    address, port = channel_of(cluster, "count")
    header = {
        "request_id": "not-the-gateway",
        "invoked_arn": "arn:aws:lambda:us-east-1:000000000000:function:count",
        "client_context": None,
        "identity": None,
        "http_event": False,
        "trace_id": None,
    }
    call = protocol.encode(channel.CALL, header, b"{}")
    silent = socket.create_connection((address, port), timeout=WAIT_S)
    silent.sendall(channel.new_secret()[:-1])  # one byte short of a secret, then nothing
    # No secret (the frame's first bytes taken for one), zeros, another actor's secret.
    for opening in (b"", bytes(channel.SECRET_BYTES), channel.new_secret()):
        with socket.create_connection((address, port), timeout=WAIT_S) as raw:
            raw.sendall(opening + call)
            assert refused(raw)
    with silent:
        assert refused(silent)  # closed after AUTH_TIMEOUT_S
    # Nothing of theirs ran in the environment; its gateway's next invocation does.
    assert invoke(server, "count", {})["payload"] == {"calls": 2}


def test_serve_with_an_address_where_no_cluster_answers(tmp_path: Any) -> None:
    (tmp_path / "handler.py").write_text(CODE)
    doc = {
        "service": "lost",
        "provider": {"name": "aws"},
        "functions": {"hello": FUNCTIONS["hello"]},
    }
    (tmp_path / "serverless.yml").write_text(json.dumps(doc))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: refused
        done = subprocess.run(
            [sys.executable, "-m", "faasbox", "serve", str(tmp_path), "--port", "0",
             "--data-dir", str(tmp_path / "data"), "--ray", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=WAIT_S,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot join the Ray cluster at '127.0.0.1:{port}': nothing answers" in done.stderr


def test_the_ledger_keeps_a_claim_whose_actor_is_still_being_made(cluster: Any) -> None:
    """A gateway claims, then ships the code and names the actor: another gateway's claim in
    that moment must not take the first for one whose gateway died."""
    import ray

    from faasbox.execution.ray.ledger import NAMESPACE, ledger_for

    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    try:
        ledger = ledger_for("ledger-test-fn")
        assert ray.get(ledger.claim.remote("faasbox-env-first", 1), timeout=WAIT_S)
        # No actor of that name yet: the first gateway is still making it.
        assert not ray.get(ledger.claim.remote("faasbox-env-second", 1), timeout=WAIT_S)
        assert ray.get(ledger.count.remote(), timeout=WAIT_S) == 1
        # Made, then gone with its gateway (no actor answers to the name): pruned.
        ledger.confirm.remote("faasbox-env-first")
        assert ray.get(ledger.claim.remote("faasbox-env-second", 1), timeout=WAIT_S)
        assert ray.get(ledger.count.remote(), timeout=WAIT_S) == 1
        ray.kill(ledger)
    finally:
        ray.shutdown()
