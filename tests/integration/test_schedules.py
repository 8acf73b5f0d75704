"""Schedules on a real server: a real `rate(1 minute)` fires within 70 s of the deploy, with
EventBridge's Scheduled Event or the rule's input; `faasbox schedules` lists the rules with
their next fire times. (Fire times themselves are tested on an injected clock in
tests/unit/test_scheduler.py; this is the one test that waits for a real minute: its server
starts when the run has collected this module, tests/integration/conftest.py, so the minute
passes while the other tests run.)"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import SCHEDULES_SERVER
from tests.support import SERVICES, RunningServer, faasbox_cli, wait_until

EXAMPLE = SERVICES / "sls-examples" / "aws-python-scheduled-cron"
RATE_FN = "aws-python-scheduled-cron-dev-rateHandler"
CRON_FN = "aws-python-scheduled-cron-dev-cronHandler"
OWN_FN = "schedules-dev-scheduled"


def start_schedules_server(data: Path) -> RunningServer:
    return RunningServer([EXAMPLE, SERVICES / "schedules"], data, "--no-auth").start()


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    early = request.config.stash.get(SCHEDULES_SERVER, None)
    if early is not None:  # started at collection, stopped at the run's end
        yield early
        return
    running = start_schedules_server(tmp_path_factory.mktemp("data"))
    yield running
    running.stop()


def first_fires(server: RunningServer, name: str) -> list[dict[str, Any]]:
    """The function's invocation records, the earliest first (the server may have run for
    minutes before the test looks: each rate(1 minute) rule has fired once a minute)."""
    return sorted(logs(server, name), key=lambda r: r["started_at"])


def logs(server: RunningServer, name: str) -> list[dict[str, Any]]:
    # The newest 1,000 (the default is 100): the first fires stay in it for hours of run.
    response = httpx.get(
        f"{server.url}/_faasbox/functions/{name}/logs", params={"limit": 1000}, timeout=10
    )
    return list(response.json()["records"])


def deployed_at(server: RunningServer, name: str) -> datetime:
    fn = httpx.get(f"{server.url}/_faasbox/functions/{name}", timeout=10).json()
    return datetime.strptime(fn["lastModified"], "%Y-%m-%dT%H:%M:%S.%f%z")


def test_schedules_lists_rules_with_their_next_fire(server: RunningServer) -> None:
    result = faasbox_cli(server, "schedules", "--json")
    assert result.returncode == 0, result.stderr
    rules = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rules) == {
        f"{RATE_FN}-schedule-1",
        f"{CRON_FN}-schedule-1",
        f"{OWN_FN}-schedule-1",
        "with-input",
        "switched-off",
    }
    rate = rules[f"{RATE_FN}-schedule-1"]
    assert rate["expression"] == "rate(1 minute)" and rate["enabled"]
    first = deployed_at(server, RATE_FN) + timedelta(minutes=1)
    next_fire = datetime.strptime(rate["nextFire"], "%Y-%m-%dT%H:%M:%S%z")
    # deploy + k minutes (shown to the second), the first one still ahead
    assert next_fire >= first.replace(microsecond=0)
    assert (next_fire - first.replace(microsecond=0)) % timedelta(minutes=1) == timedelta(0)
    cron = datetime.strptime(rules[f"{CRON_FN}-schedule-1"]["nextFire"], "%Y-%m-%dT%H:%M:%S%z")
    assert cron.minute % 2 == 0 and cron.second == 0 and cron.weekday() < 5  # MON-FRI
    assert cron > datetime.now(UTC) - timedelta(minutes=1)
    assert rules["switched-off"]["enabled"] is False and rules["switched-off"]["nextFire"] is None
    assert rules["with-input"]["arn"] == "arn:aws:events:eu-west-1:000000000000:rule/with-input"
    # The table, piped: whole names, one rule a line.
    table = faasbox_cli(server, "schedules", "-f", OWN_FN)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["rule", "function", "schedule"]
    assert sorted(line.split()[0] for line in lines[1:]) == [
        f"{OWN_FN}-schedule-1",
        "switched-off",
        "with-input",
    ]


def test_a_real_rate_of_one_minute_fires_within_70_seconds(server: RunningServer) -> None:
    deadline = deployed_at(server, RATE_FN).timestamp() + 70
    # The official example: its handler logs the time it ran.
    record = wait_until(
        lambda: first_fires(server, RATE_FN), max(deadline - time.time(), 1), "rateHandler to run"
    )[0]
    assert f"Your cron function {RATE_FN} ran at" in record["log"]
    assert record["started_at"] <= deadline
    # faasbox's own service: the event as EventBridge sends it, and as the rule's input.
    own_deadline = deployed_at(server, OWN_FN).timestamp() + 70
    records = wait_until(
        lambda: (r := first_fires(server, OWN_FN)) and len(r) >= 2 and r,
        max(own_deadline - time.time(), 1),
        "both rate(1 minute) rules of the schedules service to fire",
    )
    assert records[1]["started_at"] <= own_deadline  # the first fire of each rule
    events = [
        json.loads(line.split("EVENT ", 1)[1])
        for r in records[:2]
        for line in r["log"].splitlines()
        if "EVENT " in line
    ]
    assert {"greeting": "hello"} in events
    [scheduled] = [e for e in events if e.get("detail-type") == "Scheduled Event"][:1]
    assert scheduled["source"] == "aws.events"
    assert scheduled["region"] == "eu-west-1"
    assert scheduled["account"] == "000000000000"
    assert scheduled["resources"] == [
        f"arn:aws:events:eu-west-1:000000000000:rule/{OWN_FN}-schedule-1"
    ]
    assert scheduled["detail"] == {} and scheduled["version"] == "0"
    fired = datetime.strptime(scheduled["time"], "%Y-%m-%dT%H:%M:%S%z")
    assert fired == (deployed_at(server, OWN_FN) + timedelta(minutes=1)).replace(microsecond=0)
    # The listing shows the fire.
    rules = {
        r["name"]: r for r in httpx.get(f"{server.url}/_faasbox/schedules").json()["schedules"]
    }
    assert rules["with-input"]["lastFire"] is not None


def test_a_deploy_with_a_bad_schedule_is_refused_by_the_server(server: RunningServer) -> None:
    # A client that skipped the file check (or the management API called directly).
    config = {
        "name": "bad-dev-tick",
        "handler": "handler.show",
        "runtime": "python3.11",
        "events": [{"schedule": "rate(1 minutes)"}],
    }
    zipped = base64.b64encode(zip_of({"handler.py": "def show(e, c):\n    return e\n"}))
    response = httpx.post(
        f"{server.url}/_faasbox/deploy",
        json={"service": "bad", "functions": [config], "code_zip": zipped.decode()},
        timeout=30,
    )
    assert response.status_code == 400
    assert "events[0].schedule: rate(1 minutes)" in response.json()["message"]
    assert response.headers["x-amzn-errortype"] == "InvalidParameterValueException"


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()
