from __future__ import annotations

import shutil
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx._transports.default
import pytest

from faasbox.storage import Database
from tests.postgres import PostgresServer, start_postgres, stop_postgres
from tests.support import ROOT

_create_ssl_context = httpx._transports.default.create_ssl_context
_default_ssl_context: ssl.SSLContext | None = None


def _ssl_context_made_once(
    verify: ssl.SSLContext | str | bool = True, cert: Any = None, trust_env: bool = True
) -> ssl.SSLContext:
    """httpx makes an SSL context for every client, so for every `httpx.get`, and reads
    certifi's bundle into it: ~36 ms of CPU, which a test polling a server with `httpx.get`
    paid 50 times a second on a 2-core machine, beside the server it waited for. The tests
    speak plain HTTP on loopback; the default context is made once and shared (an SSLContext
    is safe to share between clients and threads)."""
    global _default_ssl_context
    if verify is not True or cert is not None or not trust_env:
        return _create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
    if _default_ssl_context is None:
        _default_ssl_context = _create_ssl_context()
    return _default_ssl_context


httpx._transports.default.create_ssl_context = _ssl_context_made_once  # type: ignore[assignment]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What ran, in one block at the end of the run (`make test`): the counts, zeros too, and
    every skipped test with its reason, so a reader of CI's log sees what did not run."""
    stats = terminalreporter.stats
    counts = {"passed": len([r for r in stats.get("passed", []) if r.when == "call"])}
    counts |= {kind: len(stats.get(kind, [])) for kind in ("failed", "error", "skipped")}
    counts |= {kind: len(stats[kind]) for kind in ("xfailed", "xpassed") if stats.get(kind)}
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "what ran")
    write(", ".join(f"{n} {'errors' if kind == 'error' else kind}" for kind, n in counts.items()))
    for report in stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        write(f"SKIPPED {report.nodeid}: {reason.removeprefix('Skipped: ')}")
    if not counts["skipped"]:
        write("nothing was skipped")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside /tmp, so workers get their private /tmp as in production."""
    path = ROOT / "build" / "test-data" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run (tests/postgres.py), stopped at the end."""
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The stores' database, once per backend: the SQLite file of the data dir
    `tmp_path / "data"`, or a fresh database of the session's PostgreSQL server (dropped
    after the test, whatever connections it left open)."""
    if request.param == "sqlite":
        yield Database.open(None, tmp_path / "data")
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"t_{uuid.uuid4().hex[:16]}"
    server.database(name)
    try:
        yield Database(server.url(name))
    finally:
        server.drop(name)
