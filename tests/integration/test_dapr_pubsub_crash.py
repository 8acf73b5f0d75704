"""Dapr pub/sub is at least once across a kill -9: events published (204 / gRPC OK) to a slow
subscriber are still undelivered when the server is killed; the server restarted on the same
data dir delivers every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from dapr.clients import DaprClient

from tests.async_support import Collector
from tests.support import SERVICES, RunningServer, wait_until

ENDPOINTS = re.compile(r"Dapr HTTP API on (http://\S+), gRPC API on (\S+)")
DAPR_ARGS = ("--dapr-http-port", "0", "--dapr-grpc-port", "0")
EVENTS = 30  # at 0.2 s each, two at a time (reservedConcurrency): seconds of backlog
SLEEP_S = 0.2


def endpoints(server: RunningServer) -> tuple[str, str]:
    found = ENDPOINTS.search("".join(server.output))
    assert found, "".join(server.output)
    return found.group(1), found.group(2)


def test_sigkill_with_events_undelivered_loses_none(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = Collector()
    server = RunningServer([SERVICES / "dapr-slow"], data_dir, *DAPR_ARGS).start()
    try:
        http, grpc = endpoints(server)
        # What DaprClient reads (its health check goes there first), as `dapr run` sets it;
        # without it, the SDK waits for a sidecar on its default port 3500.
        monkeypatch.setenv("DAPR_HTTP_ENDPOINT", http)
        monkeypatch.setenv("DAPR_GRPC_ENDPOINT", grpc)
        events = [{"collector": collector.url, "n": n, "sleep": SLEEP_S} for n in range(EVENTS)]
        # Half through the HTTP API, half through the SDK's gRPC PublishEvent.
        for event in events[: EVENTS // 2]:
            response = httpx.post(f"{http}/v1.0/publish/pubsub/work", json=event)
            assert response.status_code == 204, response.text
        with DaprClient(address=grpc) as client:
            for event in events[EVENTS // 2 :]:
                client.publish_event(
                    "pubsub", "work", json.dumps(event), data_content_type="application/json"
                )
        wait_until(lambda: len(collector.runs_of("n")) >= 2, 60, "the first deliveries")
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait()
        delivered_before_kill = set(collector.runs_of("n"))
        assert len(delivered_before_kill) < EVENTS, "all delivered before the kill: no test"

        server = RunningServer([SERVICES / "dapr-slow"], data_dir, *DAPR_ARGS).start()
        wait_until(
            lambda: set(collector.runs_of("n")) == set(range(EVENTS)),
            120,
            "every published event to be delivered after the restart",
        )
        runs = collector.runs_of("n")
        # Only what was being delivered at the kill (two at most, the reserved concurrency)
        # can be delivered twice; each event keeps its CloudEvent id across the restart.
        assert sum(c - 1 for c in runs.values()) <= 2, runs
        ids: dict[int, set[str]] = {}
        for report in collector.snapshot():
            ids.setdefault(report["n"], set()).add(report["id"])
        assert all(len(seen) == 1 for seen in ids.values()), ids
        assert len(set.union(*ids.values())) == EVENTS
    finally:
        server.stop()
        collector.close()
