"""The Functions view: deployed functions, their recent invocations and logs; signing in."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.helpers import PHOTO, screenshot
from tests.support import RunningServer, signed_request

pytestmark = pytest.mark.e2e


def function_at(server: RunningServer, path: str) -> str:
    """The name of the function whose route is POST `path`, from the management API."""
    answer = signed_request("GET", f"{server.url}/_faasbox/functions", server.credentials)
    answer.raise_for_status()
    for fn in answer.json()["functions"]:
        if path.strip("/") in str(fn["config"]["events"]):
            return str(fn["name"])
    raise AssertionError(f"no function serves {path}")


def newest_record(server: RunningServer, name: str) -> dict:  # type: ignore[type-arg]
    url = f"{server.url}/_faasbox/functions/{name}/logs"
    answer = signed_request("GET", url, server.credentials, params={"limit": 1})
    answer.raise_for_status()
    return answer.json()["records"][-1]  # type: ignore[no-any-return]


def grayscale(server: RunningServer) -> httpx.Response:
    answer = httpx.post(
        f"{server.url}/images/grayscale",
        content=PHOTO.read_bytes(),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer


def test_functions_and_their_invocations_without_auth(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    name = function_at(open_server, "/images/grayscale")
    grayscale(open_server)
    record = newest_record(open_server, name)

    page = new_page(open_server)
    page.goto("/ui/#functions")
    card = page.locator(f'.fn-card[data-function="{name}"]')
    card.wait_for()
    assert page.locator("#sign-in").is_hidden()  # --no-auth: no key needed
    assert "POST /images/grayscale" in card.inner_text()
    names = page.locator(".fn-name").all_inner_texts()
    assert names == sorted(names) and len(names) >= 3

    row = card.locator(f'details[data-request-id="{record["request_id"]}"]')
    summary = row.locator("summary").inner_text()
    assert record["status"] in summary
    assert re.search(r"\d+(\.\d)? ms", summary)
    assert ("cold" if record["cold"] else "warm") in summary
    row.locator("summary").click()
    log = row.locator("pre.log").inner_text()
    assert f"START RequestId: {record['request_id']}" in log
    assert f"REPORT RequestId: {record['request_id']}" in log

    # An invocation from the page shows up there too, with the request id the page showed.
    page.goto("/ui/#try")
    page.set_input_files("#file-input", PHOTO)
    page.check('.choice[data-function="grayscale"] input')
    page.get_by_role("button", name="Run grayscale").click()
    page.wait_for_selector("#result:not([hidden])")
    request_id = re.search(r"request (\S+)", page.inner_text("#result-meta"))
    assert request_id is not None
    page.get_by_role("link", name="Functions").click()
    page.locator(f'details[data-request-id="{request_id.group(1)}"]').wait_for()
    screenshot(page, "functions-no-auth")


def test_signing_in_on_a_server_with_auth(auth_server, new_page) -> None:  # type: ignore[no-untyped-def]
    creds = auth_server.credentials
    assert creds is not None
    grayscale(auth_server)

    page = new_page(auth_server)
    page.goto("/ui/")
    # Signed out, the management API is closed to the page: it offers the built-in functions
    # and removes one that is not deployed (the WebAssembly grayscale, here) when tried.
    page.wait_for_selector("text=Showing the example functions")
    assert page.locator(".choice").count() == 4
    page.set_input_files("#file-input", PHOTO)
    page.check('.choice[data-function="grayscale-wasm"] input')
    page.get_by_role("button", name="Run grayscale (WebAssembly)").click()
    message = page.locator("#try-message")
    message.wait_for(state="visible")
    assert "not deployed" in message.inner_text()
    assert page.locator(".choice-title").all_inner_texts() == [
        "Grayscale",
        "Classify",
        "Classify (WebAssembly)",
    ]
    # The try-it view works without credentials.
    page.get_by_role("button", name="Run grayscale").click()
    page.wait_for_selector("#result-images:not([hidden])")

    page.get_by_role("link", name="Functions").click()
    form = page.locator("#sign-in")
    form.wait_for()
    assert "needs an access key" in page.inner_text("#functions-message")
    screenshot(page, "functions-sign-in")

    page.fill("#access-key-id", creds.access_key_id)
    page.fill("#secret-access-key", "not-the-secret")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("text=The server refused this access key")
    assert form.is_visible()

    page.fill("#access-key-id", creds.access_key_id)
    page.fill("#secret-access-key", creds.secret_access_key)
    page.get_by_role("button", name="Sign in").click()
    page.locator(".fn-card .invocation").first.wait_for()
    assert form.is_hidden()
    assert creds.access_key_id in page.inner_text("#signed-in")
    stored = page.evaluate("() => [{...sessionStorage}, localStorage.length]")
    assert creds.secret_access_key in stored[0].values() and stored[1] == 0
    screenshot(page, "functions-signed-in")

    # Signed in, the try-it view lists what the server has deployed.
    page.get_by_role("link", name="Try it").click()
    page.wait_for_selector("text=Functions deployed on this server.")
    assert page.locator(".choice-title").all_inner_texts() == ["Grayscale", "Classify"]

    # The key lasts as long as the tab; signing out forgets it.
    page.goto("/ui/#functions")
    page.locator(".fn-card").first.wait_for()
    page.get_by_role("button", name="Sign out").click()
    form.wait_for()
    assert page.evaluate("() => sessionStorage.length") == 0
