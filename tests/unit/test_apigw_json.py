"""The proxy events' JSON written from per-route skeletons (faasbox.gateway.apigw_json) is,
byte for byte, what `json.dumps` of the event dict gave (faasbox.gateway.apigw_events): for
headers with any Latin-1 text, cookies, query strings, path parameters, stages, API keys,
authorizer contexts, IAM identities, and text, binary and absent bodies."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from faasbox.execution.body_beside import HttpEventParts
from faasbox.gateway.apigw_events import RequestFacts, encode_event, v1_event, v2_event
from faasbox.gateway.apigw_json import v1_event_json, v2_event_json
from faasbox.gateway.routes import HTTP_API, REST, Match, Route

BINARY_TYPES = ["image/*", "application/octet-stream"]

# Header names and values as uvicorn hands them over, decoded as Latin-1: any byte.
latin1 = st.text(st.characters(max_codepoint=0xFF), max_size=12)
header_name = st.sampled_from(
    ["host", "user-agent", "cookie", "content-type", "x-custom", "accept", "x-é", "a\x7f"]
)
content_type = st.sampled_from(
    ["image/jpeg", "application/json", "text/plain; charset=utf-8", "", "application/x-thing"]
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
# Unicode in a path parameter: routes match the percent-decoded path.
parameters = st.dictionaries(
    st.text(string.ascii_letters, min_size=1, max_size=5), st.text(max_size=8), max_size=3
)
query = st.lists(
    st.tuples(st.sampled_from(["a", "b", "é", "%E2%9C%93", "x y"]), latin1), max_size=4
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))


@st.composite
def requests(draw: st.DrawFn) -> RequestFacts:
    headers = draw(st.lists(st.tuples(header_name, latin1), max_size=6))
    if draw(st.booleans()):
        headers.append(("content-type", draw(content_type)))
    if draw(st.booleans()):
        headers.append(("cookie", draw(st.sampled_from(["a=1; b=2", " ; c=3;", "", "é=ü"]))))
    path = draw(st.sampled_from(["/hello", "/items/é ✓", "/a/b/c", '/q"uote\\']))
    return RequestFacts(
        draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"])),
        path,
        draw(st.sampled_from([path, "/items/%C3%A9%20%E2%9C%93", "/raw"])),
        draw(query | st.sampled_from(["", "a=1&a=2&b=", "x=%ZZ&&=v"])),
        headers,
        draw(st.sampled_from(["127.0.0.1", "::1", "10.0.0.7"])),
        draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2"])),
        draw(st.uuids()).hex,
        draw(st.floats(min_value=0, max_value=4e9)),
    )


def route(kind: str, draw: st.DrawFn) -> Route:
    return Route(
        kind,
        draw(st.sampled_from(["GET", "POST", "ANY"])),
        draw(st.sampled_from(["/hello", "/items/{id}", "/{proxy+}", "$default", "/é"])),
        "fn",
        service=draw(st.sampled_from([None, "svc", "ünï"])),
    )


@settings(max_examples=200, deadline=None)
@given(
    facts=requests(),
    data=st.data(),
    body=st.sampled_from([b"", b"plain \xc3\xa9 text", b"\xff\x00binary", b'{"k": "v"}']),
    beside=st.booleans(),
    authorizer=st.none() | st.dictionaries(st.text(max_size=6), json_value, max_size=4),
)
def test_a_payload_2_0_event_is_the_bytes_json_dumps_gave(
    facts: RequestFacts, data: st.DataObject, body: bytes, beside: bool, authorizer: Any
) -> None:
    match = Match(route(HTTP_API, data.draw), data.draw(parameters))
    event = v2_event(facts, match, body, body_beside=beside)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    assert same(v2_event_json(facts, match, body, beside, authorizer), encode_event(event, body))


@settings(max_examples=200, deadline=None)
@given(
    facts=requests(),
    data=st.data(),
    body=st.sampled_from([b"", b"plain \xc3\xa9 text", b"\xff\x00binary", b'{"k": "v"}']),
    beside=st.booleans(),
    stage=st.sampled_from(["dev", "prod", "é"]),
    api_key=st.none() | st.text(max_size=8),
    authorizer=st.none() | st.dictionaries(st.text(max_size=6), json_value, max_size=4),
    identity=st.none()
    | st.fixed_dictionaries(
        {"accessKey": st.text(max_size=6), "caller": st.text(max_size=6), "userArn": st.text()}
    ),
)
def test_a_payload_1_0_event_is_the_bytes_json_dumps_gave(
    facts: RequestFacts,
    data: st.DataObject,
    body: bytes,
    beside: bool,
    stage: str,
    api_key: str | None,
    authorizer: Any,
    identity: dict[str, Any] | None,
) -> None:
    match = Match(route(REST, data.draw), data.draw(parameters))
    event = v1_event(facts, match, stage, body, BINARY_TYPES, api_key, body_beside=beside)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if identity is not None:
        event["requestContext"]["identity"].update(identity)
    written = v1_event_json(
        facts, match, stage, body, BINARY_TYPES, api_key, beside, authorizer, identity
    )
    assert same(written, encode_event(event, body))


def test_the_hello_event_wrk_sends_for() -> None:
    """The bench's request (bench.gateway_loop), spelled out: the skeleton and the dict agree
    on a route seen before and on one redeployed (a new Route object, the same path)."""
    facts = RequestFacts(
        "GET", "/hello", "/hello", "", [("host", "127.0.0.1:8000")], "127.0.0.1", "HTTP/1.1",
        "c0ffee00-0000-4000-8000-000000000000", 1_700_000_000.5,
    )  # fmt: skip
    for service in ("peers", "peers", "other"):
        match = Match(Route(HTTP_API, "GET", "/hello", "hello", service=service), {})
        written = v2_event_json(facts, match, b"", True)
        assert written == json.dumps(v2_event(facts, match, b"", True)).encode()
        assert json.loads(written)["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def same(written: bytes | HttpEventParts, expected: bytes | HttpEventParts) -> bool:
    if isinstance(expected, HttpEventParts):
        return isinstance(written, HttpEventParts) and (written.rest, written.body) == (
            expected.rest,
            expected.body,
        )
    return written == expected
