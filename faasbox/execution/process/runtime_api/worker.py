"""The Runtime API worker: one execution environment for a `provided` function.

Started as `python -m faasbox.execution.process.runtime_api.worker CONTROL_FD` with fd 1 and 2
on the server's log pipe, it speaks faasbox's frames on CONTROL_FD and Lambda's Runtime API
(2018-06-01) on 127.0.0.1 to the function's `bootstrap`, which it executes on BOOT:

    BOOT                  -> start the API on a free port, exec bootstrap with
                             AWS_LAMBDA_RUNTIME_API and the function's environment
    first GET /next       -> READY (INIT is over); the request waits for an invocation
    POST /init/error      -> INIT_ERROR; the worker exits
    INVOKE                -> the response to the waiting GET /next
    POST /{id}/response   -> RESULT ok (streaming mode: RESULT_CHUNKs, then RESULT)
    POST /{id}/error      -> RESULT error
    bootstrap exits       -> the worker exits with the bootstrap's status, so the server fails
                             INIT, or the invocation in flight, with Runtime.ExitError
    control socket closed -> the bootstrap is killed; the worker exits

One thread, one selector: a warm invocation is a frame in, an HTTP response out, an HTTP
request in and a frame out. Stdlib only: it runs inside the function's jail.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

from faasbox.execution.process import jail, protocol
from faasbox.execution.process.runtime_api.bootstrap import (
    Bootstrap,
    EntrypointError,
    PeakMemory,
    exit_like,
    find_bootstrap,
)
from faasbox.execution.process.runtime_api.endpoints import (
    ACCEPTED,
    ERROR_BODY,
    ERROR_TYPE,
    PAYLOAD_LIMIT,
    STREAM_LIMIT,
    Invocation,
    Route,
    error_document,
    next_headers,
    route_of,
)
from faasbox.execution.process.runtime_api.http import (
    Connection,
    Data,
    End,
    HttpError,
    Request,
)


def _tcp_address(ip: str, port: int) -> str:
    # As /proc/net/tcp prints it: the address's bytes as a native integer, then the port.
    return f"{struct.unpack('=I', socket.inet_aton(ip))[0]:08X}:{port:04X}"


def peer_uid(peer: tuple[str, int], port: int) -> int | None:
    """The uid owning the loopback TCP socket `peer` that connected to our `port`, from the
    kernel's socket table (SO_PEERCRED is for Unix sockets only); None if it is not there."""
    entry = f" {_tcp_address(peer[0], peer[1])} {_tcp_address('127.0.0.1', port)} ".encode()
    try:
        with open("/proc/net/tcp", "rb") as f:
            table = f.read()
    except OSError:
        return None
    at = table.find(entry)
    if at < 0:
        return None
    # local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
    fields = table[at : table.find(b"\n", at)].split()
    try:
        return int(fields[6])
    except (IndexError, ValueError):
        return None


