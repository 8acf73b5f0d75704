"""What the bare baselines (bare_asgi.py, bare_roundtrip.py, binary_floor.py) share: faasbox's
server stack (uvicorn with uvloop and httptools, no access log, no lifespan) on the port
given as their argument, and a plain 200 response."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn


async def respond(send: Any, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve(app: Any) -> None:
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )
