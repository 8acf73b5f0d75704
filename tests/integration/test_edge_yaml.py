"""serverless.yml bombs against the real commands (issue 11): `faasbox deploy` and `faasbox
serve` answer a billion-laughs or 10,000-deep file with a clear error and no traceback, and
`serve --watch` survives both and deploys the file once it is fixed."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, RunningServer, clean_env, wait_until

GOOD = (
    "service: watched\nfunctions:\n  f:\n    handler: app.f\n"
    "    events:\n      - httpApi: GET /version\n"
)


def billion_laughs() -> str:
    lines = [GOOD.rstrip("\n"), 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 7)}]")
    return "\n".join(lines) + "\n"


def deep() -> str:
    return GOOD + "custom: " + "[" * 10_000 + "]" * 10_000 + "\n"


BOMBS = {"billion laughs": (billion_laughs, "aliases expand"), "deep": (deep, "nested deeper")}


def service(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "svc"
    folder.mkdir(exist_ok=True)
    (folder / "serverless.yml").write_text(text)
    (folder / "app.py").write_text("def f(event, context):\n    return {'version': 1}\n")
    return folder


def faasbox(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "faasbox", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    return done, time.monotonic() - started


NUDGE_EVERY_S = 0.25  # rewrites further apart than watchfiles' step (50 ms): each is seen


def until(
    server: RunningServer,
    check: Callable[[], bool],
    seconds: float,
    what: str,
    nudge: Callable[[], None] = lambda: None,
) -> None:
    """Wait until `check` holds, calling `nudge` (rewrite the file, so an edit made before the
    watcher was up is seen too) at most every NUDGE_EVERY_S while it does not; failing, show
    the server's output."""
    last_nudge = float("-inf")

    def nudged_check() -> bool:
        nonlocal last_nudge
        if check():
            return True
        if time.monotonic() - last_nudge >= NUDGE_EVERY_S:
            nudge()
            last_nudge = time.monotonic()
        return False

    try:
        wait_until(nudged_check, seconds, what)
    except AssertionError as e:
        raise AssertionError(f"{e}; the server said:\n{''.join(server.output)}") from None


@pytest.mark.parametrize("bomb", BOMBS)
def test_serve_refuses_a_bomb_with_a_clear_error(tmp_path: Path, bomb: str) -> None:
    make, expected = BOMBS[bomb]
    folder = service(tmp_path, make())
    done, _ = faasbox(
        "serve", str(folder), "--port", "0", "--data-dir", str(tmp_path / "d"), env=clean_env()
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert f"{folder / 'serverless.yml'}: invalid YAML at line " in done.stderr
    assert expected in done.stderr


@pytest.fixture
def watching(tmp_path: Path) -> tuple[RunningServer, Path]:
    folder = service(tmp_path, GOOD)
    server = RunningServer([folder], tmp_path / "data", "--watch").start()
    yield server, folder
    server.stop()


def test_deploy_refuses_a_bomb_and_watch_survives_them(
    watching: tuple[RunningServer, Path],
) -> None:
    server, folder = watching
    file = folder / "serverless.yml"
    assert httpx.get(f"{server.url}/version").json() == {"version": 1}

    for make, expected in BOMBS.values():
        file.write_text(GOOD)
        done, _ = faasbox("deploy", str(folder), env=server.client_env())
        assert done.returncode == 0, done.stderr  # the good file deploys
        file.write_text(make())
        done, elapsed = faasbox("deploy", str(folder), env=server.client_env())
        assert done.returncode == 2 and expected in done.stderr, done.stderr
        assert elapsed < 10  # the CLI's start included; the refusal itself is instant
        assert "Traceback" not in done.stderr
        seen = len(server.output)

        def refused(expected: str = expected, seen: int = seen) -> bool:
            return any(expected in line for line in server.output[seen:])

        text = make()
        started = time.monotonic()
        until(
            server, refused, 30, "the watcher to refuse the bomb", lambda t=text: file.write_text(t)
        )
        # watchfiles' debounce (0.3 s) included; a loaded machine's scheduling too.
        assert time.monotonic() - started < 5
        assert server.alive()

    (folder / "app.py").write_text("def f(event, context):\n    return {'version': 2}\n")
    file.write_text(GOOD)

    def fixed() -> bool:
        return bool(httpx.get(f"{server.url}/version").json() == {"version": 2})

    until(server, fixed, 30, "the fixed file to be deployed")
    assert "Traceback" not in "".join(server.output)
