"""An SQS consumer that reports each record to the test's collector, and fails those asked."""

import json
import urllib.request


def _report(url, doc):
    request = urllib.request.Request(
        url, data=json.dumps(doc).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def consume(event, context):
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        _report(
            body["collector"], {"n": body["n"], "record": record, "batch": len(event["Records"])}
        )
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def fail(event, context):
    raise ValueError(f"cannot do {event.get('job')}")
