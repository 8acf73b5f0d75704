"""AWS's event stream encoding (application/vnd.amazon.eventstream), for the events of
InvokeWithResponseStream: PayloadChunk and InvokeComplete, as botocore's parser reads them.

A message is a prelude (total length, headers length, CRC32 of those 8 bytes), headers (name
length, name, type 7 = string, value length, value), the payload, and a CRC32 of everything
before it; all integers big-endian.
"""

from __future__ import annotations

import json
import struct
import zlib

STRING = 7


def _headers(pairs: list[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, value in pairs:
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(event_type: str, content_type: str, payload: bytes) -> bytes:
    return message(
        [
            (":event-type", event_type),
            (":content-type", content_type),
            (":message-type", "event"),
        ],
        payload,
    )


def payload_chunk(data: bytes) -> bytes:
    return event("PayloadChunk", "application/octet-stream", data)


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    fields = {"ErrorCode": error_code, "ErrorDetails": error_details, "LogResult": log_result}
    doc = {k: v for k, v in fields.items() if v is not None}
    return event("InvokeComplete", "application/json", json.dumps(doc).encode())
