"""The "Try it" view: a real photo through the real functions, as a person uses the page."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import PHOTO, screenshot

pytestmark = pytest.mark.e2e

# Reads the result <img> into a canvas in the page and samples its pixels.
SAMPLE_PIXELS = """() => {
  const img = document.getElementById("result-image");
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const step = Math.max(1, Math.floor(data.length / 4 / 997));
  let sampled = 0, colored = 0;
  const levels = new Set();
  for (let i = 0; i < data.length / 4; i += step) {
    const [r, g, b] = [data[4 * i], data[4 * i + 1], data[4 * i + 2]];
    sampled += 1;
    if (r !== g || g !== b) colored += 1;
    levels.add(r);
  }
  return {width: canvas.width, height: canvas.height, sampled, colored, levels: levels.size};
}"""

# Whether the original photo (the <img> beside the result) has color at all.
ORIGINAL_COLORED = """() => {
  const img = document.getElementById("original-image");
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let colored = 0;
  for (let i = 0; i < data.length; i += 4 * 97) {
    if (Math.abs(data[i] - data[i + 1]) > 8 || Math.abs(data[i + 1] - data[i + 2]) > 8) colored++;
  }
  return colored;
}"""


def choose(page, function: str) -> None:  # type: ignore[no-untyped-def]
    """Pick a function by its id: grayscale, classify or grayscale-wasm."""
    page.check(f'.choice[data-function="{function}"] input')


def top1(answer: dict) -> str:  # type: ignore[type-arg]
    """The top class in the classify function's JSON answer."""
    if answer.get("label"):
        return str(answer["label"])
    for key in ("top5", "top", "predictions"):
        if answer.get(key):
            return str(answer[key][0]["label"])
    raise AssertionError(f"no label in {answer}")


