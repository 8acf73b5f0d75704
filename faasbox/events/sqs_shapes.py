"""SQS's wire shapes: queue ARNs, message MD5s, a received message's JSON."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

from faasbox.events.store import Message
from faasbox.registry.models import ACCOUNT_ID

REGION = "us-east-1"


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


def name_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[5] if len(parts) == 6 and parts[:3] == ["arn", "aws", "sqs"] else None


def md5_of_attributes(attributes: dict[str, Any]) -> str | None:
    """SQS's MD5OfMessageAttributes: each attribute, by name, as length-prefixed name,
    data type, a transport byte (1 text, 2 binary) and length-prefixed value."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        data_type = str(value.get("DataType", ""))
        for text in (name, data_type):
            raw = text.encode()
            digest.update(struct.pack(">I", len(raw)) + raw)
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            raw = raw if isinstance(raw, bytes) else base64.b64decode(raw)
            digest.update(b"\x02" + struct.pack(">I", len(raw)) + raw)
        else:
            raw = str(value.get("StringValue", "")).encode()
            digest.update(b"\x01" + struct.pack(">I", len(raw)) + raw)
    return digest.hexdigest()


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def resolve_queue(ref: Any, declared: dict[str, Any]) -> str:
    """The name of the queue an ARN or `{Fn::GetAtt: [Id, Arn]}` (as serverless.yml keeps
    it) names; a declared queue's logical id names that queue's QueueName."""
    if isinstance(ref, dict) and "Fn::GetAtt" in ref:
        attribute = ref["Fn::GetAtt"]
        parts = attribute.split(".") if isinstance(attribute, str) else attribute
        ref = queue_arn(str(parts[0]))
    arn = str(ref)
    name = name_of_arn(arn) or arn
    entry = declared.get(name)
    return str(entry["name"]) if isinstance(entry, dict) and "name" in entry else name


def message_json(message: Message, system: list[str], custom: list[str]) -> dict[str, Any]:
    """A received message as ReceiveMessage returns it."""
    body = message.body.decode("utf-8", "replace")
    result: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt,
        "MD5OfBody": md5_hex(body),
        "Body": body,
    }
    everything = {
        "SenderId": ACCOUNT_ID,
        "SentTimestamp": str(int(message.created_at * 1000)),
        "ApproximateReceiveCount": str(message.receive_count),
        "ApproximateFirstReceiveTimestamp": str(int((message.first_received_at or 0) * 1000)),
    }
    if system:
        result["Attributes"] = (
            everything if "All" in system else {k: everything[k] for k in system if k in everything}
        )
    attributes: dict[str, Any] = message.attributes.get("MessageAttributes") or {}
    if custom and attributes:
        chosen = {
            k: v
            for k, v in attributes.items()
            if "All" in custom or ".*" in custom or k in custom
            or any(c.endswith(".*") and k.startswith(c[:-2]) for c in custom)
        }  # fmt: skip
        if chosen:
            result["MessageAttributes"] = chosen
            result["MD5OfMessageAttributes"] = md5_of_attributes(chosen)
    return result
