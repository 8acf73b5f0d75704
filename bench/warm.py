"""Warm overhead: hello through faasbox's gateway and a warm worker, against a bare ASGI hello
on the same server stack, at 1 and 8 connections (wrk)."""

from __future__ import annotations

from bench.common import FUNCTIONS, BareServer, faasbox_server, wrk
from bench.results import machine, update_section

SECONDS = 5


def main() -> None:
    bare = BareServer()
    server = faasbox_server([FUNCTIONS / "hello"])
    try:
        rows = []
        for connections in (1, 8):
            wrk(f"{server.url}/hello", connections, 1)  # warm the workers
            wrk(bare.url, connections, 1)
            ours = wrk(f"{server.url}/hello", connections, SECONDS)
            base = wrk(bare.url, connections, SECONDS)
            rows.append(
                f"| c={connections} | {base.rps:,.0f} | {base.p50_ms:.2f} / {base.p99_ms:.2f} | "
                f"{ours.rps:,.0f} | {ours.p50_ms:.2f} / {ours.p99_ms:.2f} | "
                f"**{ours.rps / base.rps:.2f}x** |"
            )
    finally:
        server.stop()
        bare.stop()
    body = f"""Target: >= 0.6x the bare ASGI hello's throughput, p99 <= 2 ms at c=8.

| load | bare ASGI req/s | bare p50 / p99 ms | faasbox req/s | faasbox p50 / p99 ms | ratio |
|---|---|---|---|---|---|
{chr(10).join(rows)}

faasbox: `GET /hello` (an `httpApi` route: route match, payload 2.0 event, a warm worker over its
Unix socket, response mapping). Bare: `bench/bare_asgi.py`, uvicorn + uvloop + httptools like
faasbox. wrk {SECONDS} s per row after a 1 s warm-up, `-t1 -c1` and `-t2 -c8`, both servers on
loopback, one after the other. Machine: {machine()}.
Command: `.venv/bin/python -m bench.warm`"""
    update_section("Warm overhead", body)
    print(body)


if __name__ == "__main__":
    main()
