"""faasbox's own Python on the gateway's event-loop thread, per warm request, without uvicorn:
the ASGI application (`Gateway`) driven in process from a loop, with a real worker process
behind it (the hello of bench/functions/peers, jailed as `serve` would), as uvicorn's
httptools protocol would call it for wrk's `GET /hello` (the same scope, the same messages).

It prints the loop thread's CPU time per request (`time.thread_time`; the least of the rounds
is the steadiest figure on a machine shared with other work; the worker's and the log
writer's threads are not in it), and with `--profile` the functions that took it (cProfile on
this thread's CPU clock, so a woken worker that preempts it is not counted; cProfile's own
cost per call inflates small functions: read the order, not the µs).

    .venv/bin/python -m bench.gateway_loop                 # 10 rounds of 2,000 requests
    .venv/bin/python -m bench.gateway_loop --profile 30    # and the 30 costliest functions
    .venv/bin/python -m bench.gateway_loop --binary --requests 500   # the binary path

`--binary`: instead of the hello, wrk's POST of bench.image's 640x480 JPEG (85 KB,
`image/jpeg`, a binary media type) to examples/image-service's grayscale (a REST route,
payload 1.0), its body given in two messages as uvicorn's httptools protocol gives a 100 KB
body (it pauses reading past 64 KB).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import FUNCTIONS
from faasbox.cli.main import find_services
from faasbox.execution.settings import RuntimeSettings
from faasbox.gateway.server import build_server
from faasbox.registry.services import deploy_service

HEADERS = [(b"host", b"127.0.0.1:8000")]  # what wrk sends for GET /hello
IMAGE_SERVICE = Path(__file__).resolve().parent.parent / "examples" / "image-service"


@dataclass
class Request:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    messages: list[dict[str, Any]]


HELLO = Request("GET", "/hello", HEADERS, [{"type": "http.request", "body": b""}])


def binary_request() -> Request:
    from bench.image import inputs

    body, content_type = inputs()["JPEG 640x480"]
    headers = [
        *HEADERS,
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    split = 1 << 16
    messages = [
        {"type": "http.request", "body": body[:split], "more_body": True},
        {"type": "http.request", "body": body[split:], "more_body": False},
    ]
    return Request("POST", "/images/grayscale", headers, messages)


def _scope(request: Request = HELLO) -> dict[str, Any]:
    """A fresh scope per request, as uvicorn's httptools protocol makes it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": request.method,
        "root_path": "",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": b"",
        "headers": list(request.headers),
        "state": {},
    }


async def _requests(app: Any, count: int, request: Request = HELLO) -> list[bytes]:
    bodies: list[bytes] = []
    pending: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])

    for _ in range(count):
        pending[:] = request.messages
        await app(_scope(request), receive, send)
    return bodies


async def run(rounds: int, count: int, profile: int, binary: bool = False) -> None:
    data = Path(tempfile.mkdtemp(prefix="faasbox-bench-"))
    settings = RuntimeSettings(data_dir=data)
    server = build_server(settings, auth=False)
    request = binary_request() if binary else HELLO
    for spec in find_services(IMAGE_SERVICE if binary else FUNCTIONS / "peers", {}):
        deploy_service(server.registry, spec, server.api_keys)
    app = server.gateway
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan"}, startup.get, sent.put))
    await sent.get()
    try:
        bodies = await _requests(app, 200, request)  # the cold start, then warm
        if binary:
            assert bodies[-1][:2] == b"\xff\xd8", bodies[-1][:100]  # a JPEG
        else:
            assert bodies[-1] == b'{"message": "Hello"}', bodies[-1]
        per_request = []
        for _ in range(rounds):
            started = time.thread_time()
            await _requests(app, count, request)
            per_request.append((time.thread_time() - started) / count * 1e6)
        what = "POST /images/grayscale (85 KB JPEG)" if binary else "GET /hello"
        print(
            f"gateway loop thread, CPU µs per warm {what} (ASGI app only, no uvicorn): "
            f"least {min(per_request):.1f}, median {statistics.median(per_request):.1f}, rounds "
            + ", ".join(f"{us:.1f}" for us in per_request)
        )
        if profile:
            profiler = cProfile.Profile(time.thread_time_ns, 1e-9)  # CPU, not wall
            profiler.enable()
            await _requests(app, count, request)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(profile)
            stats.sort_stats("cumulative").print_stats(profile)
            print(out.getvalue())
    finally:
        await startup.put({"type": "lifespan.shutdown"})
        await lifespan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--binary", action="store_true")
    args = parser.parse_args(argv or [])
    import uvloop

    uvloop.run(run(args.rounds, args.requests, args.profile, args.binary))


if __name__ == "__main__":
    main(sys.argv[1:])
