"""The floor of the binary path, for bench/binary_path.py, bench/image.py and bench/peers.py:
what serving an image handler (grayscale; classify for `POST /classify`; bench/functions/peers'
Pillow grayscale for `POST /gray`) through a process boundary
cannot avoid, and nothing else. uvicorn (the same settings as faasbox's) reads the POSTed
image, sends its raw bytes in one frame (faasbox's framing) to a second process, which
builds the event the handler needs (its body base64, as API Gateway's contract has it),
calls the handler, decodes the base64 body of its response (or takes a text body's UTF-8)
and sends those bytes back in one frame; the server writes them as the response.

No routing, no event fields beyond the handler's, no JSON of the body, no pool, logs,
timeout or jail: the bare handler's own work plus HTTP of the image each way plus one
round trip between two processes carrying it.

    python bench/binary_floor.py PORT
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bare_roundtrip import Pool
from bench.bare_stack import respond, serve
from faasbox.execution.process import protocol

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "image-service"
PEERS = Path(__file__).resolve().parent / "functions" / "peers"


def serve_worker(sock: socket.socket) -> None:
    os.chdir(SERVICE)
    sys.path[:0] = [str(SERVICE), str(PEERS)]
    import app as peers
    import classify
    import grayscale

    handlers = {"grayscale": grayscale.handler, "classify": classify.handler, "gray": peers.gray}
    frames: Any = sock.makefile("rb", buffering=1 << 16)
    while True:
        try:
            _, header, body = protocol.read_frame(frames)
        except protocol.ProtocolError:
            os._exit(0)
        event = {
            "headers": {"Content-Type": header["content_type"]},
            "body": base64.b64encode(body).decode("ascii"),
            "isBase64Encoded": True,
        }
        result = handlers[header["handler"]](event, None)
        if result.get("isBase64Encoded"):
            out = base64.b64decode(result["body"])
        else:
            out = result["body"].encode()
        protocol.send_frame(sock, protocol.RESULT, {}, out)


POOL = Pool(serve_worker)
RESPONSE_TYPES = {
    "grayscale": b"image/jpeg",
    "classify": b"text/plain; charset=utf-8",
    "gray": b"image/jpeg",
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["method"] != "POST":  # the bench's readiness probe
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
    handler = scope["path"].rsplit("/", 1)[-1]
    if handler not in RESPONSE_TYPES:
        handler = "grayscale"
    channel = await POOL.take()
    channel.waiter = asyncio.get_running_loop().create_future()
    channel.transport.write(
        protocol.encode(
            protocol.INVOKE, {"content_type": content_type, "handler": handler}, b"".join(chunks)
        )
    )
    body = await channel.waiter
    POOL.idle.append(channel)
    # The handlers' own: a JPEG in, a JPEG out; classify's sentence (bare_roundtrip's channel
    # hands over only the frame's body).
    await respond(send, RESPONSE_TYPES[handler], body)


if __name__ == "__main__":
    serve(app)
