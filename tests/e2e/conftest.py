"""Fixtures of the browser tests: real servers, Debian's chromium, fresh pages."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    CONSOLE_SERVICE,
    IMAGE_SERVICE,
    WASM_CLASSIFY,
    WASM_GRAYSCALE,
)
from tests.support import ROOT, RunningServer


def _data_dir() -> Path:
    path = ROOT / "build" / "test-data" / f"e2e-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="package")
def open_server() -> Iterator[RunningServer]:
    """A server started with --no-auth: the image service, the WebAssembly grayscale and
    classify, and the console's test functions; a failed async invocation is retried after
    3 s (test_console_async.py)."""
    data = _data_dir()
    dirs = [IMAGE_SERVICE, WASM_GRAYSCALE, WASM_CLASSIFY, CONSOLE_SERVICE]
    server = RunningServer(dirs, data, "--no-auth", "--async-retry-delay", "3").start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="package")
def auth_server() -> Iterator[RunningServer]:
    """A server whose management API needs a signature; only the image service (so the
    WebAssembly grayscale is not deployed there)."""
    data = _data_dir()
    server = RunningServer([IMAGE_SERVICE], data).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's chromium at {CHROMIUM}: run `make chromium` "
            "(as root it installs it with apt-get), or `sudo apt-get install chromium`."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser):  # type: ignore[no-untyped-def]
    """new_page(server, width=1100, height=900): a page in a fresh context (its own
    sessionStorage). The test fails if the page throws an uncaught exception or asks for
    anything from another origin (the page must work offline)."""
    contexts = []
    errors: list[str] = []

    def make(server: RunningServer, width: int = 1100, height: int = 900):  # type: ignore[no-untyped-def]
        context = browser.new_context(
            base_url=server.url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith((server.url + "/", "data:", "blob:"))
                else errors.append(f"request to another origin: {r.url}")
            ),
        )
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if ARTIFACTS.is_dir() and any(ARTIFACTS.iterdir()):
        terminalreporter.write_line(f"browser test screenshots: {ARTIFACTS}")
