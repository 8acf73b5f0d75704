"""HTTP limits at the edge, with real slow clients on raw sockets against `faasbox serve`
(issue 11): 2,000 clients sending their headers a byte a second do not keep a normal request
from being answered within a second, and each is closed by the header timeout; a 50 MB header
is refused while the server's memory stays flat; a stalled body, an idle kept-alive
connection and connections over the caps are closed or refused."""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.memory import PeakRss, rss
from tests.support import EXAMPLES, RunningServer

HEADER_TIMEOUT = 3.0
PER_CLIENT = 250
SLOW_CLIENTS = 2000
# Loopback addresses the slow clients connect from (Linux routes all of 127.0.0.0/8 to lo):
# SLOW_CLIENTS / PER_CLIENT of them, each at the per-client cap.
SLOW_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 2 + SLOW_CLIENTS // PER_CLIENT)]
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SLOW_CLIENTS + 500:  # this test process holds the slow clients' sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SLOW_CLIENTS * 2), hard))
    running = RunningServer(
        [EXAMPLES / "hello"],
        tmp_path_factory.mktemp("data"),
        "--no-auth",
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--body-timeout",
        "2",
        "--keep-alive-timeout",
        "2",
        "--max-connections-per-client",
        str(PER_CLIENT),
    ).start()
    httpx.get(f"{running.url}/hello", timeout=30).raise_for_status()  # a warm worker
    yield running
    assert running.stop() == 0, "".join(running.output)


def address(server: RunningServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def connect(server: RunningServer, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(address(server))
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_slow_clients_do_not_stop_normal_requests_and_are_closed_on_time(
    server: RunningServer,
) -> None:
    head = b"GET /hello HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 64 + b"\r\n\r\n"
    clients: list[socket.socket] = []
    connected_at: dict[socket.socket, float] = {}
    for i in range(SLOW_CLIENTS):
        sock = connect(server, SLOW_ADDRESSES[i % len(SLOW_ADDRESSES)])
        connected_at[sock] = time.monotonic()
        sock.setblocking(False)
        clients.append(sock)
    opened = time.monotonic()
    stop = threading.Event()

    def one_byte_a_second() -> None:
        sent = 0
        while not stop.is_set() and sent < len(head):
            for sock in clients:
                with contextlib.suppress(OSError):  # closed by the server already
                    sock.send(head[sent : sent + 1])
            sent += 1
            stop.wait(1.0)

    sender = threading.Thread(target=one_byte_a_second, daemon=True)
    sender.start()
    try:
        # Normal requests, each on a new connection, while the slow ones trickle in (one
        # client for all: httpx.get would build an SSL context each time, 0.2 s when loaded).
        latencies = []
        with httpx.Client(headers={"connection": "close"}, timeout=10) as normal:
            for _ in range(5):
                started = time.monotonic()
                response = normal.get(f"{server.url}/hello")
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200
                stop.wait(0.3)
        assert max(latencies) < 1.0, latencies

        # Every slow client is answered 408 and closed, after the timeout and not before.
        selector = selectors.DefaultSelector()
        for sock in clients:
            selector.register(sock, selectors.EVENT_READ)
        answers: dict[socket.socket, bytes] = {}
        closed_at: dict[socket.socket, float] = {}
        deadline = opened + HEADER_TIMEOUT + 20
        while len(closed_at) < len(clients) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    answers[sock] = answers.get(sock, b"") + chunk
                else:
                    closed_at[sock] = time.monotonic()
                    selector.unregister(sock)
        assert len(closed_at) == len(clients), f"{len(clients) - len(closed_at)} still open"
        assert all(answers.get(s, b"").startswith(b"HTTP/1.1 408 ") for s in clients)
        # The server accepted each after its connect returned: none was closed early.
        assert all(closed_at[s] >= connected_at[s] + HEADER_TIMEOUT - 0.1 for s in clients)
    finally:
        stop.set()
        sender.join()
        for sock in clients:
            sock.close()
    assert server.alive()


def test_a_50_mb_header_is_refused_with_flat_memory(server: RunningServer) -> None:
    assert server.proc is not None
    baseline = rss(server.proc.pid)
    sock = connect(server)
    answer = b""
    with PeakRss(server.proc.pid) as memory:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: big\r\nX-Big: ")
        chunk = b"a" * MB
        try:
            for _ in range(50):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server, as it should be
        with contextlib.suppress(OSError):
            answer = read_until_closed(sock, 10)
    sock.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    grown = (memory.peak - baseline) / MB
    assert grown < 20, f"the server's RSS grew by {grown:.1f} MB"
    assert httpx.get(f"{server.url}/hello", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n", 431),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\n" + b"X-Many: aaaaaaaa\r\n" * 5000 + b"\r\n", 431),
    ],
)
def test_an_oversized_head_gets_its_status(
    server: RunningServer, request_head: bytes, status: int
) -> None:
    with connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request_head)
        answer = read_until_closed(sock, 10)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]


def test_a_connection_that_sends_nothing_is_closed_by_the_header_timeout(
    server: RunningServer,
) -> None:
    started = time.monotonic()
    with connect(server) as sock:
        answer = read_until_closed(sock, HEADER_TIMEOUT + 15)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started >= HEADER_TIMEOUT - 0.5


def test_a_stalled_body_is_disconnected(server: RunningServer) -> None:
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
        read_until_closed(sock, 20)
    assert 2 - 0.5 <= time.monotonic() - started < 20


def test_an_idle_kept_alive_connection_is_closed(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = time.monotonic()
        answer = read_until_closed(sock, 20)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert 2 - 0.5 <= time.monotonic() - answered < 20


def test_connections_over_the_per_client_cap_are_refused_at_once(server: RunningServer) -> None:
    source = "127.0.0.200"
    held = [connect(server, source) for _ in range(PER_CLIENT)]
    try:
        started = time.monotonic()
        with connect(server, source) as extra:
            answer = read_until_closed(extra, 10)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"Too many open connections from your address" in answer
        assert time.monotonic() - started < 2
        # Another address is served meanwhile.
        assert httpx.get(f"{server.url}/hello", timeout=10).status_code == 200
    finally:
        for sock in held:
            sock.close()


def test_connections_over_the_server_cap_are_refused_at_once(tmp_path: Path) -> None:
    running = RunningServer(
        [EXAMPLES / "hello"], tmp_path / "data", "--no-auth", "--max-connections", "20"
    ).start()
    held: list[socket.socket] = []
    try:
        # Each from its own address: the server's cap, not the per-client one.
        held = [connect(running, f"127.0.1.{n}") for n in range(1, 21)]
        started = time.monotonic()
        with connect(running, "127.0.1.100") as extra:
            answer = read_until_closed(extra, 10)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"too many open connections" in answer
        assert time.monotonic() - started < 2
    finally:
        for sock in held:
            sock.close()
        assert running.stop() == 0, "".join(running.output)
