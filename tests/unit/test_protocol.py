"""Unit tests of faasbox.execution.process.protocol: the worker's length-prefixed frames, on
bytes only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from faasbox.execution.process import protocol
from faasbox.execution.process.protocol import (
    INVOKE,
    MAX_HEADER,
    PREFIX,
    RESULT,
    ProtocolError,
    decode_header,
    encode,
    recv_frame,
    send_frame,
)


class FakeSocket:
    """Just enough of a socket for recv_frame/send_frame: bytes in, bytes out, in small pieces."""

    def __init__(self, incoming: bytes = b"", chunk: int = 3) -> None:
        self.incoming = incoming
        self.chunk = chunk
        self.sent = b""

    def recv_into(self, view: memoryview, n: int) -> int:
        piece = self.incoming[: min(n, self.chunk)]
        self.incoming = self.incoming[len(piece) :]
        view[: len(piece)] = piece
        return len(piece)

    def sendall(self, data: bytes) -> None:
        self.sent += data


def decode(frame: bytes) -> tuple[int, dict[str, Any], bytes]:
    kind, head_len, body_len = decode_header(frame[: PREFIX.size])
    assert len(frame) == PREFIX.size + head_len + body_len
    head = frame[PREFIX.size : PREFIX.size + head_len]
    return kind, json.loads(head), frame[PREFIX.size + head_len :]


def test_the_prefix_is_nine_bytes() -> None:
    assert PREFIX.size == 9


def test_a_frame_round_trips() -> None:
    header = {"requestId": "abc", "deadlineMs": 1_700_000_000_000, "clientContext": None}
    body = b'{"image": "' + bytes(range(256)) + b'"}'

    frame = encode(INVOKE, header, body)

    assert decode(frame) == (INVOKE, header, body)


def test_the_body_is_carried_untouched() -> None:
    body = b"\xff\xd8\xff\xe0" + b"\x00" * 1000 + b"\xff\xd9"  # a (tiny) JPEG, not UTF-8
    frame = encode(RESULT, {"ok": True}, body)
    assert frame.endswith(body)
    assert decode(frame)[2] == body


def test_empty_header_and_body() -> None:
    frame = encode(RESULT, {})
    assert decode(frame) == (RESULT, {}, b"")


def test_non_ascii_header_lengths_are_in_bytes() -> None:
    header = {"message": "café ☕ 画像"}
    frame = encode(RESULT, header, b"x")
    kind, head_len, body_len = decode_header(frame[: PREFIX.size])
    assert head_len == len(json.dumps(header, separators=(",", ":")).encode())
    assert (kind, body_len) == (RESULT, 1)
    assert decode(frame) == (RESULT, header, b"x")


def test_an_oversized_header_length_is_a_protocol_error() -> None:
    prefix = PREFIX.pack(INVOKE, MAX_HEADER + 1, 0)
    with pytest.raises(ProtocolError, match=f"frame header of {MAX_HEADER + 1} bytes"):
        decode_header(prefix)


def test_a_header_at_the_limit_is_accepted() -> None:
    assert decode_header(PREFIX.pack(INVOKE, MAX_HEADER, 7)) == (INVOKE, MAX_HEADER, 7)


def test_recv_frame_reassembles_a_frame_from_small_reads() -> None:
    frames = encode(INVOKE, {"requestId": "1"}, b"event-1") + encode(RESULT, {"ok": True})
    sock = FakeSocket(frames, chunk=2)

    assert recv_frame(sock) == (INVOKE, {"requestId": "1"}, b"event-1")  # type: ignore[arg-type]
    assert recv_frame(sock) == (RESULT, {"ok": True}, b"")  # type: ignore[arg-type]


def test_recv_frame_refuses_an_oversized_header_without_reading_it() -> None:
    sock = FakeSocket(PREFIX.pack(INVOKE, MAX_HEADER + 1, 0) + b"{}")
    with pytest.raises(ProtocolError, match="over the limit"):
        recv_frame(sock)  # type: ignore[arg-type]
    assert sock.incoming == b"{}"


def test_a_connection_closed_between_frames() -> None:
    with pytest.raises(ProtocolError, match=r"^connection closed$"):
        recv_frame(FakeSocket(b""))  # type: ignore[arg-type]


def test_a_connection_closed_mid_frame() -> None:
    frame = encode(INVOKE, {"requestId": "1"}, b"event")
    with pytest.raises(ProtocolError, match="connection closed mid-frame"):
        recv_frame(FakeSocket(frame[:-2]))  # type: ignore[arg-type]


def test_send_frame_writes_one_encoded_frame() -> None:
    sock = FakeSocket()
    send_frame(sock, RESULT, {"ok": False}, b"err")  # type: ignore[arg-type]
    assert sock.sent == encode(RESULT, {"ok": False}, b"err")


def test_message_kinds_are_distinct() -> None:
    kinds = [protocol.BOOT, protocol.INVOKE, protocol.READY, protocol.INIT_ERROR, protocol.RESULT]
    assert len(set(kinds)) == len(kinds)
    assert all(0 <= k < 256 for k in kinds)  # one byte on the wire
