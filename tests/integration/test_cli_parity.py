"""The Serverless Framework's verbs, against a real server, as a person types them: deploy
(created/updated/unchanged, endpoints, --config), deploy function -f, info, print, invoke
--context --raw, ls piped and --json, remove; and serve refusing a port in use before it
touches anything."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, SERVICES, RunningServer, clean_env, faasbox_cli

LONG = "parity-dev-first-function-with-a-rather-long-name"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([SERVICES / "probe"], tmp_path_factory.mktemp("data")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def service(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parity service, copied (the tests edit it), deployed once."""
    folder = tmp_path_factory.mktemp("svc") / "parity"
    shutil.copytree(SERVICES / "cli-parity", folder)
    done = faasbox_cli(server, "deploy", str(folder))
    assert done.returncode == 0, done.stderr
    # Both functions are new: "created", not "updated"; then the endpoints.
    assert f"  {LONG}: created" in done.stdout
    assert "  parity-dev-second: created" in done.stdout
    assert f"GET - {server.url}/parity/echo (HTTP API)" in done.stdout
    assert f"POST - {server.url}/parity/private (needs an API key)" in done.stdout
    assert "api key parity-key: " in done.stdout
    return folder


def test_a_second_deploy_of_the_same_files_is_unchanged(
    server: RunningServer, service: Path
) -> None:
    done = faasbox_cli(server, "deploy", "--config", str(service / "serverless.yml"))
    assert done.returncode == 0, done.stderr
    assert f"  {LONG}: unchanged" in done.stdout
    assert "  parity-dev-second: unchanged" in done.stdout
    assert "created" not in done.stdout and "updated" not in done.stdout


def test_info_shows_the_service(server: RunningServer, service: Path) -> None:
    done = faasbox_cli(server, "info", str(service))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("service: parity\nstage: dev\nregion: eu-central-1\n")
    assert "  parity-key (" in done.stdout
    assert f"  GET - {server.url}/parity/echo (HTTP API)" in done.stdout
    assert f"  first-function-with-a-rather-long-name: {LONG}" in done.stdout
    details = json.loads(faasbox_cli(server, "info", str(service), "--json").stdout)
    assert details["functions"] == {
        "first-function-with-a-rather-long-name": LONG,
        "second": "parity-dev-second",
    }
    assert details["apiKeys"] == ["parity-key"]
    assert len(details["endpoints"]) == 2
    other_stage = faasbox_cli(server, "info", str(service), "--stage", "prod")
    assert other_stage.returncode == 1
    assert "parity (stage prod) is not deployed" in other_stage.stderr


def test_print_shows_the_resolved_file(server: RunningServer, service: Path) -> None:
    done = faasbox_cli(server, "print", "-c", str(service / "serverless.yml"), "--stage", "qa")
    assert done.returncode == 0, done.stderr
    assert "STAGE_NAME: qa" in done.stdout  # ${sls:stage}, resolved
    as_json = json.loads(faasbox_cli(server, "print", str(service), "--format", "json").stdout)
    assert as_json["provider"]["environment"] == {"STAGE_NAME": "dev"}


def test_invoke_with_context_and_raw_data(server: RunningServer, service: Path) -> None:
    done = faasbox_cli(
        server,
        "invoke",
        "-f",
        LONG,
        "-d",
        '{"a": 1}',
        "--raw",
        "--context",
        '{"custom": {"tenant": "t1"}}',
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["event"] == '{"a": 1}'  # --raw: the text, as a JSON string
    assert result["custom"] == {"tenant": "t1"}
    bad = faasbox_cli(server, "invoke", "-f", LONG, "--context", "[1]")
    assert bad.returncode == 2 and "expected a JSON object" in bad.stderr


def test_ls_piped_keeps_whole_names_and_json_parses(server: RunningServer, service: Path) -> None:
    done = faasbox_cli(server, "ls")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "name",
        "service",
        "runtime",
        "handler",
        "memory",
        "timeout",
        "modified",
    ]
    assert LONG in [line.split()[0] for line in lines[1:]]
    assert "…" not in done.stdout
    listed = json.loads(faasbox_cli(server, "ls", "--json").stdout)
    assert {fn["name"] for fn in listed} >= {LONG, "parity-dev-second", "probe-dev-echo"}


def test_deploy_function_changes_only_that_function(server: RunningServer, service: Path) -> None:
    handler = service / "handler.py"
    handler.write_text(handler.read_text().replace("VERSION = 1", "VERSION = 2"))
    done = faasbox_cli(server, "deploy", "function", "-f", "second", str(service))
    assert done.returncode == 0, done.stderr
    assert "  parity-dev-second: updated" in done.stdout
    assert LONG not in done.stdout
    second = json.loads(faasbox_cli(server, "invoke", "-f", "parity-dev-second").stdout)
    first = json.loads(faasbox_cli(server, "invoke", "-f", LONG).stdout)
    assert (second["version"], first["version"]) == (2, 1)  # the other one kept its code
    missing = faasbox_cli(server, "deploy", "function", "-f", "third", str(service))
    assert missing.returncode == 2 and "no such function" in missing.stderr


def test_remove_takes_the_whole_service(server: RunningServer, service: Path) -> None:
    done = faasbox_cli(server, "remove", str(service))
    assert done.returncode == 0, done.stderr
    assert f"  {LONG}: removed" in done.stdout and "  parity-dev-second: removed" in done.stdout
    names = {fn["name"] for fn in json.loads(faasbox_cli(server, "ls", "--json").stdout)}
    assert not names & {LONG, "parity-dev-second"}
    assert "probe-dev-echo" in names  # other services stay
    schedules = json.loads(faasbox_cli(server, "schedules", "--json").stdout)
    assert [r for r in schedules if r["function"] == "parity-dev-second"] == []
    again = faasbox_cli(server, "remove", str(service))
    assert again.returncode == 1 and "nothing to remove" in again.stderr


def test_serve_on_a_port_in_use_fails_before_deploying(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = tmp_path / "data"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "faasbox",
                "serve",
                str(SERVICES / "probe"),
                "--port",
                str(port),
                "--data-dir",
                str(data),
            ],
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=ROOT,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Deployed" not in done.stdout
    assert not data.exists()  # nothing was touched
