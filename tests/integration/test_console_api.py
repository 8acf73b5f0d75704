"""The console's management endpoints (saved test events, stats) and the page's public fact
sheet (/ui/server.json), against a real server with authentication, with signed requests."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from faasbox.gateway.console_api import MAX_RAW_BODY
from tests.support import SERVICES, RunningServer, signed_request

ECHO = "console-dev-echo"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([SERVICES / "console"], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


def call(server: RunningServer, method: str, path: str, body: bytes = b"") -> httpx.Response:
    return signed_request(method, f"{server.url}/_faasbox/{path}", server.credentials, content=body)


def invoke(server: RunningServer, name: str, event: object) -> httpx.Response:
    url = f"{server.url}/2015-03-31/functions/{name}/invocations"
    return signed_request("POST", url, server.credentials, content=json.dumps(event).encode())


def test_saved_test_events(server: RunningServer) -> None:
    path = f"functions/{ECHO}/test-events"
    assert call(server, "GET", path).json() == {"function": ECHO, "events": []}
    saved = call(server, "PUT", f"{path}/first", b'{"a": 1}')
    assert saved.status_code == 200 and saved.json()["event"] == {"a": 1}
    call(server, "PUT", f"{path}/first", b'{"a": 2}').raise_for_status()
    events = call(server, "GET", path).json()["events"]
    assert [(e["name"], e["event"]) for e in events] == [("first", {"a": 2})]

    # Bad input: AWS-shaped 400s and 404s that say what was wrong.
    bad = call(server, "PUT", f"{path}/has%20space", b"{}")
    assert bad.status_code == 400
    assert bad.headers["x-amzn-errortype"] == "InvalidParameterValueException"
    assert "Invalid test event name 'has space'" in bad.json()["Message"]
    bad = call(server, "PUT", f"{path}/second", b'{"a": ')
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["Message"]
    missing = call(server, "GET", "functions/no-such-function/test-events")
    assert missing.status_code == 404
    assert call(server, "DELETE", f"{path}/never-saved").status_code == 404
    assert call(server, "POST", path).status_code == 404  # no such route

    # Unsigned: refused like the rest of the management API.
    assert httpx.get(f"{server.url}/_faasbox/{path}").status_code == 403

    assert call(server, "DELETE", f"{path}/first").json() == {"deleted": "first"}
    assert call(server, "GET", path).json()["events"] == []


def test_a_removed_function_loses_its_events(server: RunningServer) -> None:
    name = "console-dev-failing"
    call(server, "PUT", f"functions/{name}/test-events/doomed", b"{}").raise_for_status()
    call(server, "DELETE", f"functions/{name}").raise_for_status()
    assert call(server, "GET", f"functions/{name}/test-events").status_code == 404
    db = sqlite3.connect(server.data_dir / "registry.sqlite3")
    assert db.execute(
        "SELECT COUNT(*) FROM test_events WHERE function = ?", (name,)
    ).fetchone() == (0,)


def test_stats_per_minute_and_per_function(server: RunningServer) -> None:
    for n in range(3):
        assert invoke(server, ECHO, {"n": n}).status_code == 200
    assert invoke(server, ECHO, {"fail": "yes"}).headers["x-amz-function-error"] == "Unhandled"
    stats = call(server, "GET", f"functions/{ECHO}/stats?minutes=60").json()
    assert stats["function"] == ECHO and len(stats["buckets"]) == 60
    starts = [b["start"] for b in stats["buckets"]]
    assert starts == sorted(starts) and all(b - a == 60 for a, b in itertools.pairwise(starts))
    assert sum(b["invocations"] for b in stats["buckets"]) >= 4
    assert sum(b["errors"] for b in stats["buckets"]) >= 1
    busy = [b for b in stats["buckets"] if b["invocations"]]
    assert all(b["p50Ms"] is not None and b["p99Ms"] >= b["p50Ms"] for b in busy)

    everyone = call(server, "GET", "stats").json()
    assert everyone["minutes"] == 60
    echo = everyone["functions"][ECHO]
    assert echo["invocations"] >= 4 and echo["errors"] >= 1 and echo["lastStatus"] == "error"
    assert everyone["functions"]["console-dev-size"]["lastInvocation"] is None

    for bad in ["0", "abc", "100000"]:
        answer = call(server, "GET", f"functions/{ECHO}/stats?minutes={bad}")
        assert answer.status_code == 400 and "expected a whole number" in answer.json()["Message"]


def test_the_pages_fact_sheet(server: RunningServer) -> None:
    paths = ["/console/echo", "/console/keyed", "/images/grayscale", "/console/size"]
    query = "&".join(f"post={p}" for p in paths)
    facts = httpx.get(f"{server.url}/ui/server.json?{query}")  # no signature needed
    assert facts.status_code == 200
    # Only public routes: not the one that needs an API key, not what is not deployed.
    assert facts.json() == {
        "auth": True,
        "maxUploadBytes": MAX_RAW_BODY,
        "postRoutes": ["/console/echo", "/console/size"],
    }


def test_the_upload_limit_the_page_states_is_true(server: RunningServer) -> None:
    # The largest file the page lets through reaches the function; a little more does not.
    fits = httpx.post(f"{server.url}/console/size", content=os.urandom(MAX_RAW_BODY), timeout=60)
    assert fits.status_code == 200, fits.text
    assert fits.json() == {"bodyChars": (MAX_RAW_BODY + 2) // 3 * 4, "isBase64Encoded": True}
    over = os.urandom(4_800_000)  # "a 4.8 MB binary body"
    assert httpx.post(f"{server.url}/console/size", content=over, timeout=60).status_code == 413
    assert MAX_RAW_BODY > 4.4 * 1024 * 1024  # "about 4.5 MB"
