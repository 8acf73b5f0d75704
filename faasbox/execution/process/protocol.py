"""The worker protocol: length-prefixed frames over a Unix stream socket.

A frame is a fixed 9-byte prefix (kind, header length, body length), a JSON header and an
opaque body. The body carries payloads (event in, result out) untouched, so a 6 MB image is
never re-encoded on its way through. Logs do not travel here: a worker's fd 1 and 2 are a
separate pipe, so output from C extensions is captured as well as print().

This module is imported by the worker before user code, so it imports only the stdlib (and
faasbox.fastjson, which is the stdlib's json made once).
"""

from __future__ import annotations

import socket
import struct
from typing import Any, BinaryIO

from faasbox import fastjson

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


# json.dumps with separators makes a new encoder per call; this one is made once.
_compact = fastjson.dumps_compact


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
    header = fastjson.loads(_recv_exact(sock, head_len)) if head_len else {}
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
    header = fastjson.loads(_read_exact(reader, head_len)) if head_len else {}
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
