"""The Runtime API worker's HTTP/1.1 parser, fed over a real socket: any bytes, split anywhere,
give requests or a clear HttpError, never another exception."""

from __future__ import annotations

import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from faasbox.execution.process.runtime_api.http import Connection, Data, End, HttpError, Request

VALID = (
    b"POST /2018-06-01/runtime/invocation/abc/response HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nLambda-Runtime-Function-Error-Type: X\r\n\r\n"
    b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
)


def feed(pieces: list[bytes], max_body: int = 1 << 20) -> list[object]:
    """Send `pieces` one by one and parse after each, answering every complete request."""
    ours, theirs = socket.socketpair()
    conn = Connection(ours)
    out: list[object] = []
    try:
        for piece in pieces:
            theirs.sendall(piece)
            while True:  # a socketpair delivers what was sent: read until it is all in
                before = len(out)
                conn.receive()
                events = conn.events()
                out.extend(events)
                for event in events:
                    if isinstance(event, Request):
                        conn.max_body = max_body
                    if isinstance(event, End):
                        conn.answer(202, b"{}")
                if len(out) == before:
                    break
    except HttpError as e:
        out.append(e)
    finally:
        ours.close()
        theirs.close()
    return out


def test_chunked_body_trailers_and_keep_alive() -> None:
    events = feed([VALID])
    first = events[0]
    assert isinstance(first, Request) and first.chunked
    body = b"".join(e.data for e in events if isinstance(e, Data))
    assert body == b"hello world"
    ends = [e for e in events if isinstance(e, End)]
    assert ends[0].trailers == {"lambda-runtime-function-error-type": "X"}
    assert isinstance(events[-2], Request) and events[-2].path.endswith("/next")
    assert len(ends) == 2


@given(st.lists(st.integers(min_value=1, max_value=len(VALID) - 1), max_size=8))
@settings(max_examples=60, deadline=None)
def test_a_request_split_anywhere_parses_the_same(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [VALID[a:b] for a, b in zip([0, *points], [*points, len(VALID)], strict=True)]
    events = feed(pieces)
    assert b"".join(e.data for e in events if isinstance(e, Data)) == b"hello world"
    assert sum(isinstance(e, End) for e in events) == 2


@given(st.lists(st.binary(max_size=64), min_size=1, max_size=6))
@settings(max_examples=150, deadline=None)
def test_any_bytes_give_requests_or_a_clear_error(pieces: list[bytes]) -> None:
    for event in feed(pieces, max_body=32):
        assert isinstance(event, Request | Data | End | HttpError)
        if isinstance(event, HttpError):
            assert 400 <= event.status < 600 and event.message


@given(st.binary(max_size=200))
@settings(max_examples=150, deadline=None)
def test_garbage_after_a_valid_head_is_a_clear_error(tail: bytes) -> None:
    head = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    for event in feed([head + tail], max_body=64):
        assert isinstance(event, Request | Data | End | HttpError)
