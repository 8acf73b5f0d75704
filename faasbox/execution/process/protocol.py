"""The worker protocol: length-prefixed frames over a Unix stream socket.

A frame is a fixed 9-byte prefix (kind, header length, body length), a JSON header and an
opaque body. The body carries payloads (event in, result out) untouched, so a 6 MB image is
never re-encoded on its way through. Logs do not travel here: a worker's fd 1 and 2 are a
separate pipe, so output from C extensions is captured as well as print().

This module is imported by the worker before user code, so it imports only the stdlib.
"""

from __future__ import annotations

import json
import json.encoder
import socket
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

PREFIX = struct.Struct("!BII")

# server -> worker
BOOT = 1  # header: the function's identity, handler, paths, environment
INVOKE = 2  # header: request id, deadline, context fields; body: the event JSON
# An INVOKE header may carry "stream": true: the caller reads the response as it is made
# (InvokeWithResponseStream). A worker whose function streams its response then sends it as
# RESULT_CHUNK frames before the RESULT; without the flag it sends the whole response in the
# RESULT, as Lambda's Invoke returns a streamed response buffered.
# Only to a worker whose runtime says `body_beside` (faasbox.execution.body_beside): an INVOKE
# header's "body_at": N says the body is the event's JSON without its `body` and
# `isBase64Encoded` in its first N bytes, then the request body raw (the worker adds the two
# keys, the body base64); "body_beside": true says the worker may answer likewise.
# worker -> server
READY = 10  # header: init duration; the handler is imported
INIT_ERROR = 11  # header: the error object; the worker exits after sending it
RESULT = 12  # header: ok flag, duration, max memory, `output_pending` (false: the log pipe
#              held nothing unread when it was sent, so the server need not read it again;
#              absent: unknown), (and `exiting`: the worker ends after
#              it, e.g. after an uncaught exception in Node.js; `content_type` of a result a
#              Node.js streaming handler wrote); body: the result (JSON, or those bytes) or
#              the error JSON (after RESULT_CHUNKs: "streamed": true, and the body is empty,
#              or the error JSON); with "body_at": N (only after INVOKE's "body_beside"),
#              the body is the JSON of a proxy response without its `body` in its first N
#              bytes, then that body decoded from its base64
RESULT_CHUNK = 13  # header: {}; body: the next bytes of a streamed response

MAX_HEADER = 1 << 20


class ProtocolError(Exception):
    """The other side sent something that is not a frame, or went away mid-frame."""


def json_encoder(
    default: Callable[[Any], Any] | None = None, separators: tuple[str, str] | None = None
) -> Callable[[Any], str]:
    """`json.JSONEncoder(default=..., separators=...).encode`, the same text, without its two
    Python frames and the closure `iterencode` makes per call: the C encoder is made
    directly, with fresh markers each call as `iterencode` gives it (a failed call leaves
    its markers behind)."""
    slow = json.JSONEncoder(default=default, separators=separators)
    make = getattr(json.encoder, "c_make_encoder", None)  # the C module's, when there
    if make is None:
        return slow.encode
    escape = json.encoder.encode_basestring_ascii
    default_ = slow.default
    key_separator, item_separator = slow.key_separator, slow.item_separator

    def encode(o: Any) -> str:
        if isinstance(o, str):
            return escape(o)
        return "".join(
            make({}, default_, escape, None, key_separator, item_separator, False, False, True)(
                o, 0
            )
        )

    return encode


# json.dumps with separators makes a new encoder per call; this one is made once.
_compact = json_encoder(separators=(",", ":"))
_decoder = json.JSONDecoder()
_scan = _decoder.scan_once  # type: ignore[attr-defined]  # set in __init__
_decode = _decoder.decode


def loads(data: bytes) -> Any:
    """`json.loads(data)`, without its encoding guess when `data` starts as UTF-8 JSON does:
    json.loads picks UTF-8 unless a BOM or a NUL is in the first two bytes, and the first
    byte here is ASCII and not NUL (so no BOM) and the second is not NUL. Text with no
    whitespace around it is scanned without `decode`'s two whitespace matches; any other
    goes through `decode`, which gives json.loads's value or error."""
    if data and 0 < data[0] < 0x80 and (len(data) == 1 or data[1]):
        text = data.decode("utf-8", "surrogatepass")
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            return _decode(text)
        return value if end == len(text) else _decode(text)
    return json.loads(data)


def encode(kind: int, header: dict[str, Any], body: bytes = b"") -> bytes:
    head = _compact(header).encode()
    return PREFIX.pack(kind, len(head), len(body)) + head + body


def encode_parts(
    kind: int, header: dict[str, Any], body: bytes, beside: bytes
) -> tuple[bytes, bytes]:
    """`encode(kind, header, body + beside)` as two pieces, for a vectored write that does
    not copy `beside` (an HTTP event's binary body)."""
    head = _compact(header).encode()
    return PREFIX.pack(kind, len(head), len(body) + len(beside)) + head + body, beside


def decode_header(kind_and_lengths: bytes | bytearray) -> tuple[int, int, int]:
    """The prefix at the start of `kind_and_lengths` (which may hold more after it)."""
    kind, head_len, body_len = PREFIX.unpack_from(kind_and_lengths)
    if head_len > MAX_HEADER:
        raise ProtocolError(f"frame header of {head_len} bytes is over the limit")
    return int(kind), int(head_len), int(body_len)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise ProtocolError("connection closed mid-frame" if got else "connection closed")
        got += r
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[int, dict[str, Any], bytes]:
    """Blocking read of one frame (the worker's side)."""
    kind, head_len, body_len = decode_header(_recv_exact(sock, PREFIX.size))
    header = json.loads(_recv_exact(sock, head_len)) if head_len else {}
    body = _recv_exact(sock, body_len) if body_len else b""
    return kind, header, body


def _read_exact(reader: BinaryIO, n: int) -> bytes:
    data = reader.read(n)
    if len(data) < n:
        raise ProtocolError("connection closed mid-frame" if data else "connection closed")
    return data


def read_frame(reader: BinaryIO) -> tuple[int, dict[str, Any], bytes]:
    """Blocking read of one frame from a buffered reader over the socket (`sock.makefile`):
    a small frame arrives whole in its buffer in one `recv`, where `recv_frame` needs three."""
    kind, head_len, body_len = decode_header(_read_exact(reader, PREFIX.size))
    header = loads(_read_exact(reader, head_len)) if head_len else {}
    body = _read_exact(reader, body_len) if body_len else b""
    return kind, header, body


def send_frame(sock: socket.socket, kind: int, header: dict[str, Any], body: bytes = b"") -> None:
    sock.sendall(encode(kind, header, body))


def send_frame_parts(
    sock: socket.socket, kind: int, header: dict[str, Any], body: bytes, beside: bytes
) -> None:
    """`send_frame(sock, kind, header, body + beside)` in one vectored write, `beside`
    not copied."""
    first, second = encode_parts(kind, header, body, beside)
    sent = sock.sendmsg([first, second])
    if sent < len(first):
        sock.sendall(memoryview(first)[sent:])
        sock.sendall(second)
    elif sent < len(first) + len(second):
        sock.sendall(memoryview(second)[sent - len(first) :])
