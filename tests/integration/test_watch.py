"""`faasbox serve --watch`: an edit to a function's file is served without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support import RunningServer


def test_watch_picks_up_an_edit(tmp_path: Path) -> None:
    service = tmp_path / "svc"
    service.mkdir()
    (service / "serverless.yml").write_text(
        "service: watched\nprovider:\n  name: aws\nfunctions:\n  f:\n    handler: app.f\n"
        "    events:\n      - httpApi: GET /version\n"
    )
    app = service / "app.py"
    app.write_text("def f(event, context):\n    return {'version': 1}\n")
    server = RunningServer([service], tmp_path / "data", "--watch").start()
    try:
        assert httpx.get(f"{server.url}/version").json() == {"version": 1}
        time.sleep(0.5)  # the watcher is up before the edit
        app.write_text("def f(event, context):\n    return {'version': 2}\n")
        deadline = time.monotonic() + 20
        seen = None
        while time.monotonic() < deadline:
            seen = httpx.get(f"{server.url}/version").json()
            if seen == {"version": 2}:
                break
            time.sleep(0.2)
        assert seen == {"version": 2}, "".join(server.output)
        assert "Redeployed watched: watched-dev-f" in "".join(server.output)
    finally:
        server.stop()
