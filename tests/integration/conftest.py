"""The integration tests' one early start: the schedules test waits for a real
`rate(1 minute)` to fire (tests/integration/test_schedules.py), so its server starts as soon
as the run has collected that module, and the minute passes while the other tests run."""

from __future__ import annotations

import shutil
import uuid

import pytest

from tests.support import ROOT, RunningServer

SCHEDULES_MODULE = "test_schedules.py"
SCHEDULES_SERVER = pytest.StashKey[RunningServer]()


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if not any(item.path.name == SCHEDULES_MODULE for item in session.items):
        return
    from tests.integration.test_schedules import start_schedules_server

    data = ROOT / "build" / "test-data" / f"schedules-{uuid.uuid4().hex[:12]}"
    data.mkdir(parents=True)
    session.config.stash[SCHEDULES_SERVER] = start_schedules_server(data)


def pytest_sessionfinish(session: pytest.Session) -> None:
    server = session.config.stash.get(SCHEDULES_SERVER, None)
    if server is not None:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
