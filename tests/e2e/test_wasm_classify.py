"""The WebAssembly classify (examples/wasm-classify: C, inference through wasi-nn) run from
the page: it answers the Python classify function's top-1 for the same photo."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.helpers import PHOTO, screenshot
from tests.e2e.test_try_it import choose, top1

pytestmark = pytest.mark.e2e


def test_classify_in_webassembly_from_the_page(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    python = httpx.post(
        f"{open_server.url}/images/classify",
        content=PHOTO.read_bytes(),
        headers={"Content-Type": "image/jpeg", "Accept": "application/json"},
        timeout=60,
    )
    assert python.status_code == 200, python.text
    expected = top1(python.json())

    page = new_page(open_server)
    page.goto("/ui/")
    page.set_input_files("#file-input", PHOTO)
    choose(page, "classify-wasm")
    page.get_by_role("button", name="Run classify (WebAssembly)").click()
    page.wait_for_selector("#result-classes:not([hidden])")
    assert page.inner_text("#class-label").lower() == expected.lower()
    assert re.search(r"\d+/255 confidence", page.inner_text("#class-confidence"))
    assert page.inner_text("#result-status").startswith("200")
    screenshot(page, "try-classify-wasm")

    # The same answer without the page: the program's own sentence.
    wasm = httpx.post(
        f"{open_server.url}/wasm/classify",
        content=PHOTO.read_bytes(),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert wasm.status_code == 200 and wasm.headers["content-type"].startswith("text/plain")
    assert re.fullmatch(rf"{re.escape(expected)} is detected with \d+/255 confidence", wasm.text)
