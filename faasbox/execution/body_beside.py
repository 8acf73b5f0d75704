"""An API Gateway proxy event whose binary body travels beside the rest of it, not in it.

A binary request body is base64 in the event (`"body": "...", "isBase64Encoded": true`, the
event's last two keys in both payload versions). For a 100 KB image, base64-encoding it and
JSON-encoding and decoding the 133 KB string cost the gateway's loop ~0.2 ms and the worker
another ~0.05 ms per request. So the gateway encodes the event without those two keys and
keeps the raw bytes beside it; a worker that can (the Python worker: `WorkerStart.
body_beside`) gets both in its INVOKE frame and adds the two keys itself after `json.loads`
of the small rest, which gives the handler the same dict. Every other consumer (Node.js, a
`provided` runtime, WebAssembly, the Ray hop) reads `joined()`: the very bytes
`json.dumps(event)` would have made.

The way back is the mirror (protocol.RESULT's `body_at`): the Python worker sends a proxy
response's base64 body decoded, beside the JSON of the rest, when that is provably what the
gateway would have decoded (faasbox.execution.process.python.worker).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

# What json.dumps writes for the two keys; base64's alphabet needs no escaping.
_BODY_KEY = b', "body": "'
_BASE64_TAIL = b'", "isBase64Encoded": true}'


@dataclass(slots=True)
class HttpEventParts:
    """`rest`: json.dumps of the event without `body` and `isBase64Encoded` (so a JSON
    object of at least one key, ending in `}`); `body`: the request body, base64 in the
    event."""

    rest: bytes
    body: bytes

    @property
    def size(self) -> int:
        """The length of `joined()`, without making it (the sync payload limit's check)."""
        encoded = 4 * ((len(self.body) + 2) // 3)
        return len(self.rest) - 1 + len(_BODY_KEY) + encoded + len(_BASE64_TAIL)

    def joined(self) -> bytes:
        """The whole event's JSON, byte for byte as json.dumps of the whole dict."""
        return b"".join(
            (
                self.rest[:-1],
                _BODY_KEY,
                binascii.b2a_base64(self.body, newline=False),
                _BASE64_TAIL,
            )
        )


def response_size(rest: bytes, body: bytes) -> int:
    """The length of the JSON of a proxy response whose base64 `body` came decoded beside the
    JSON of its `rest`: `, "body": "..."` more, its base64 unescaped (what the sync payload
    limit is checked against; computed here, not taken from the worker's word)."""
    return len(rest) + len(', "body": ""') + 4 * ((len(body) + 2) // 3)