def test_grayscale_of_a_real_photo(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    page.goto("/")  # no function claims "/": it leads to the page
    assert page.url.endswith("/ui/")
    page.set_input_files("#file-input", PHOTO)
    choose(page, "grayscale")
    page.get_by_role("button", name="Run grayscale").click()
    page.wait_for_selector("#result-images:not([hidden]) #result-image")
    page.wait_for_function("document.getElementById('result-image').complete")

    pixels = page.evaluate(SAMPLE_PIXELS)
    assert (pixels["width"], pixels["height"]) == (512, 600), pixels
    assert pixels["sampled"] > 500 and pixels["colored"] == 0, pixels
    assert pixels["levels"] > 50, pixels  # a photo, not a flat gray rectangle
    assert page.evaluate(ORIGINAL_COLORED) > 100  # beside it, the original in color
    assert re.fullmatch(r"\d+ ms", page.inner_text("#latency"))
    assert page.inner_text("#result-status").startswith("200")
    screenshot(page, "try-grayscale")


def test_an_image_dropped_on_the_page(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    page.goto("/ui/")
    photo = list(PHOTO.read_bytes())
    transfer = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"});
            transfer.items.add(file);
            return transfer;
        }""",
        photo,
    )
    page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": transfer})
    assert "dragging" in (page.get_attribute("#dropzone", "class") or "")
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#input-preview:not([hidden])")
    assert page.inner_text("#input-name").startswith("dropped.jpg")
    expect(page.get_by_role("button", name="Run grayscale")).to_be_enabled()


def test_classify_shows_the_functions_top1(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    answer = httpx.post(
        f"{open_server.url}/images/classify",
        content=PHOTO.read_bytes(),
        headers={"Content-Type": "image/jpeg", "Accept": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    expected = top1(answer.json())

    page = new_page(open_server)
    page.goto("/ui/")
    page.get_by_role("button", name="Use a sample photo").click()  # the same photo
    page.wait_for_selector("#input-preview:not([hidden])")
    choose(page, "classify")
    page.get_by_role("button", name="Run classify").click()
    page.wait_for_selector("#result-classes:not([hidden])")

    assert page.inner_text("#class-label").lower() == expected.lower()
    bars = page.locator("#class-bars li")
    assert 1 <= bars.count() <= 5
    assert bars.first.locator(".bar-label").inner_text().lower() == expected.lower()
    widths = page.eval_on_selector_all(
        "#class-bars .bar-fill", "fills => fills.map(f => f.getBoundingClientRect().width)"
    )
    assert widths == sorted(widths, reverse=True) and widths[0] > 0
    assert re.fullmatch(r"\d+ ms", page.inner_text("#latency"))
    screenshot(page, "try-classify")


def test_grayscale_in_webassembly(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    page.goto("/ui/")
    page.set_input_files("#file-input", PHOTO)
    choose(page, "grayscale-wasm")
    page.get_by_role("button", name="Run grayscale (WebAssembly)").click()
    page.wait_for_selector("#result-images:not([hidden]) #result-image")
    page.wait_for_function("document.getElementById('result-image').complete")
    pixels = page.evaluate(SAMPLE_PIXELS)
    assert (pixels["width"], pixels["height"]) == (512, 600), pixels
    assert pixels["colored"] == 0 and pixels["levels"] > 50, pixels
    screenshot(page, "try-grayscale-wasm")


def test_a_function_failure_shows_a_message(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    # The WebAssembly grayscale exits 1 on a body that is not an image: API Gateway's 502.
    page = new_page(open_server)
    page.goto("/ui/")
    page.set_input_files(
        "#file-input", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}
    )
    choose(page, "grayscale-wasm")
    page.get_by_role("button", name="Run grayscale (WebAssembly)").click()
    alert = page.locator("#try-message")
    alert.wait_for(state="visible")
    assert re.search(r"failed: Internal server error \(HTTP 5\d\d\)", alert.inner_text())
    screenshot(page, "try-function-failed")
    # Its link leads to that invocation's log, with the reason for the 502.
    alert.get_by_role("link", name="See its log.").click()
    opened = page.locator("#invocation-list details[open]")
    opened.wait_for()
    assert "/log/" in page.url and opened.get_attribute("data-request-id") in page.url
    assert opened.get_attribute("data-status") != "success"
    assert "START RequestId" in opened.locator("pre.log").inner_text()


def test_a_non_image_shows_the_functions_message(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    text = b"these are not the pixels you are looking for\n"
    answer = httpx.post(
        f"{open_server.url}/images/grayscale",
        content=text,
        headers={"Content-Type": "text/plain"},
        timeout=60,
    )
    assert answer.status_code == 400, answer.text
    message = answer.json().get("message") or answer.json().get("errorMessage")

    page = new_page(open_server)
    page.goto("/ui/")
    page.set_input_files(
        "#file-input", {"name": "notes.txt", "mimeType": "text/plain", "buffer": text}
    )
    choose(page, "grayscale")
    page.get_by_role("button", name="Run grayscale").click()
    alert = page.locator("#try-message")
    alert.wait_for(state="visible")
    assert message in alert.inner_text()
    assert "400" in alert.inner_text()
    assert page.locator("#result").is_hidden()
    screenshot(page, "try-not-an-image")


def test_a_network_failure_shows_a_message(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    page.goto("/ui/")
    page.set_input_files("#file-input", PHOTO)
    page.route("**/images/grayscale", lambda route: route.abort("connectionrefused"))
    choose(page, "grayscale")
    page.get_by_role("button", name="Run grayscale").click()
    alert = page.locator("#try-message")
    alert.wait_for(state="visible")
    assert "Could not reach the faasbox server" in alert.inner_text()
    expect(page.get_by_role("button", name="Run grayscale")).to_be_enabled()  # it can be retried


def test_the_choices_are_the_deployed_functions(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)  # --no-auth: the page reads the deployed routes
    page.goto("/ui/")
    page.wait_for_selector("text=The image functions deployed on this server.")
    titles = page.locator(".choice-title").all_inner_texts()
    assert titles == ["Grayscale", "Classify", "Grayscale (WebAssembly)", "Classify (WebAssembly)"]


def test_phone_width(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server, width=375, height=740)
    page.goto("/ui/")
    page.set_input_files("#file-input", PHOTO)
    choose(page, "classify")
    page.get_by_role("button", name="Run classify").click()
    page.wait_for_selector("#result-classes:not([hidden])")
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) == 0
    screenshot(page, "phone-classify")

    choose(page, "grayscale")
    page.get_by_role("button", name="Run grayscale").click()
    page.wait_for_selector("#result-images:not([hidden])")
    page.wait_for_function("document.getElementById('result-image').complete")
    assert page.evaluate(overflow) == 0
    boxes = [page.locator(s).bounding_box() for s in ("#original-image", "#result-image")]
    assert all(b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 375 for b in boxes)
    screenshot(page, "phone-grayscale")

    page.goto("/ui/#functions")
    page.wait_for_selector("#function-rows tr")
    assert page.evaluate(overflow) == 0
    screenshot(page, "phone-functions")


def test_a_too_large_file_is_refused_before_upload(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    page.goto("/ui/")
    hint = page.inner_text("#input-name")
    assert hint == "JPEG, PNG, GIF or WebP, up to about 4.5 MB"
    assert "6 MB" in page.inner_text("#size-note") and "base64" in page.inner_text("#size-note")
    page.wait_for_selector(".choice")
    big = b"\xff\xd8\xff" + bytes(int(4.8 * 1024 * 1024))
    page.set_input_files(
        "#file-input", {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": big}
    )
    alert = page.locator("#try-message")
    alert.wait_for(state="visible")
    text = alert.inner_text()
    assert "big.jpg is 4.8 MB: too large to send" in text
    assert "about 4.5 MB" in text and "6 MB" in text and "base64" in text
    expect(page.locator("#run-button")).to_be_disabled()
    assert posted == []  # refused in the page: nothing was uploaded
    screenshot(page, "try-it-too-large")

    # A file that fits is taken again.
    page.set_input_files("#file-input", PHOTO)
    expect(page.locator("#run-button")).to_be_enabled()
    assert page.locator("#try-message").is_hidden()
