"""examples/dapr-images (seed 003's demo) in the page and through curl: a photo to the page's
service, which calls the grayscale (WebAssembly) and classify services through Dapr's service
invocation and keeps each result's history in Dapr's state store."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import IMAGE_SERVICE, PHOTO, WASM_GRAYSCALE, screenshot
from tests.support import EXAMPLES, ROOT, RunningServer

pytestmark = pytest.mark.e2e

DAPR = re.compile(r"Dapr HTTP API on (http://\S+),")
GRAY_PIXELS = """() => {
  const img = document.getElementById("gray");
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let colored = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] !== data[i + 1] || data[i + 1] !== data[i + 2]) colored += 1;
  }
  return {width: canvas.width, height: canvas.height, colored};
}"""


@pytest.fixture(scope="module")
def images_server() -> Iterator[tuple[RunningServer, str]]:
    data = ROOT / "build" / "test-data" / f"e2e-{uuid.uuid4().hex[:12]}"
    data.mkdir(parents=True)
    server = RunningServer(
        [EXAMPLES / "dapr-images", IMAGE_SERVICE, WASM_GRAYSCALE],
        data,
        "--no-auth",
        "--dapr-http-port",
        "0",
        "--dapr-grpc-port",
        "0",
    ).start()
    try:
        found = DAPR.search("".join(server.output))
        assert found, "".join(server.output)
        yield server, found.group(1)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_the_page_grays_and_classifies_through_dapr(images_server, new_page) -> None:  # type: ignore[no-untyped-def]
    server, _ = images_server
    page = new_page(server)
    page.goto("/dapr-images")
    page.set_input_files("#photo", str(PHOTO))
    page.click("#grayscale")
    expect(page.locator("#gray")).to_be_visible(timeout=60_000)
    page.wait_for_function("document.getElementById('gray').naturalWidth > 0")
    pixels = page.evaluate(GRAY_PIXELS)
    assert (pixels["width"], pixels["height"]) == (512, 600)  # the photo's own size
    assert pixels["colored"] == 0
    page.click("#classify")
    expect(page.locator("#label")).to_have_text(
        re.compile(r"^.+ is detected with \d+/255 confidence$"), timeout=60_000
    )
    rows = page.locator("#history tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("classify")
    expect(rows.nth(1)).to_contain_text("grayscale")
    screenshot(page, "dapr-images")
    # The history is in the state store: a fresh page reads it back from there.
    again = new_page(server)
    again.goto("/dapr-images")
    expect(again.locator("#history tr")).to_have_count(2)


def test_curl_through_dapr_invoke(images_server) -> None:  # type: ignore[no-untyped-def]
    _, dapr = images_server
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "--max-time",
            "60",
            "-X",
            "POST",
            "--data-binary",
            f"@{PHOTO}",
            "-H",
            "content-type: image/jpeg",
            f"{dapr}/v1.0/invoke/dapr-images/method/dapr-images/classify",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert re.fullmatch(r".+ is detected with \d+/255 confidence", answer["result"])
    assert answer["history"][0]["op"] == "classify"
    # The classify service itself, straight through Dapr, answers the same.
    direct = httpx.post(
        f"{dapr}/v1.0/invoke/image-service/method/images/classify",
        content=PHOTO.read_bytes(),
        headers={"content-type": "image/jpeg", "accept": "text/plain"},
        timeout=60,
    )
    assert direct.status_code == 200 and direct.text == answer["result"]
    stored = httpx.get(f"{dapr}/v1.0/state/statestore/dapr-images-history").json()
    assert stored == answer["history"]
