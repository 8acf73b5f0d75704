"""The `faasbox` command starts without the server side: `--help` and the client's commands
import neither the server (uvicorn, faasbox.gateway, faasbox.execution) nor the configuration
models (pydantic), which took half a second of every command before a thing was done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: the modules loaded by `faasbox --help`, then by a client for a server.
PROBE = """
import contextlib, io, json, sys
from faasbox.cli.main import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    cli.main(["--help"], prog_name="faasbox")
after_help = sorted(sys.modules)
from faasbox.cli.client import Client
Client("http://127.0.0.1:8000")
print(json.dumps({"help": after_help, "client": sorted(sys.modules)}))
"""

SERVER_SIDE = ("uvicorn", "faasbox.gateway.", "faasbox.execution", "faasbox.dapr.")
MODELS = ("pydantic", "faasbox.config", "faasbox.registry.registry", "faasbox.registry.models")
# The serve options' defaults, kept apart from the server for the CLI (faasbox.gateway.edge_limits);
# a client signs its requests with faasbox.gateway.sigv4.
READ_BY_THE_CLI = {"faasbox.gateway.edge_limits", "faasbox.dapr.settings"}
SIGNING = {"faasbox.gateway.sigv4"}


def _loaded(modules: list[str], prefixes: tuple[str, ...], allowed: set[str]) -> list[str]:
    return [m for m in modules if m.startswith(prefixes) and m not in allowed]


def test_help_and_a_client_load_no_server_and_no_configuration_models() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert _loaded(loaded["help"], (*SERVER_SIDE, *MODELS, "httpx"), READ_BY_THE_CLI) == []
    assert _loaded(loaded["client"], (*SERVER_SIDE, *MODELS), READ_BY_THE_CLI | SIGNING) == []
