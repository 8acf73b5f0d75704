"""The event stream encoding of InvokeWithResponseStream, read back with botocore's parser."""

from __future__ import annotations

from botocore.eventstream import EventStreamBuffer

from faasbox.gateway import eventstream


def decoded(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(m.headers), m.payload) for m in buffer]


def test_payload_chunks_and_the_complete_event_decode_with_botocore() -> None:
    data = (
        eventstream.payload_chunk(b"part 1\n")
        + eventstream.payload_chunk(b"\x00\xff binary")
        + eventstream.invoke_complete()
    )
    messages = decoded(data)
    assert [m[0][":event-type"] for m in messages] == [
        "PayloadChunk",
        "PayloadChunk",
        "InvokeComplete",
    ]
    assert all(m[0][":message-type"] == "event" for m in messages)
    assert messages[0][1] == b"part 1\n"
    assert messages[1][1] == b"\x00\xff binary"
    assert messages[2][1] == b"{}"


def test_an_error_completes_the_stream_with_its_code_and_details() -> None:
    data = eventstream.invoke_complete("Custom.Failed", "it broke", "bG9n")
    [(headers, payload)] = decoded(data)
    assert headers[":content-type"] == "application/json"
    assert (
        payload
        == b'{"ErrorCode": "Custom.Failed", "ErrorDetails": "it broke", "LogResult": "bG9n"}'
    )


def test_an_empty_chunk_is_a_valid_message() -> None:
    [(_, payload)] = decoded(eventstream.payload_chunk(b""))
    assert payload == b""
