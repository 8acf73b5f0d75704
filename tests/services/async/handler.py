"""Functions that report each run to the test's collector (an HTTP server on loopback)."""

import json
import time
import urllib.request


def _report(url, doc):
    request = urllib.request.Request(
        url, data=json.dumps(doc).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def record(event, context):
    """Report the run (its event's `n` and the request id), after `sleep` seconds."""
    if event.get("sleep"):
        time.sleep(event["sleep"])
    _report(event["collector"], {"n": event.get("n"), "requestId": context.aws_request_id})
    return {"n": event.get("n")}


def flaky(event, context):
    """Report the run, then fail."""
    _report(event["collector"], {"n": event.get("n"), "requestId": context.aws_request_id})
    raise RuntimeError(f"flaky failed on {event.get('n')}")


def sink(event, context):
    """A destination: report the invocation record it was sent."""
    _report(event["requestPayload"]["collector"], {"record": event})
    return "ok"
