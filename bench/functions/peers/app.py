"""The handler file bench/peers.py serves through faasbox and through serverless-offline: a
JSON hello, and a Pillow grayscale of the posted image (base64 in, base64 out, as API
Gateway's payload 2.0 carries binary bodies)."""

import base64
import io
import json

from PIL import Image


def hello(event, context):
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": "Hello"}),
    }


def gray(event, context):
    body = event.get("body") or ""
    data = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("latin-1")
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("L").save(out, "JPEG", quality=90)
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/jpeg"},
        "body": base64.b64encode(out.getvalue()).decode("ascii"),
        "isBase64Encoded": True,
    }
