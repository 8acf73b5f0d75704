"""Async throughput: Event invocations end to end (accepted durably, queued, run, recorded
as succeeded) against synchronous RequestResponse invocations of the same function, in the
same run on the same server."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import FUNCTIONS, faasbox_server
from bench.results import machine, update_section

FUNCTION = "benchhello-dev-hello"
EVENTS = 2000
CONNECTIONS = 8


def _send(url: str, invocation_type: str, count: int) -> float:
    """`count` invocations over CONNECTIONS clients; the seconds they took."""
    path = f"{url}/2015-03-31/functions/{FUNCTION}/invocations"
    headers = {"x-amz-invocation-type": invocation_type}
    expected = 202 if invocation_type == "Event" else 200

    def client_loop(share: int) -> None:
        with httpx.Client(timeout=60) as client:
            for _ in range(share):
                response = client.post(path, content=b"{}", headers=headers)
                assert response.status_code == expected, response.text

    shares = [count // CONNECTIONS + (i < count % CONNECTIONS) for i in range(CONNECTIONS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        list(pool.map(client_loop, shares))
    return time.perf_counter() - started


def _succeeded(url: str) -> int:
    response = httpx.get(
        f"{url}/_faasbox/async/invocations", params={"function": FUNCTION, "limit": 1}
    )
    return int(response.json()["counts"].get("succeeded", 0))


def main() -> None:
    server = faasbox_server([FUNCTIONS / "hello"])
    try:
        _send(server.url, "RequestResponse", 200)  # warm workers
        sync_s = _send(server.url, "RequestResponse", EVENTS)
        before = _succeeded(server.url)
        started = time.perf_counter()
        accept_s = _send(server.url, "Event", EVENTS)
        while _succeeded(server.url) < before + EVENTS:
            time.sleep(0.1)  # the count is a query: poll gently
        async_s = time.perf_counter() - started
    finally:
        server.stop()
    sync_rate, async_rate, accept_rate = EVENTS / sync_s, EVENTS / async_s, EVENTS / accept_s
    accepted, end_to_end = accept_rate / sync_rate, async_rate / sync_rate
    body = f"""Async throughput against sync invocations of the same function, same server, \
same run.

| invocations | rate /s | ratio to sync |
|---|---|---|
| RequestResponse (200 after the handler ran) | {sync_rate:,.0f} | 1.00x |
| Event, accepted (202 after the durable commit) | {accept_rate:,.0f} | **{accepted:.2f}x** |
| Event, end to end (accepted, run, recorded as succeeded) | {async_rate:,.0f} \
| **{end_to_end:.2f}x** |

{EVENTS} invocations of `bench/functions/hello` (a warm Python hello) per row over
{CONNECTIONS} keep-alive clients (httpx, threads) through the Lambda Invoke API, after 200
warm-up calls. End to end: from the first Event sent until the status API counts all
{EVENTS} as succeeded (each a row committed to SQLite WAL before its 202, leased, run
through the invoker, then marked). Machine: {machine()}.
Command: `.venv/bin/python -m bench.async_events`"""
    update_section("Async invocations", body)
    print(body)


if __name__ == "__main__":
    main()
