"""A function's own Content-Length or Transfer-Encoding never reaches the client: the gateway
frames the body, as API Gateway does (a repeated or wrong Content-Length breaks clients)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support import SERVICES, RunningServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([SERVICES / "probe"], tmp_path_factory.mktemp("data")).start()
    yield running
    running.stop()


def test_the_gateway_alone_frames_the_body(server: RunningServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(b"GET /probe/framed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")[1:]]
    assert head.startswith(b"HTTP/1.1 200")
    assert names.count(b"content-length") == 1
    assert b"transfer-encoding" not in names
    assert body == b"framed by the function"
