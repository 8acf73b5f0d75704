"""The console's asynchronous side: the Test tab invokes as Event and follows that invocation
through its states, a function's page lists its async invocations (state, failed runs, last
error, destination) and refreshes them, its Configuration view lists its schedule rules, and
all of it fits a phone.

The package's open server runs with `--async-retry-delay 3`: `console-dev-unlucky` fails,
is retried once 3 s later (long enough for the page, polling every second, to see it
`retrying` on a loaded machine), and its record then goes to `console-dev-audit`."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.helpers import console_errors, screenshot
from tests.support import RunningServer, wait_until

pytestmark = pytest.mark.e2e

ECHO = "console-dev-echo"
UNLUCKY = "console-dev-unlucky"
AUDIT = "console-dev-audit"
SCHEDULED = "console-dev-scheduled"
PHONE = 375
# Two runs 3 s apart, then the destination's own invocation: a bound for a loaded machine.
SETTLE_S = 60


def send_event(server: RunningServer, name: str, event: object) -> str:
    """An Event invocation through Lambda's Invoke (the open server needs no signature)."""
    answer = httpx.post(
        f"{server.url}/2015-03-31/functions/{name}/invocations",
        content=json.dumps(event).encode(),
        headers={"X-Amz-Invocation-Type": "Event"},
    )
    assert answer.status_code == 202, answer.text
    return answer.headers["x-amzn-requestid"]


