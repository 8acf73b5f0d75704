"""The console: the Functions list and its search, a function's page with its Test tab (invoke
with a JSON event, saved test events), its invocations (dates, status filter, a request id
leading to its log), its charts, a phone's width, and a page load without console errors."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.helpers import CONSOLE_SERVICE, console_errors, screenshot
from tests.support import ROOT, RunningServer, signed_request

pytestmark = pytest.mark.e2e

ECHO = "console-dev-echo"
FAILING = "console-dev-failing"
PHONE = 375


@pytest.fixture(scope="module")
def bare_server() -> Iterator[RunningServer]:
    """A server with authentication and none of the image functions: only the console's."""
    data = ROOT / "build" / "test-data" / f"e2e-{uuid.uuid4().hex[:12]}"
    data.mkdir(parents=True)
    server = RunningServer([CONSOLE_SERVICE], data).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def invoke(server: RunningServer, name: str, event: object) -> httpx.Response:
    url = f"{server.url}/2015-03-31/functions/{name}/invocations"
    return signed_request("POST", url, server.credentials, content=json.dumps(event).encode())


def management(server: RunningServer, path: str) -> dict:  # type: ignore[type-arg]
    answer = signed_request("GET", f"{server.url}/_faasbox/{path}", server.credentials)
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def test_search_functions(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    page.goto("/ui/#functions")
    rows = page.locator("#function-rows tr")
    page.locator(f'tr[data-function="{ECHO}"]').wait_for()
    deployed = sorted(f["name"] for f in management(open_server, "functions")["functions"])
    assert page.locator(".fn-name").all_inner_texts() == deployed  # one row each, by name
    row = page.locator(f'tr[data-function="{ECHO}"]')
    assert row.locator(".fn-runtime").inner_text() == "python3.11"
    assert row.locator(".fn-memory").inner_text() == "128 MB"
    assert row.locator(".fn-timeout").inner_text() == "5 s"
    # Collapsed rows: a line each, not a card with its invocations.
    assert row.bounding_box()["height"] < 60  # type: ignore[index]

    page.fill("#function-search", "console")
    assert page.locator(".fn-name").all_inner_texts() == [n for n in deployed if "console" in n]
    page.fill("#function-search", "dev fail")  # every word must match
    assert page.locator(".fn-name").all_inner_texts() == [FAILING]
    page.fill("#function-search", "no-such-function")
    assert rows.count() == 0
    assert 'No function matches "no-such-function"' in page.inner_text("#functions-empty")
    page.fill("#function-search", "echo")
    screenshot(page, "console-search")
    page.get_by_role("link", name=ECHO).click()
    page.wait_for_url(f"**/ui/#fn/{ECHO}")
    assert page.inner_text("#fn-title") == ECHO
    # Each row's Test link goes straight to that function's Test tab.
    page.go_back()
    page.fill("#function-search", "")
    page.locator(f'tr[data-function="{FAILING}"]').get_by_role("link", name="Test").click()
    page.wait_for_url(f"**/ui/#fn/{FAILING}/test")
    page.locator("#panel-test").wait_for()
    assert page.inner_text("#fn-title") == FAILING


def wait_for_event_editor(page) -> None:  # type: ignore[no-untyped-def]
    """The Test tab fills its editor once the function's saved events have loaded: a fill
    before that could be overwritten by the page."""
    page.wait_for_function("document.querySelector('#event-editor').value !== ''")


def test_invoke_from_the_test_tab(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    page.goto(f"/ui/#fn/{ECHO}/test")
    editor = page.locator("#event-editor")
    wait_for_event_editor(page)
    json.loads(editor.input_value())  # a template is there to start from

    editor.fill('{"name": "from the test tab", "n": 7}')
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-result:not([hidden])")
    assert page.inner_text("#test-status") == "Succeeded"
    result = json.loads(page.inner_text("#test-payload"))
    assert result["received"] == {"name": "from the test tab", "n": 7}
    request_id = result["requestId"]
    log = page.inner_text("#test-log")
    assert f"START RequestId: {request_id}" in log
    assert "echo got ['n', 'name']" in log  # the function's own output
    assert page.inner_text("#test-report").startswith(f"REPORT RequestId: {request_id}")
    assert page.inner_text("#test-request .request-link") == request_id
    screenshot(page, "console-test-tab")

    # A failing invocation: Lambda's error document and the Unhandled function error.
    editor.fill('{"fail": "on purpose"}')
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-status:text('Failed (Unhandled)')")
    error = json.loads(page.inner_text("#test-payload"))
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "asked to fail: on purpose"
    assert "ValueError" in page.inner_text("#test-log")

    # Not JSON: said in the page, nothing invoked.
    before = len(management(open_server, f"functions/{ECHO}/logs?limit=100")["records"])
    editor.fill('{"name": ')
    page.get_by_role("button", name="Test", exact=True).click()
    assert "The event is not valid JSON" in page.locator("#event-error").inner_text()
    assert len(management(open_server, f"functions/{ECHO}/logs?limit=100")["records"]) == before


def test_save_and_reuse_a_test_event(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    page.goto(f"/ui/#fn/{ECHO}/test")
    wait_for_event_editor(page)
    page.select_option("#event-select", label="SQS message")
    sqs = json.loads(page.locator("#event-editor").input_value())
    assert sqs["Records"][0]["eventSource"] == "aws:sqs"

    page.fill("#event-name", "bad name!")
    page.get_by_role("button", name="Save").click()
    assert "1-25 letters" in page.locator("#event-error").inner_text()

    sqs["Records"][0]["body"] = "saved body"
    page.fill("#event-editor", json.dumps(sqs))
    page.fill("#event-name", "sqs-saved")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("#test-note:text('Saved \"sqs-saved\"')")
    stored = management(open_server, f"functions/{ECHO}/test-events")["events"]
    assert [e["name"] for e in stored] == ["sqs-saved"]
    assert stored[0]["event"]["Records"][0]["body"] == "saved body"

    # Another tab, later: the saved event is offered first, and runs as saved.
    page = new_page(open_server)
    page.goto(f"/ui/#fn/{ECHO}/test")
    page.wait_for_function("document.querySelector('#event-name').value === 'sqs-saved'")
    assert page.locator("#event-select").input_value() == "saved:sqs-saved"
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-result:not([hidden])")
    received = json.loads(page.inner_text("#test-payload"))["received"]
    assert received["Records"][0]["body"] == "saved body"
    screenshot(page, "console-saved-event")

    # The other templates are in the shapes their sources send.
    for label, check in [
        ("API Gateway REST (payload 1.0)", lambda e: e["httpMethod"] and "resource" in e),
        ("API Gateway HTTP API (payload 2.0)", lambda e: e["version"] == "2.0"),
        ("Schedule (EventBridge)", lambda e: e["detail-type"] == "Scheduled Event"),
    ]:
        page.select_option("#event-select", label=label)
        assert check(json.loads(page.locator("#event-editor").input_value())), label
    # Built for this function: its own route.
    page.select_option("#event-select", label="API Gateway HTTP API (payload 2.0)")
    assert json.loads(page.locator("#event-editor").input_value())["rawPath"] == "/console/echo"

    page.select_option("#event-select", value="saved:sqs-saved")
    page.get_by_role("button", name="Delete").click()
    page.wait_for_selector("#test-note:text('Deleted \"sqs-saved\"')")
    assert management(open_server, f"functions/{ECHO}/test-events")["events"] == []


def test_a_request_id_leads_to_its_log(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    assert invoke(open_server, FAILING, {}).headers["x-amz-function-error"] == "Unhandled"
    page = new_page(open_server)
    page.goto(f"/ui/#fn/{ECHO}/test")
    wait_for_event_editor(page)
    page.fill("#event-editor", '{"follow": "me"}')
    page.get_by_role("button", name="Test", exact=True).click()
    link = page.locator("#test-request .request-link")
    link.wait_for()
    request_id = link.inner_text()
    link.click()

    page.wait_for_url(f"**/ui/#fn/{ECHO}/log/{request_id}")
    row = page.locator(f'#invocation-list details[data-request-id="{request_id}"]')
    row.wait_for()
    assert row.get_attribute("open") is not None  # opened, and in view
    assert row.is_visible()
    log = row.locator("pre.log").inner_text()
    assert f"START RequestId: {request_id}" in log
    assert f"REPORT RequestId: {request_id}" in log
    assert "echo got ['follow']" in log
    # Invocations carry their date, not only the time.
    assert str(datetime.date.today().year) in row.locator("time").inner_text()
    screenshot(page, "console-request-log")

    # Filtered by status: the failing function's error, and no success among them.
    page.goto(f"/ui/#fn/{FAILING}/invocations")
    page.locator("#invocation-list details").first.wait_for()
    page.select_option("#status-filter", "error")
    statuses = page.eval_on_selector_all(
        "#invocation-list details", "rows => rows.map(r => r.dataset.status)"
    )
    assert statuses and set(statuses) == {"error"}
    page.select_option("#status-filter", "success")
    assert page.locator("#invocation-list details").count() == 0
    assert "No success invocation" in page.inner_text("#invocation-list")


def test_charts_render(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        assert invoke(open_server, ECHO, {"chart": n}).status_code == 200
    invoke(open_server, ECHO, {"fail": "for the chart"})
    page = new_page(open_server)
    page.goto(f"/ui/#fn/{ECHO}/monitor")
    page.locator('.chart[data-chart="duration"] circle.dot').first.wait_for()
    stats = management(open_server, f"functions/{ECHO}/stats?minutes=60")
    assert len(stats["buckets"]) == 60

    def bar_total(chart: str) -> int:
        values = page.eval_on_selector_all(
            f'.chart[data-chart="{chart}"] rect.bar', "bars => bars.map(b => +b.dataset.value)"
        )
        return sum(values)

    invocations = sum(b["invocations"] for b in stats["buckets"])
    errors = sum(b["errors"] for b in stats["buckets"])
    assert invocations >= 4 and errors >= 1
    assert bar_total("invocations") == invocations
    assert bar_total("errors") == errors
    caption = page.inner_text('.chart[data-chart="invocations"] .chart-total')
    assert caption == f"{invocations} in the hour"
    # A point per minute with invocations, p50 and p99 each (joined by a line when adjacent).
    minutes = sum(1 for b in stats["buckets"] if b["invocations"])
    assert page.locator('.chart[data-chart="duration"] circle.dot.p50').count() == minutes
    assert page.locator('.chart[data-chart="duration"] circle.dot.p99').count() == minutes
    box = page.locator('.chart[data-chart="invocations"] svg').bounding_box()
    assert box and box["width"] > 300 and box["height"] > 50
    screenshot(page, "console-charts")


VIEWS = ["#try", "#functions", f"#fn/{ECHO}/test", f"#fn/{ECHO}/invocations"]
VIEWS += [f"#fn/{ECHO}/monitor", f"#fn/{ECHO}/config"]


@pytest.mark.parametrize("which", ["open", "auth"])
def test_no_console_errors_on_load(which, open_server, bare_server, new_page) -> None:  # type: ignore[no-untyped-def]
    server = open_server if which == "open" else bare_server
    page = new_page(server)
    errors = console_errors(page)
    refused: list[str] = []
    page.on(
        "response", lambda r: refused.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    for view in VIEWS:
        page.goto(f"/ui/{view}")
        page.wait_for_load_state("networkidle")
        if which == "auth" and view != "#try":
            page.locator("#sign-in").wait_for()  # asked for a key, without asking the server
    assert errors == []
    assert refused == []


def test_a_server_with_auth_and_no_image_functions(bare_server, new_page) -> None:  # type: ignore[no-untyped-def]
    creds = bare_server.credentials
    assert creds is not None
    page = new_page(bare_server)
    errors = console_errors(page)
    page.goto("/ui/")
    # "Try it" offers nothing that is not deployed: no choices, no Run button, no image picker.
    message = page.locator("#function-choices .message")
    message.wait_for()
    assert "None of the image functions is deployed" in message.inner_text()
    assert page.locator("#run-button").is_hidden()
    assert page.locator("#image-card").is_hidden()
    screenshot(page, "console-try-it-none-deployed")

    page.get_by_role("link", name="Functions").click()
    page.locator("#sign-in").wait_for()
    assert "needs an access key" in page.inner_text("#sign-in-reason")
    page.fill("#access-key-id", creds.access_key_id)
    page.fill("#secret-access-key", creds.secret_access_key)
    page.get_by_role("button", name="Sign in").click()
    page.locator(f'tr[data-function="{ECHO}"]').wait_for()

    # Signed: Lambda's Invoke and the saved events go through SigV4 like the rest.
    page.get_by_role("link", name=ECHO).click()
    wait_for_event_editor(page)
    page.fill("#event-editor", '{"signed": true}')
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-status:text('Succeeded')")
    assert json.loads(page.inner_text("#test-payload"))["received"] == {"signed": True}
    page.fill("#event-name", "signed-event")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("#test-note:text('Saved \"signed-event\"')")
    saved = management(bare_server, f"functions/{ECHO}/test-events")["events"]
    assert saved[0]["event"] == {"signed": True}
    # Unsigned, the same endpoints are refused.
    url = f"{bare_server.url}/_faasbox/functions/{ECHO}/test-events"
    assert httpx.get(url).status_code == 403
    assert errors == []


def test_phone_layout(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    invoke(open_server, ECHO, {"phone": True})
    page = new_page(open_server, width=PHONE, height=800)
    for view, ready, name in [
        ("#functions", f'tr[data-function="{ECHO}"]', "console-phone-functions"),
        (f"#fn/{ECHO}/test", "#event-editor", "console-phone-test"),
        (f"#fn/{ECHO}/invocations", "#invocation-list details", "console-phone-invocations"),
        (f"#fn/{ECHO}/monitor", ".chart svg", "console-phone-charts"),
        (f"#fn/{ECHO}/config", "#fn-config dd", "console-phone-config"),
    ]:
        page.goto(f"/ui/{view}")
        page.locator(ready).first.wait_for()
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE, (view, width)
        # Every tab of the function page fits: none is cut off at the edge.
        if view.startswith("#fn/"):
            right = page.eval_on_selector_all(
                ".subtabs a", "tabs => Math.max(...tabs.map(t => t.getBoundingClientRect().right))"
            )
            assert right <= PHONE
        screenshot(page, name)
    page.goto(f"/ui/#fn/{ECHO}/test")
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-result:not([hidden])")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE
    assert re.search(r"REPORT RequestId", page.inner_text("#test-report"))
    screenshot(page, "console-phone-test-result")
