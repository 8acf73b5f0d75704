"""The binary path through a real Python worker (faasbox.execution.body_beside): an HTTP
event's binary body beside the event, a proxy response's body back beside the rest, against
the whole JSON both ways, for payload 1.0 and 2.0."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from faasbox.config import load_service
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.gateway.apigw_events import (
    HttpResponse,
    MalformedResponse,
    RequestFacts,
    encode_event,
    v1_event,
    v1_response,
    v2_event,
    v2_response,
)
from faasbox.gateway.routes import HTTP_API, REST, Match, Route
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service
from tests.support import SERVICES, run_with_invoker

BODY = random.Random(4).randbytes(100_000)
CASES = [
    "event",
    "event-rest",
    "invalid-base64",
    "non-str-body",
    "not-base64",
    "truthy-flag",
    "no-status",
    "unknown-key",
    "int-key",
    "not-json",
    "too-large",
]


def event(kind: str, case: str, beside: bool, body: bytes) -> dict[str, Any]:
    facts = RequestFacts(
        "POST",
        f"/{kind}/proxy",
        f"/{kind}/proxy",
        "",
        [("host", "localhost"), ("content-type", "image/jpeg"), ("x-case", case)],
        "127.0.0.1",
        "HTTP/1.1",
        "5eed0000-0000-4000-8000-000000000000",
        1_700_000_000.5,
    )
    route = Route(REST if kind == "rest" else HTTP_API, "POST", f"/{kind}/proxy", "proxy")
    if kind == "rest":
        return v1_event(facts, Match(route, {}), "dev", body, ["image/*"], None, beside)
    return v2_event(facts, Match(route, {}), body, beside)


def mapped(kind: str, result: InvocationResult) -> HttpResponse | str:
    if result.function_error is not None:
        return f"error {result.payload!r}"
    try:
        if kind == "rest":
            return v1_response(result.payload, result.http_body)
        return v2_response(result.payload, result.http_body)
    except MalformedResponse as e:
        return f"malformed: {e}"


@pytest.mark.parametrize("body", [BODY, b"\x00"], ids=["100 KB", "1 byte"])
@pytest.mark.parametrize("kind", ["rest", "v2"])
def test_the_handler_and_the_client_see_what_the_whole_json_gave(
    data_dir: Path, kind: str, body: bytes
) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "binary-path"))
    fn = registry.get("binary-path-dev-proxy")

    async def scenario(invoker: Invoker) -> list[tuple[str, InvocationResult, InvocationResult]]:
        out = []
        for case in CASES:
            whole = json.dumps(event(kind, case, False, body)).encode()
            parts = encode_event(event(kind, case, True, body), body)
            assert not isinstance(parts, bytes) and parts.joined() == whole
            request_id = f"{case}-request"  # both alike: an error names it
            before = await invoker.invoke(fn, whole, request_id=request_id, http_event=True)
            after = await invoker.invoke(
                fn, parts, request_id=request_id, http_event=True, body_beside=True
            )
            out.append((case, before, after))
        return out

    results = run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario)
    for case, before, after in results:
        assert mapped(kind, after) == mapped(kind, before), case
        assert after.status == before.status, case
    by_case = {case: after for case, _, after in results}
    # The handler's event, as it wrote it with json.dumps: the old event's bytes exactly.
    seen = mapped(kind, by_case["event"])
    assert isinstance(seen, HttpResponse)
    whole = json.dumps(event(kind, "event", False, body))
    assert seen.body.decode() == whole
    assert base64.b64decode(json.loads(seen.body)["body"]) == body
    # The response's body came decoded beside the rest only where it provably could.
    beside = {case for case, r in by_case.items() if r.http_body is not None}
    assert beside == {"event", "event-rest", "unknown-key"}
    assert by_case["too-large"].status == "error"
    assert b"Function.ResponseSizeTooLarge" in by_case["too-large"].payload


@pytest.mark.parametrize("kind", ["rest", "v2"])
def test_a_node_worker_gets_the_whole_events_json(data_dir: Path, kind: str) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "binary-path"))
    fn = registry.get("binary-path-dev-node-echo")
    whole = json.dumps(event(kind, "event", False, BODY)).encode()
    parts = encode_event(event(kind, "event", True, BODY), BODY)

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [
            await invoker.invoke(fn, whole, request_id="r", http_event=True),
            await invoker.invoke(fn, parts, request_id="r", http_event=True, body_beside=True),
        ]

    before, after = run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario)
    assert after.http_body is None and after.payload == before.payload
    seen = json.loads(json.loads(after.payload)["body"])
    assert list(seen.items()) == list(json.loads(whole).items())
