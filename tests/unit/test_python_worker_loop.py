"""The Python worker's warm loop gives what its slower first form gave: the same context
object, the same event from the same bytes, the same RESULT frames, the same base64 check."""

from __future__ import annotations

import base64
import codecs
import decimal
import itertools
import json
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from faasbox import fastjson
from faasbox.execution.process import protocol
from faasbox.execution.process.python import worker
from faasbox.execution.process.python.context import LambdaContext, for_invocation

BOOT = {
    "function_name": "svc-dev-fn",
    "version": "$LATEST",
    "arn": "arn:aws:lambda:us-east-1:000000000000:function:svc-dev-fn",
    "memory_mb": 512,
    "log_group": "/aws/lambda/svc-dev-fn",
    "log_stream": "2026/12/02/[$LATEST]abc",
}


def _attributes(context: Any) -> list[tuple[str, Any]]:
    return [
        (k, vars(v) if k in ("identity", "client_context") and v is not None else v)
        for k, v in vars(context).items()
    ]


@pytest.mark.parametrize(
    ("identity", "client_context"),
    [
        (None, None),
        ({}, {}),
        ({"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}, None),
        (None, {"client": {"app_title": "t"}, "custom": {"k": 1}, "env": {"e": "v"}}),
    ],
)
def test_the_context_has_the_attributes_of_lambda_context_in_their_order(
    identity: dict[str, Any] | None, client_context: dict[str, Any] | None
) -> None:
    fields = ("fn", "$LATEST", "arn:fn", 256, "rid", "/aws/lambda/fn", "stream", 123)
    made = LambdaContext(
        function_name=fields[0],
        function_version=fields[1],
        invoked_function_arn=fields[2],
        memory_limit_in_mb=fields[3],
        aws_request_id=fields[4],
        log_group_name=fields[5],
        log_stream_name=fields[6],
        deadline_ms=fields[7],
        identity=identity,
        client_context=client_context,
    )
    fast = for_invocation(*fields[:3], "256", *fields[4:], identity, client_context)
    assert type(fast) is LambdaContext and type(fast.identity) is type(made.identity)
    assert _attributes(fast) == _attributes(made)
    assert repr(fast) == repr(made)
    assert fast.get_remaining_time_in_millis() == 0
    fast.custom_attribute = 1  # handlers may set their own
    fast.identity.cognito_identity_id = "changed"
    again = for_invocation(*fields[:3], "256", *fields[4:], identity, client_context)
    assert not hasattr(again, "custom_attribute")
    assert again.identity.cognito_identity_id == made.identity.cognito_identity_id


def _texts() -> Iterator[bytes]:
    text = '{"a": "é\U0001f600", "b": [1, 2.5, null, true]}'
    for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        yield text.encode(encoding)
    yield from (b"", b"1", b" 1", b"\xef\xbb\xbf1", b"[]", b'"\\ud800"', b"\x00", b"\x01", b"{")
    yield from (b"\xff\xfe", b"\xc3\x28", b"1 2", b'"\xed\xa0\x80"', codecs.BOM_UTF32_LE)
    yield from (b"1 ", b"[1] x", b'{"a":1}\n', b"[1,", b'"\\x"', b"NaN", b"-Infinity", b"1e999")


@pytest.mark.parametrize("data", list(_texts()))
def test_loads_reads_every_byte_string_as_json_loads_does(data: bytes) -> None:
    try:
        expected: Any = json.loads(data)
    except Exception as e:  # the same kind of failure
        with pytest.raises(type(e)):
            fastjson.loads(data)
    else:
        assert repr(fastjson.loads(data)) == repr(expected)


def test_the_response_base64_check_accepts_what_the_gateways_accepts() -> None:
    for n in range(7):
        for chars in itertools.product("AQ+/=é\n ", repeat=n):
            text = "".join(chars)
            try:
                expected: bytes | None = base64.b64decode(text, validate=True)
            except ValueError:
                expected = None
            parts = worker._response_parts(
                {"statusCode": 200, "body": text, "isBase64Encoded": True}
            )
            assert (parts[1] if parts else None) == expected, repr(text)


class _Results:
    """The worker's end of a socketpair, and the frames read on the other end."""

    def __init__(self) -> None:
        self.ours, theirs = socket.socketpair()
        self.reader = theirs.makefile("rb")

    def invoke(self, handler: Any, header: dict[str, Any], body: bytes) -> tuple[Any, bytes]:
        worker.invoke(self.ours, handler, BOOT, header, body)
        kind, result_header, result = protocol.read_frame(self.reader)
        assert kind == protocol.RESULT
        return result_header, result


def test_results_carry_the_same_header_and_body() -> None:
    results = _Results()
    seen: list[tuple[Any, Any, str | None]] = []

    def handler(event: Any, context: Any) -> Any:
        seen.append((event, context, os.environ.get("_X_AMZN_TRACE_ID")))
        return {"n": decimal.Decimal("2"), "f": decimal.Decimal("0.5"), "s": "é"}

    head = {"request_id": "r1", "deadline_ms": 1, "trace_id": "Root=1-a"}
    header, body = results.invoke(handler, head, b'{"x": "\\u00e9"}')
    assert list(header) == ["ok", "duration_ms", "max_memory_kb", "output_pending"]
    assert header["ok"] is True and header["max_memory_kb"] > 0
    assert body == b'{"n": 2, "f": 0.5, "s": "\\u00e9"}'
    assert seen[-1][0] == {"x": "é"} and seen[-1][2] == "Root=1-a"
    assert seen[-1][1].memory_limit_in_mb == "512" and seen[-1][1].aws_request_id == "r1"

    header, body = results.invoke(handler, {"request_id": "r2", "deadline_ms": 1}, b"")
    assert seen[-1][0] == {} and seen[-1][2] is None  # no trace id: the variable is gone

    header, body = results.invoke(lambda e, c: {1, 2}, head, b"{}")
    assert header["ok"] is False
    assert json.loads(body)["errorType"] == "Runtime.MarshalError"


@pytest.mark.parametrize("size", [0, 3, 300_000])
def test_a_split_response_carries_its_decoded_body_beside_the_json(size: int) -> None:
    results = _Results()
    image = os.urandom(size)
    response = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/jpeg"},
        "body": base64.b64encode(image).decode(),
        "isBase64Encoded": True,
    }
    got: list[tuple[Any, bytes]] = []
    # The reader runs beside the worker: 300 KB is more than the socket's buffer holds.
    reading = threading.Thread(target=lambda: got.append(protocol.read_frame(results.reader)[1:]))
    reading.start()
    worker.invoke(
        results.ours,
        lambda e, c: response,
        BOOT,
        {"request_id": "r", "deadline_ms": 1, "body_beside": True},
        b"{}",
    )
    reading.join()
    header, body = got[0]
    rest = {k: v for k, v in response.items() if k != "body"}
    assert header["body_at"] == len(json.dumps(rest))
    assert json.loads(body[: header["body_at"]]) == rest and body[header["body_at"] :] == image


class _Odd:
    pass


def _values() -> list[Any]:
    nested: list[Any] = [1, {"k": [2.5, None]}]
    return [
        'é\x00"',
        {"a": "é", 1: 2, 2.5: True, None: [], "n": float("nan"), "i": -float("inf")},
        [decimal.Decimal("1.50"), decimal.Decimal("3")],
        (1, 2),
        nested,
        1e300,
        {"odd": _Odd()},
        {(1, 2): 1},
    ]


@pytest.mark.parametrize("separators", [None, (",", ":")])
def test_the_json_encoder_writes_what_json_dumps_writes(
    separators: tuple[str, str] | None,
) -> None:
    encode = fastjson.encoder(default=worker._json_default, separators=separators)
    circular: list[Any] = []
    circular.append(circular)
    for value in [*_values(), circular, *_values()]:  # a failure leaves nothing behind
        try:
            expected = json.dumps(value, default=worker._json_default, separators=separators)
        except Exception as e:
            with pytest.raises(type(e), match=str(e)[:20]):
                encode(value)
        else:
            assert encode(value) == expected
