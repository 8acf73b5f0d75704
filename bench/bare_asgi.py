"""The baseline for the warm-overhead bench: the smallest ASGI hello, on faasbox's server stack
(uvicorn with uvloop and httptools, no access log), answering what the hello function does."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.bare_stack import respond, serve

BODY = b'{"message": "Hello"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await respond(send, b"application/json", BODY)


if __name__ == "__main__":
    serve(app)
