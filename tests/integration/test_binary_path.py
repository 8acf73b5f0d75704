"""The binary path through a real server (faasbox.execution.body_beside): a binary POST on a
REST and an HTTP API route, the event the handler saw, and odd proxy responses."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator

import httpx
import pytest

from tests.support import SERVICES, RunningServer

PHOTO = random.Random(9).randbytes(100_000)


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    running = RunningServer([SERVICES / "binary-path"], tmp_path_factory.mktemp("data")).start()
    try:
        with httpx.Client(base_url=running.url, timeout=30) as client:
            yield client
    finally:
        running.stop()


def post(http: httpx.Client, path: str, case: str) -> httpx.Response:
    return http.post(path, content=PHOTO, headers={"content-type": "image/jpeg", "x-case": case})


@pytest.mark.parametrize("path", ["/rest/proxy", "/v2/proxy"])
def test_a_binary_body_reaches_the_handler_base64_in_its_event(
    http: httpx.Client, path: str
) -> None:
    response = post(http, path, "event")
    assert response.status_code == 200
    seen = json.loads(response.content)
    assert base64.b64decode(seen["body"]) == PHOTO and seen["isBase64Encoded"] is True
    assert list(seen)[-2:] == ["body", "isBase64Encoded"]  # where API Gateway puts them
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/rest/proxy", "/v2/proxy"])
def test_odd_proxy_responses_are_answered_as_before(http: httpx.Client, path: str) -> None:
    assert post(http, path, "invalid-base64").status_code == 502
    assert post(http, path, "non-str-body").status_code == 502
    text = post(http, path, "not-base64")  # isBase64Encoded false: the body as text
    assert text.status_code == 200 and json.loads(text.text)["isBase64Encoded"] is True
    rest = post(http, path, "event-rest")
    assert rest.status_code == 201 and rest.headers["content-type"] == "application/octet-stream"
    assert json.loads(rest.content)["headers"]["x-case" if "v2" in path else "X-Case"]
    assert post(http, path, "too-large").status_code == 502
