"""The binary path (faasbox.execution.body_beside): an HTTP event's binary body carried beside
the rest of the event, and a proxy response's base64 body carried back decoded, give the
handler and the client exactly what the whole JSON gave."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest

from faasbox.execution.body_beside import HttpEventParts, response_size
from faasbox.execution.process.python import worker
from faasbox.gateway.apigw_events import (
    MalformedResponse,
    RequestFacts,
    encode_event,
    v1_event,
    v1_response,
    v2_event,
    v2_response,
)
from faasbox.gateway.routes import HTTP_API, REST, Match, Route

BINARY_TYPES = ["image/*", "application/octet-stream"]


def facts(content_type: str) -> RequestFacts:
    return RequestFacts(
        "POST",
        "/images/gray scale",
        "/images/gray%20scale",
        "size=big&x=%E2%9C%93",
        [
            ("host", "example.test:3000"),
            ("content-type", content_type),
            ("user-agent", "curl/8"),
            ("x-odd", 'quote " backslash \\ and é ✓'),
            ("cookie", "a=1; b=2"),
        ],
        "10.0.0.7",
        "HTTP/1.1",
        "c0ffee00-0000-4000-8000-000000000000",
        1_700_000_000.123,
    )


def bodies() -> list[bytes]:
    rng = random.Random(16)
    return [bytes([0xFF]), b"\x00\x01", b"abc", rng.randbytes(100_003), rng.randbytes(4096)]


def events(body: bytes, content_type: str, beside: bool) -> list[dict[str, Any]]:
    rest = Match(Route(REST, "POST", "/images/{name}", "gray", service="s"), {"name": "x"})
    v2 = Match(Route(HTTP_API, "POST", "/images/{name}", "gray", service="s"), {"name": "x"})
    f = facts(content_type)
    v1 = v1_event(f, rest, "dev", body, BINARY_TYPES, None, body_beside=beside)
    v1.setdefault("requestContext", {})["authorizer"] = {"principalId": "me", "n": 1}
    return [v1, v2_event(f, v2, body, body_beside=beside)]


@pytest.mark.parametrize("body", bodies(), ids=len)
def test_a_binary_body_beside_joins_to_the_events_very_bytes(body: bytes) -> None:
    for whole, split in zip(
        events(body, "image/jpeg", False), events(body, "image/jpeg", True), strict=True
    ):
        parts = encode_event(split, body)
        assert isinstance(parts, HttpEventParts)
        expected = json.dumps(whole).encode()
        assert parts.joined() == expected
        assert parts.size == len(expected)
        # What the Python worker makes of the INVOKE frame's body: the same dict, same order.
        event = worker._event(parts.rest + parts.body, len(parts.rest))
        assert json.dumps(event) == json.dumps(json.loads(expected))
        assert event == json.loads(expected)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"plain words \xc3\xa9", "text/plain"), (b'{"k": "v"}', "application/json"), (b"", "")],
)
def test_text_and_empty_bodies_stay_in_the_event(body: bytes, content_type: str) -> None:
    for whole, split in zip(
        events(body, content_type, False), events(body, content_type, True), strict=True
    ):
        assert encode_event(split, body) == json.dumps(whole).encode()


JPEG = bytes(range(256)) * 40


def response(**fields: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/jpeg"},
        "body": base64.b64encode(JPEG).decode(),
        "isBase64Encoded": True,
        **fields,
    }


@pytest.mark.parametrize("mapping", [v1_response, v2_response])
def test_a_base64_response_comes_back_as_the_gateway_would_have_decoded_it(
    mapping: Any,
) -> None:
    for result in (
        response(),
        response(body=""),
        response(body="QR=="),  # not canonical, accepted by b64decode alike
        response(multiValueHeaders={"X-A": ["1", "2"]}, statusCode="201"),
    ):
        if mapping is v2_response:
            result.pop("multiValueHeaders", None)
        parts = worker._response_parts(result)
        assert parts is not None
        rest, decoded = parts
        whole = json.dumps(result).encode()
        assert response_size(rest, decoded) == len(whole)
        assert mapping(rest, decoded) == mapping(whole)


@pytest.mark.parametrize(
    "result",
    [
        response(body="not base64!"),  # the gateway answers 502 for it
        response(body="QQ="),  # bad padding
        response(body="QUJD\n"),
        response(body="é"),  # not ASCII
        response(body=b"bytes"),
        response(body=None),
        response(body=["a"]),
        response(isBase64Encoded=False),
        response(isBase64Encoded="true"),
        response(isBase64Encoded=1),
        {"body": base64.b64encode(b"x").decode(), "isBase64Encoded": True},  # no statusCode
        {**response(), 7: "seven"},  # json.dumps would rename the key
        response(headers={"X-Obj": object()}),  # not JSON: the marshal error, as always
        [response()],
        "a string",
    ],
)
def test_other_responses_take_the_whole_json_path(result: Any) -> None:
    assert worker._response_parts(result) is None


def test_the_gateways_own_check_still_refuses_what_it_refused() -> None:
    with pytest.raises(MalformedResponse):
        v1_response(json.dumps(response(body="not base64!")).encode())
