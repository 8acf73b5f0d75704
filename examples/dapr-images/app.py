"""The dapr-images app: its page, and an API that calls the grayscale and classify services
through Dapr's service invocation and keeps a history of results in Dapr's state store
(all through DAPR_HTTP_ENDPOINT, with the standard library only)."""

import base64
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

DAPR = os.environ.get("DAPR_HTTP_ENDPOINT", "http://127.0.0.1:3500")
HISTORY = f"{DAPR}/v1.0/state/statestore/dapr-images-history"
KEEP = 20  # history entries kept
PAGE = (Path(__file__).parent / "index.html").read_text()
# The services this one calls: (app id, method path) - both examples of this repository.
GRAYSCALE = ("wasm-grayscale", "wasm/grayscale")
CLASSIFY = ("image-service", "images/classify")


class DaprFailed(Exception):
    pass


def _dapr(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=25) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def invoke(app_id, path, body, headers):
    status, reply_headers, data = _dapr(
        "POST", f"{DAPR}/v1.0/invoke/{app_id}/method/{path}", body, headers
    )
    if status != 200:
        raise DaprFailed(f"{app_id} answered {status}: {data[:300].decode(errors='replace')}")
    return reply_headers, data


def history():
    status, headers, data = _dapr("GET", HISTORY)
    if status == 204:
        return [], None
    return json.loads(data), headers.get("ETag") or headers.get("etag")


def remember(entry):
    """Append to the history with the etag read (first-write when there is none yet): a
    concurrent writer makes the save fail with 409, and it is read and tried again."""
    for _ in range(20):
        entries, etag = history()
        item = {"key": "dapr-images-history", "value": [entry, *entries][:KEEP]}
        if etag:
            item["etag"] = etag
        else:
            item["options"] = {"concurrency": "first-write"}
        status, _, data = _dapr(
            "POST",
            f"{DAPR}/v1.0/state/statestore",
            json.dumps([item]).encode(),
            {"content-type": "application/json"},
        )
        if status == 204:
            return [entry, *entries][:KEEP]
        if status != 409:
            raise DaprFailed(f"the state store answered {status}: {data[:300]!r}")
    raise DaprFailed("the history changed too often; try again")


def _json(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body)}


def handle(event, context):
    route = event["routeKey"]
    if route == "GET /dapr-images":
        return {"statusCode": 200, "headers": {"content-type": "text/html; charset=utf-8"},
                "body": PAGE}
    if route == "GET /dapr-images/history":
        return _json(200, history()[0])
    body = event.get("body") or ""
    photo = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("latin-1")
    if not photo:
        return _json(400, {"error": "send a photo as the body (JPEG, PNG, GIF or WebP)"})
    content_type = (event.get("headers") or {}).get("content-type", "application/octet-stream")
    started = time.time()
    try:
        if route == "POST /dapr-images/grayscale":
            headers, image = invoke(*GRAYSCALE, photo, {"content-type": content_type})
            kind = headers.get("Content-Type") or headers.get("content-type") or "image/png"
            entry = {"op": "grayscale", "app": GRAYSCALE[0], "bytesIn": len(photo),
                     "bytesOut": len(image)}
            result = {"image": f"data:{kind};base64,{base64.b64encode(image).decode()}"}
        else:
            headers = {"content-type": content_type, "accept": "text/plain"}
            _, text = invoke(*CLASSIFY, photo, headers)
            entry = {"op": "classify", "app": CLASSIFY[0], "result": text.decode()}
            result = {"result": text.decode()}
        entry.update({"at": round(started, 3), "ms": round((time.time() - started) * 1000)})
        result["history"] = remember(entry)
    except DaprFailed as e:
        return _json(502, {"error": str(e)})
    return _json(200, result)
