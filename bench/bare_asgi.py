"""The baseline for the warm-overhead bench: the smallest ASGI hello, on faasbox's server stack
(uvicorn with uvloop and httptools, no access log), answering what the hello function does."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

BODY = b'{"message": "Hello"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
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
