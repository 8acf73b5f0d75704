"""`faasbox serve --watch`: an edit to a function's file is served without a restart."""

from __future__ import annotations

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
        # Printed once the folder is watched: an edit from now on is seen.
        server.wait_for_output("Watching 1 service folder(s) for changes.")
        app.write_text("def f(event, context):\n    return {'version': 2}\n")
        server.wait_for_output("Redeployed watched: watched-dev-f", timeout=60)
        assert httpx.get(f"{server.url}/version").json() == {"version": 2}
    finally:
        server.stop()
