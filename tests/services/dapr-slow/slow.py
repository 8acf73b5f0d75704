"""Takes a while over each event, then reports it as delivered (stdlib only)."""

import json
import time
import urllib.request


def on_event(event, context):
    data = event["data"]
    time.sleep(data["sleep"])
    report = json.dumps({"n": data["n"], "id": event["id"]}).encode()
    request = urllib.request.Request(
        data["collector"], data=report, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5):
        pass
    return {"status": "SUCCESS"}
