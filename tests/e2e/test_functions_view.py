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
    row = page.locator(f'tr[data-function="{name}"]')
    row.wait_for()
    assert page.locator("#sign-in").is_hidden()  # --no-auth: no key needed
    names = page.locator(".fn-name").all_inner_texts()
    assert names == sorted(names) and len(names) >= 3
    assert row.locator(".fn-last time").inner_text().endswith("ago")

    # Its page: the routes, and the invocation with its log.
    row.get_by_role("link", name=name).click()
    page.get_by_role("link", name="Configuration").click()
    assert "POST /images/grayscale" in page.inner_text("#fn-routes")
    page.get_by_role("link", name="Invocations").click()
    item = page.locator(f'details[data-request-id="{record["request_id"]}"]')
    item.wait_for()
    summary = item.locator("summary").inner_text()
    assert record["status"] in summary
    assert re.search(r"\d+(\.\d)? ms", summary)
    assert ("cold" if record["cold"] else "warm") in summary
    item.locator("summary time").click()
    log = item.locator("pre.log").inner_text()
    assert f"START RequestId: {record['request_id']}" in log
    assert f"REPORT RequestId: {record['request_id']}" in log

    # An invocation from the page: its request id leads to its log.
    page.goto("/ui/#try")
    page.set_input_files("#file-input", PHOTO)
    page.check('.choice[data-function="grayscale"] input')
    page.get_by_role("button", name="Run grayscale").click()
    page.wait_for_selector("#result:not([hidden])")
    link = page.locator("#result-meta .request-link")
    request_id = link.inner_text()
    link.click()
    page.wait_for_url(f"**/ui/#fn/{name}/log/{request_id}")
    opened = page.locator(f'details[data-request-id="{request_id}"][open]')
    opened.wait_for()
    assert f"START RequestId: {request_id}" in opened.locator("pre.log").inner_text()
    screenshot(page, "functions-no-auth")


def test_signing_in_on_a_server_with_auth(auth_server, new_page) -> None:  # type: ignore[no-untyped-def]
    creds = auth_server.credentials
    assert creds is not None
    grayscale(auth_server)

    page = new_page(auth_server)
    page.goto("/ui/")
    # Signed out, the page still offers only what is deployed (the server says which routes
    # exist): not the WebAssembly grayscale, which this server does not have.
    page.wait_for_selector("text=The image functions deployed on this server.")
    assert page.locator(".choice-title").all_inner_texts() == ["Grayscale", "Classify"]
    # The try-it view works without credentials.
    page.set_input_files("#file-input", PHOTO)
    page.get_by_role("button", name="Run grayscale").click()
    page.wait_for_selector("#result-images:not([hidden])")

    page.get_by_role("link", name="Functions").click()
    form = page.locator("#sign-in")
    form.wait_for()
    assert "needs an access key" in page.inner_text("#sign-in-reason")
    screenshot(page, "functions-sign-in")

    page.fill("#access-key-id", creds.access_key_id)
    page.fill("#secret-access-key", "not-the-secret")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("text=The server refused this access key")
    assert form.is_visible()

    page.fill("#access-key-id", creds.access_key_id)
    page.fill("#secret-access-key", creds.secret_access_key)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#function-rows tr .fn-last time").first.wait_for()
    assert form.is_hidden()
    assert creds.access_key_id in page.inner_text("#signed-in")
    stored = page.evaluate("() => [{...sessionStorage}, localStorage.length]")
    assert creds.secret_access_key in stored[0].values() and stored[1] == 0
    screenshot(page, "functions-signed-in")

    # The key lasts as long as the tab; signing out forgets it.
    page.goto("/ui/#functions")
    page.locator("#function-rows tr").first.wait_for()
    page.get_by_role("button", name="Sign out").click()
    form.wait_for()
    assert page.evaluate("() => sessionStorage.length") == 0