class RuntimeApiWorker:
    def __init__(self, ctrl: socket.socket, boot: dict[str, Any]) -> None:
        self.ctrl = ctrl
        self.boot = boot
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.port = int(self.listener.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        # In a jail, only this function's own processes (its uid) may speak to the API.
        self.owner = os.getuid() if boot.get("jail") else None
        self.bootstrap: Bootstrap | None = None
        self.ready = False
        self.started = 0.0
        self.boot_ms = 0.0
        self.waiting: list[Connection] = []  # GET /next requests without an invocation yet
        self.queued: Invocation | None = None  # INVOKEd, not yet handed to the runtime
        self.current: Invocation | None = None  # handed to the runtime, not yet answered
        self.answered = ""  # the last request id answered
        self._frames = bytearray()
        self._own_peak = PeakMemory("self")

    # --- start and the loop ---

    def start(self, boot_ms: float) -> None:
        task_root = self.boot["task_root"]
        env = dict(self.boot["env"])
        env["AWS_LAMBDA_RUNTIME_API"] = self.address
        # What Lambda's provided runtimes add: layers' programs and libraries, the code's lib/.
        path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["PATH"] = path if "/opt/bin" in path.split(":") else f"{path}:/opt/bin"
        env.setdefault("LD_LIBRARY_PATH", f"{task_root}:{task_root}/lib:/opt/lib")
        self.boot_ms = boot_ms
        self.started = time.perf_counter()
        try:
            opt = self.boot.get("opt", "/opt")
            self.bootstrap = Bootstrap(find_bootstrap(task_root, opt), task_root, env)
        except EntrypointError as e:
            error = {"errorType": "Runtime.InvalidEntrypoint", "errorMessage": str(e)}
            os.write(2, f"Error: {e}\nRuntime.InvalidEntrypoint\n".encode())
            protocol.send_frame(self.ctrl, protocol.INIT_ERROR, {"error": error})
            os._exit(1)
        self.selector.register(self.ctrl, selectors.EVENT_READ, self._on_control)
        self.selector.register(self.listener, selectors.EVENT_READ, self._on_accept)
        self.selector.register(self.bootstrap.pidfd, selectors.EVENT_READ, self._on_exit)

    def run(self) -> NoReturn:
        while True:
            for key, mask in self.selector.select():
                key.data(mask)

    def _stop(self, status: int) -> NoReturn:
        if self.bootstrap is not None:
            self.bootstrap.kill()
        os._exit(status)

    # --- the server's side ---

    def _on_control(self, _mask: int) -> None:
        chunk = self.ctrl.recv(1 << 18)
        if not chunk:
            self._stop(0)  # SHUTDOWN
        self._frames += chunk
        prefix = protocol.PREFIX.size
        while len(self._frames) >= prefix:
            kind, head_len, body_len = protocol.decode_header(bytes(self._frames[:prefix]))
            end = prefix + head_len + body_len
            if len(self._frames) < end:
                return
            header = json.loads(self._frames[prefix : prefix + head_len]) if head_len else {}
            body = bytes(self._frames[prefix + head_len : end])
            del self._frames[:end]
            if kind == protocol.INVOKE:
                # An Invoke without a payload is the event {} (as Lambda gives it runtimes).
                self.queued = Invocation(str(header["request_id"]), header, body or b"{}")
                self._deliver()

    def _max_memory_kb(self) -> int:
        """The worker's peak and the bootstrap's: both count against the memory limit."""
        own = self._own_peak.read()
        return own + (self.bootstrap.peak_memory_kb() if self.bootstrap else 0)

    def _send_result(self, invocation: Invocation, ok: bool, body: bytes) -> None:
        header: dict[str, Any] = {
            "ok": ok,
            "duration_ms": (time.perf_counter() - invocation.started) * 1000,
            "max_memory_kb": self._max_memory_kb(),
        }
        if invocation.streaming and invocation.header.get("stream"):
            header["streamed"] = True
        protocol.send_frame(self.ctrl, protocol.RESULT, header, body)
        self.answered = invocation.request_id
        self.current = None

    def _fail(self, invocation: Invocation, error: dict[str, Any]) -> None:
        self._send_result(invocation, False, json.dumps(error).encode())

    # --- the runtime's side ---

    def _on_accept(self, _mask: int) -> None:
        try:
            sock, peer = self.listener.accept()
        except BlockingIOError:
            return
        if self.owner is not None and peer_uid(peer, self.port) != self.owner:
            # Another function's process (loopback is shared unless `network: none`).
            sock.close()
            return
        # A 100 Continue and its final response are two writes; do not let Nagle hold one.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock)
        self.selector.register(sock, selectors.EVENT_READ, self._conn_handler(conn))

    def _conn_handler(self, conn: Connection) -> Callable[[int], None]:
        def handle(mask: int) -> None:
            if mask & selectors.EVENT_WRITE:
                conn.flush()
            if mask & selectors.EVENT_READ and not conn.closed:
                open_ = conn.receive()
                self._process(conn)
                if not open_:
                    self._drop(conn)
            self._watch(conn)

        return handle

    def _watch(self, conn: Connection) -> None:
        if conn.closed:
            self._drop(conn)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.wants_write else 0)
        if self.selector.get_key(conn.sock).events != events:
            self.selector.modify(conn.sock, events, self.selector.get_key(conn.sock).data)

    def _drop(self, conn: Connection) -> None:
        if conn in self.waiting:
            self.waiting.remove(conn)
        with contextlib.suppress(KeyError, ValueError):  # dropped already
            self.selector.unregister(conn.sock)
        conn.close()

    def _process(self, conn: Connection) -> None:
        """Act on every complete part of the requests buffered on `conn`."""
        while not conn.closed and not conn.awaiting_answer:
            try:
                events = conn.events()
                if not events:
                    return
                for event in events:
                    if isinstance(event, Request):
                        self._on_head(conn, event)
                    elif isinstance(event, Data):
                        self._on_data(conn, event.data)
                    else:
                        self._on_end(conn, event)
            except HttpError as e:
                self._refuse(conn, e)
                return

    def _refuse(self, conn: Connection, error: HttpError) -> None:
        route = conn.route
        if isinstance(route, Route) and route.invocation is not None:
            invocation = route.invocation
            invocation.answering = False
            if error.status == 413 and route.kind in ("response", "error"):
                limit = STREAM_LIMIT if route.forward else PAYLOAD_LIMIT
                self._fail(
                    invocation,
                    {
                        "errorMessage": "Response payload size exceeded maximum allowed "
                        f"payload size ({limit} bytes).",
                        "errorType": "Function.ResponseSizeTooLarge",
                    },
                )
        if conn in self.waiting:
            self.waiting.remove(conn)
        conn.refuse(error)

    def _on_head(self, conn: Connection, request: Request) -> None:
        route, limit = route_of(request, self.ready, self.current, self.answered)
        if route.invocation is not None:
            route.invocation.answering = True
            route.invocation.streaming = route.streaming
        conn.route, conn.max_body = route, limit
        if request.content_length is not None and request.content_length > limit:
            raise HttpError(413, "RequestEntityTooLarge", f"the body is over {limit} bytes")
        if request.expect_continue:
            conn.send_continue()

    def _on_data(self, conn: Connection, data: bytes) -> None:
        route = conn.route
        assert isinstance(route, Route)
        if route.forward:
            protocol.send_frame(self.ctrl, protocol.RESULT_CHUNK, {}, data)
        else:
            route.body += data

    def _on_end(self, conn: Connection, end: End) -> None:
        route = conn.route
        assert isinstance(route, Route) and conn.request is not None
        headers = conn.request.headers
        if route.kind == "next":
            self._on_next(conn)
            return
        if route.kind == "init_error":
            error = error_document(bytes(route.body), headers.get(ERROR_TYPE))
            protocol.send_frame(self.ctrl, protocol.INIT_ERROR, {"error": error})
            conn.answer(202, ACCEPTED, close=True)
            self._stop(1)  # as Lambda does: the environment is gone after a failed INIT
        invocation = route.invocation
        assert invocation is not None
        if route.kind == "error":
            self._fail(invocation, error_document(bytes(route.body), headers.get(ERROR_TYPE)))
        elif end.trailers.get(ERROR_TYPE):
            raw = end.trailers.get(ERROR_BODY, "")
            try:
                detail = base64.b64decode(raw, validate=True)
            except ValueError:
                detail = raw.encode()
            self._fail(invocation, error_document(detail, end.trailers[ERROR_TYPE]))
        else:
            self._send_result(invocation, True, b"" if route.forward else bytes(route.body))
        conn.answer(202, ACCEPTED)

    def _on_next(self, conn: Connection) -> None:
        if not self.ready:
            self.ready = True
            init_ms = (time.perf_counter() - self.started) * 1000
            protocol.send_frame(
                self.ctrl,
                protocol.READY,
                {
                    "boot_ms": self.boot_ms,
                    "import_ms": init_ms,
                    "max_memory_kb": self._max_memory_kb(),
                    "packages": [],
                },
            )
        self.waiting.append(conn)
        self._deliver()

    def _deliver(self) -> None:
        """Hand the queued invocation to a waiting GET /next."""
        while self.queued is not None and self.current is None and self.waiting:
            conn = self.waiting.pop(0)
            if conn.closed:
                continue
            invocation, self.queued = self.queued, None
            headers = next_headers(invocation, self.boot.get("arn", ""))
            self.current = invocation
            invocation.started = time.perf_counter()
            conn.answer(200, invocation.event, headers)
            self._watch(conn)
            self._process(conn)  # anything the runtime sent after its GET

    def _on_exit(self, _mask: int) -> None:
        assert self.bootstrap is not None
        self.selector.unregister(self.bootstrap.pidfd)
        returncode = self.bootstrap.reap()
        # What the runtime sent before it exited is in its sockets: act on it first (a
        # runtime that answers and exits has answered).
        for key in list(self.selector.get_map().values()):
            if key.fileobj not in (self.ctrl, self.listener):
                key.data(selectors.EVENT_READ)
        exit_like(returncode)


def serve(ctrl: socket.socket, boot: dict[str, Any] | None = None) -> NoReturn:
    """Serve `ctrl` until the server closes it; `boot`: BOOT, when a zygote read it."""
    if boot is None:
        kind, boot, _ = protocol.recv_frame(ctrl)
        if kind != protocol.BOOT:
            raise protocol.ProtocolError(f"expected BOOT, got frame kind {kind}")
    started = time.perf_counter()
    if boot.get("jail"):
        # As the Python worker: the bootstrap, started after this, inherits all of it.
        try:
            jail.enter(boot["jail"])
        except OSError as e:  # never run a function outside the jail it was promised
            os.write(2, f"faasbox: cannot enter the jail: {e}\n".encode())
            os._exit(71)
    elif boot.get("tmp_dir"):
        needed = [boot["task_root"], *boot.get("paths", []), sys.prefix, __file__]
        jail.private_tmp(boot["tmp_dir"], needed)
    worker = RuntimeApiWorker(ctrl, boot)
    worker.start((time.perf_counter() - started) * 1000)
    worker.run()


def main() -> None:
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