def management(server: RunningServer, path: str) -> dict:  # type: ignore[type-arg]
    answer = httpx.get(f"{server.url}/_faasbox/{path}")
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def test_the_test_tab_follows_an_event_invocation(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    errors = console_errors(page)
    page.goto(f"/ui/#fn/{UNLUCKY}/test")
    page.locator("#event-editor").fill('{"try": "async"}')
    page.select_option("#invocation-type", "Event")
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-async:not([hidden])")
    assert "Accepted (202)" in page.inner_text("#test-async-request")
    request_id = page.inner_text("#test-async-request .request-link")
    page.wait_for_selector("#test-async-state:text-is('failed')", timeout=SETTLE_S * 1000)

    # Every state it went through, as the page saw them, and where its record went.
    seen = page.inner_text("#test-async-history").removeprefix("Seen: ").split(" → ")
    assert seen[0] == "queued" and seen[-1] == "failed"
    assert "retrying" in seen
    detail = page.inner_text("#test-async-detail")
    assert "2 failed runs" in detail
    assert "Last error: RuntimeError" in detail  # the error type, as the server keeps it
    assert f"Record sent to function:{AUDIT}" in detail
    # What the page shows is what the management API says.
    status = management(open_server, f"async/invocations/{request_id}")
    assert (status["state"], status["attempts"]) == ("failed", 2)
    assert status["destination"] == f"function:{AUDIT}"
    # The destination really got the record (an invocation of its own).
    wait_until(
        lambda: any(
            "audit got RetriesExhausted" in r["log"]
            for r in management(open_server, f"functions/{AUDIT}/logs?limit=100")["records"]
        ),
        SETTLE_S,
        "the failure record at the destination",
    )
    screenshot(page, "console-test-event")

    # A function that succeeds: queued, then succeeded, followed again after a visit to the
    # Invocations panel (where it is listed); back to RequestResponse afterwards.
    page.goto(f"/ui/#fn/{ECHO}/test")
    page.locator("#event-editor").fill('{"async": true}')
    page.select_option("#invocation-type", "Event")
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-async:not([hidden])")
    request_id = page.inner_text("#test-async-request .request-link")
    page.click("#subtab-invocations")
    page.locator(f'#async-list li[data-request-id="{request_id}"]').wait_for()
    page.click("#subtab-test")
    page.wait_for_selector("#test-async-state:text-is('succeeded')", timeout=SETTLE_S * 1000)
    assert page.inner_text("#test-async-request .request-link") == request_id
    assert page.inner_text("#test-async-detail").startswith("0 failed runs")
    assert page.locator("#test-result").is_hidden()
    page.select_option("#invocation-type", "RequestResponse")
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-result:not([hidden])")
    assert page.inner_text("#test-status") == "Succeeded"
    assert page.locator("#test-async").is_hidden()
    assert errors == []


def test_the_page_lists_async_invocations_as_they_move(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    errors = console_errors(page)
    page.goto(f"/ui/#fn/{UNLUCKY}/invocations")
    page.locator("#async-list li").first.wait_for()  # the list is there before the event is
    request_id = send_event(open_server, UNLUCKY, {"listed": True})

    # It appears, and ends failed, through the page's own refresh (no reload).
    row = page.locator(f'li.async-invocation[data-request-id="{request_id}"]')
    row.wait_for(timeout=SETTLE_S * 1000)
    page.locator(
        f'li.async-invocation[data-request-id="{request_id}"][data-state="failed"]'
    ).wait_for(timeout=SETTLE_S * 1000)
    assert row.locator(".badge.state").inner_text() == "failed"
    assert row.locator(".attempts").inner_text() == "2 failed runs"
    assert row.locator(".source").inner_text() == "from lambda-api"
    assert row.locator(".last-error").inner_text() == "Last error: RuntimeError"
    assert row.locator(".destination").inner_text() == f"Record sent to function:{AUDIT}"
    listed = management(open_server, f"async/invocations?function={UNLUCKY}&limit=50")
    assert f"{listed['counts']['failed']} failed" in page.inner_text("#async-counts")
    # Its request id leads to its runs' records (both runs have it, as Lambda's retries do).
    row.locator(".request-link").click()
    page.locator(f'#invocation-list details[data-request-id="{request_id}"].highlight').wait_for()
    runs = page.locator(f'#invocation-list details[data-request-id="{request_id}"]')
    assert runs.count() == 2
    assert all(run.get_attribute("data-status") == "error" for run in runs.all())
    screenshot(page, "console-async-invocations")
    assert errors == []


def test_configuration_lists_the_functions_schedules(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    errors = console_errors(page)
    page.goto(f"/ui/#fn/{SCHEDULED}/config")
    rows = page.locator("#fn-schedules tbody tr")
    rows.first.wait_for()
    rules = [
        s for s in management(open_server, "schedules")["schedules"] if s["function"] == SCHEDULED
    ]
    assert [r.get_attribute("data-rule") for r in rows.all()] == [s["name"] for s in rules]
    assert len(rules) == 2
    for rule in rules:
        row = page.locator(f'#fn-schedules tr[data-rule="{rule["name"]}"]')
        assert row.locator(".rule-expression").inner_text() == rule["expression"]
        assert row.locator(".rule-last").inner_text() == "never"
        if rule["enabled"]:
            assert row.locator(".rule-next").get_attribute("title") == rule["nextFire"]
        else:
            assert row.locator(".rule-next").inner_text() == "disabled"
    far_off = page.locator('#fn-schedules tr[data-rule="console-far-off"]')
    assert far_off.locator(".rule-expression").inner_text() == "cron(0 3 1 1 ? 2199)"
    # The next fire (2199-01-01 03:00 UTC) in the browser's time zone, with its date.
    next_fire = next(s["nextFire"] for s in rules if s["name"] == "console-far-off")
    assert next_fire.startswith("2199-01-01T03:00:00")
    local = page.evaluate(
        "iso => new Date(iso).toLocaleTimeString([], "
        "{hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false})",
        next_fire,
    )
    assert local in far_off.locator(".rule-next").inner_text()
    screenshot(page, "console-schedules")

    page.goto(f"/ui/#fn/{ECHO}/config")
    page.locator("#fn-schedules").get_by_text("No schedule events.").wait_for()
    assert errors == []


def test_the_async_views_fit_a_phone(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    request_id = send_event(open_server, UNLUCKY, {"phone": True})
    page = new_page(open_server, width=PHONE, height=800)
    for view, ready, name in [
        (
            f"#fn/{UNLUCKY}/invocations",
            f'li[data-request-id="{request_id}"]',
            "console-phone-async",
        ),
        (f"#fn/{SCHEDULED}/config", "#fn-schedules tbody tr", "console-phone-schedules"),
    ]:
        page.goto(f"/ui/{view}")
        page.locator(ready).first.wait_for(timeout=SETTLE_S * 1000)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE, (view, width)
        screenshot(page, name)
    page.goto(f"/ui/#fn/{ECHO}/test")
    page.select_option("#invocation-type", "Event")
    page.get_by_role("button", name="Test", exact=True).click()
    page.wait_for_selector("#test-async-state:text-is('succeeded')", timeout=SETTLE_S * 1000)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE
    screenshot(page, "console-phone-test-event")
