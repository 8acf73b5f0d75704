"""Browser tests: Playwright (sync API) driving Debian's chromium against real servers.

Playwright's own browser download is never used (`playwright install` is not run): the tests
launch /usr/bin/chromium (`make chromium` installs it). Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import EXAMPLES, ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
IMAGE_SERVICE = EXAMPLES / "image-service"  # POST /images/grayscale, POST /images/classify
WASM_GRAYSCALE = EXAMPLES / "wasm-grayscale"
CONSOLE_SERVICE = ROOT / "tests" / "services" / "console"  # console-dev-echo, -failing, -unlucky...
WASM_CLASSIFY = EXAMPLES / "wasm-classify"  # POST /wasm/classify (C + wasi-nn)
PHOTO = ROOT / "faasbox" / "web" / "sample.jpg"  # a real photo: Grace Hopper, 512x600 JPEG


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def console_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The page's console errors from now on (a failed request is one: Chromium logs it)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors
