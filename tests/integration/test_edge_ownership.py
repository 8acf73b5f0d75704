"""Function names and routes belong to the service that deployed them (issue 11): `faasbox
deploy` of another service taking them is refused naming both services and exits non-zero;
`--force` moves them; two routes of one service that conflict are refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import EXAMPLES, ROOT, RunningServer

HANDLER = "def get(event, context):\n    return {'statusCode': 200, 'body': %r}\n"


def service(root: Path, name: str, functions: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "serverless.yml").write_text(f"service: {name}\nfunctions:\n{functions}")
    (folder / "app.py").write_text(HANDLER % name)
    return folder


def function(key: str, route: str, extra: str = "") -> str:
    return f"  {key}:\n    handler: app.get\n{extra}    events:\n      - httpApi: {route}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([EXAMPLES / "hello"], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


def deploy(server: RunningServer, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faasbox", "deploy", str(folder), *args],
        capture_output=True,
        text=True,
        env=server.client_env(),
        cwd=ROOT,
        timeout=60,
    )


def test_takeovers_are_refused_and_force_moves_them(server: RunningServer, tmp_path: Path) -> None:
    items = service(tmp_path, "items-api", function("get", "'GET /items/{id}'"))
    assert deploy(server, items).returncode == 0
    assert httpx.get(f"{server.url}/items/1").text == "items-api"

    # The same place under another parameter name, and the same route exactly.
    for index, route in enumerate(("'GET /items/{itemId}'", "'GET /items/{id}'")):
        (tmp_path / str(index)).mkdir()
        bad = service(tmp_path / str(index), "bad", function("get", route))
        done = deploy(server, bad)
        assert done.returncode != 0
        assert "Service bad cannot take routes of service items-api" in done.stderr
        assert "bad-dev-get (service bad)" in done.stderr
        assert "items-api-dev-get (service items-api)" in done.stderr
        assert "--force" in done.stderr
        assert httpx.get(f"{server.url}/items/1").text == "items-api"

    # A function name of another service.
    thief = service(tmp_path, "thief", function("x", "GET /thief", "    name: items-api-dev-get\n"))
    done = deploy(server, thief)
    assert done.returncode != 0
    assert "Function items-api-dev-get belongs to service items-api" in done.stderr
    assert "service thief cannot take it" in done.stderr
    assert httpx.get(f"{server.url}/items/1").text == "items-api"

    # --force moves the route: the other service's function keeps running, without it.
    done = deploy(server, bad, "--force")
    assert done.returncode == 0, done.stderr
    assert "moved route GET /items/{id} from items-api-dev-get (service items-api)" in done.stdout
    assert httpx.get(f"{server.url}/items/1").text == "bad"
    # ... and redeploying the other service unchanged is now refused, until it is forced back.
    assert deploy(server, items).returncode != 0
    assert deploy(server, items, "--force").returncode == 0
    assert httpx.get(f"{server.url}/items/1").text == "items-api"

    done = deploy(server, thief, "--force")
    assert done.returncode == 0, done.stderr
    assert "moved function items-api-dev-get from service items-api" in done.stdout
    assert httpx.get(f"{server.url}/thief").text == "thief"


def test_conflicting_routes_inside_one_service_are_refused(
    server: RunningServer, tmp_path: Path
) -> None:
    twice = service(
        tmp_path, "twice", function("a", "'GET /twice/{a}'") + function("b", "'GET /twice/{b}'")
    )
    done = deploy(server, twice)
    assert done.returncode != 0
    assert "Two routes of service twice conflict" in done.stderr
    assert httpx.get(f"{server.url}/twice/1").status_code == 404
