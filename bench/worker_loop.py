"""The Python worker's warm loop, hot, in one process: `worker.invoke` of a handler with a
real INVOKE frame's header and body, its RESULT frame sent to a socketpair that a thread
drains, fd 1 and 2 on a pipe that another thread drains (as the server's log pipe is).
Prints the calling thread's CPU per invocation (`time.thread_time`, the least of the
rounds); `--profile` prints a cProfile of one round on that thread's CPU clock.

    .venv/bin/python -m bench.worker_loop [--binary] [--rounds 7] [--calls 20000]
    .venv/bin/python -m bench.worker_loop --floor   # the floor's worker, for comparison
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import socket
import sys
import threading
import time
from typing import Any

from bench.bare_roundtrip import answer
from faasbox.execution.process.python import worker

BOOT = {
    "function_name": "svc-dev-hello",
    "version": "$LATEST",
    "arn": "arn:aws:lambda:us-east-1:000000000000:function:svc-dev-hello",
    "memory_mb": 1024,
    "log_group": "/aws/lambda/svc-dev-hello",
    "log_stream": "2026/12/02/[$LATEST]0123456789abcdef0123456789abcdef",
}

# A payload 2.0 event of `GET /hello` as the gateway builds it for wrk.
HELLO_EVENT = {
    "version": "2.0",
    "routeKey": "GET /hello",
    "rawPath": "/hello",
    "rawQueryString": "",
    "headers": {"host": "127.0.0.1:8000"},
    "requestContext": {
        "accountId": "000000000000",
        "apiId": "a1b2c3d4e5",
        "domainName": "127.0.0.1",
        "domainPrefix": "127",
        "http": {
            "method": "GET",
            "path": "/hello",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "",
        },
        "requestId": "f6c1a7e0-0000-4000-8000-000000000000",
        "routeKey": "GET /hello",
        "stage": "$default",
        "time": "02/Dec/2026:20:20:20 +0000",
        "timeEpoch": 1796242820000,
    },
    "isBase64Encoded": False,
}


def hello(event: Any, context: Any) -> Any:
    return {"message": "Hello"}


def gray(event: Any, context: Any) -> Any:
    from PIL import Image

    data = base64.b64decode(event["body"])
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("L").save(out, "JPEG", quality=90)
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/jpeg"},
        "body": base64.b64encode(out.getvalue()).decode("ascii"),
        "isBase64Encoded": True,
    }


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_mandelbrot((640, 480), (-2.0, -1.2, 1.0, 1.2), 100).convert("RGB").save(
        out, "JPEG", quality=90
    )
    return out.getvalue()


def _drain(fd: int) -> None:
    while os.read(fd, 1 << 16):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", action="store_true", help="the grayscale, body beside")
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="with --binary: the handler returns a grayscale "
        "made once, so that only the worker's own work per image is measured",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="the floor's worker instead (bench/bare_roundtrip.py: json.loads of the event, "
        "json.dumps of a result, one frame back): what faasbox's worker does beyond it",
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.floor and args.binary:
        parser.error("--floor is the hello's floor; bench.image's floor is bench/binary_floor.py")
    calls = args.calls or (300 if args.binary and not args.fixed else 20000)

    report = os.fdopen(os.dup(1), "w")
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    threading.Thread(target=_drain, args=(read_end,), daemon=True).start()
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)

    ours, theirs = socket.socketpair()
    threading.Thread(
        target=lambda: [None for _ in iter(lambda: theirs.recv(1 << 20), b"")], daemon=True
    ).start()
    header: dict[str, Any] = {
        "request_id": "8e2b3c1a-3f6d-4b1e-9a0c-5d7e8f901234",
        "deadline_ms": int(time.time() * 1000) + 3_000_000,
        "trace_id": "Root=1-65a1b2c3-0123456789abcdef01234567;Sampled=0",
    }
    if args.binary:
        handler = gray
        event = {k: v for k, v in HELLO_EVENT.items() if k != "isBase64Encoded"}
        event["routeKey"] = event["requestContext"]["routeKey"] = "POST /gray"  # type: ignore[index]
        rest = json.dumps(event).encode()
        body = rest + _jpeg()
        header |= {"body_at": len(rest), "body_beside": True}
        if args.fixed:
            made = gray({"body": base64.b64encode(body[len(rest) :]).decode()}, None)
            handler = lambda event, context: made  # noqa: E731
    else:
        handler = hello
        body = json.dumps(HELLO_EVENT).encode()

    def one_round() -> float:
        started = time.thread_time()
        if args.floor:
            for _ in range(calls):
                answer(ours, body)
        else:
            for _ in range(calls):
                worker.invoke(ours, handler, BOOT, header, body)
        return (time.thread_time() - started) / calls * 1e6

    one_round()  # warm up
    if args.profile:
        profile = cProfile.Profile(time.thread_time)
        profile.runcall(one_round)
        stats = pstats.Stats(profile, stream=report)
        stats.sort_stats("tottime").print_stats(25)
    best = min(one_round() for _ in range(args.rounds))
    report.write(
        f"{'gray' if args.binary else 'hello'}{' (the floor)' if args.floor else ''}: "
        f"{best:.2f} µs CPU per invoke "
        f"(least of {args.rounds} rounds of {calls})\n"
    )
    report.flush()


if __name__ == "__main__":
    main()
