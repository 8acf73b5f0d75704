"""The Runtime API worker, driven over its control socket as the server drives it, with real
runtime clients as the function's bootstrap: a bash curl loop (AWS's tutorial), awslambdaric
(vendored into the function's folder), and a small C program built here; and the wire itself
checked with raw requests."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faasbox.execution.process import protocol
from tests.support import SERVICES, wait_until

CLIENTS = SERVICES / "provided"
TIMEOUT = 30.0


class LogPipe:
    """The worker's fd 1 and 2, read on a thread, waited on by content."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._text = ""
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while chunk := os.read(self._fd, 65536):
            with self._changed:
                self._text += chunk.decode("utf-8", "replace")
                self._changed.notify_all()
        os.close(self._fd)

    @property
    def text(self) -> str:
        with self._changed:
            return self._text

    def wait_for(self, needle: str, timeout: float = TIMEOUT) -> str:
        with self._changed:
            if not self._changed.wait_for(lambda: needle in self._text, timeout):
                raise AssertionError(f"{needle!r} not in the log:\n{self._text}")
            return self._text


class Worker:
    """A Runtime API worker process, its control socket and its log pipe."""

    def __init__(self, code_dir: Path, handler: str, env: dict[str, str] | None = None) -> None:
        self.code_dir = code_dir
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_r, log_w = os.pipe()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faasbox.execution.process.runtime_api.worker",
                str(theirs.fileno()),
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=log_w,
            stderr=log_w,
            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"},
            start_new_session=True,
        )
        theirs.close()
        os.close(log_w)
        ours.settimeout(TIMEOUT)
        self.sock = ours
        self.log = LogPipe(log_r)
        self.handler = handler
        self.env = env or {}

    def boot(self) -> tuple[int, dict[str, Any]]:
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": self.handler,
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
            "AWS_REGION": "us-east-1",
            **self.env,
        }
        boot = {
            "handler": self.handler,
            "task_root": str(self.code_dir),
            "paths": [],
            "env": env,
            "function_name": "fn",
            "version": "$LATEST",
            "arn": "arn:aws:lambda:us-east-1:000000000000:function:fn",
            "memory_mb": 128,
            "log_group": "/aws/lambda/fn",
            "log_stream": "stream",
        }
        protocol.send_frame(self.sock, protocol.BOOT, boot)
        kind, header, _ = protocol.recv_frame(self.sock)
        return kind, header

    def boot_only(self) -> None:
        """BOOT with a bare environment, without waiting for the answer."""
        boot = {"env": {"PATH": "/usr/bin:/bin"}, "task_root": str(self.code_dir)}
        protocol.send_frame(self.sock, protocol.BOOT, boot)

    def send_invoke(self, event: Any, stream: bool = False) -> str:
        request_id = str(uuid.uuid4())
        header = {
            "request_id": request_id,
            "deadline_ms": int((time.time() + 60) * 1000),
            "invoked_arn": "arn:aws:lambda:us-east-1:000000000000:function:fn:live",
            "client_context": None,
            "identity": None,
            "stream": stream,
        }
        protocol.send_frame(self.sock, protocol.INVOKE, header, json.dumps(event).encode())
        return request_id

    def next_frame(self) -> tuple[int, dict[str, Any], bytes]:
        return protocol.recv_frame(self.sock)

    def invoke(self, event: Any, stream: bool = False) -> tuple[dict[str, Any], bytes, list[bytes]]:
        """One invocation: the RESULT header and body, and the chunks streamed before it."""
        self.send_invoke(event, stream)
        chunks = []
        while True:
            kind, header, body = self.next_frame()
            if kind == protocol.RESULT_CHUNK:
                chunks.append(body)
            else:
                assert kind == protocol.RESULT
                return header, body, chunks

    def exited(self) -> int:
        return self.proc.wait(timeout=TIMEOUT)

    def close(self) -> None:
        self.sock.close()  # SHUTDOWN
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def peaks_kb(pid: int) -> int:
    """VmHWM of a worker and of its direct children (its bootstrap), as /proc shows them."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        pids = [pid, *map(int, f.read().split())]
    total = 0
    for each in pids:
        with open(f"/proc/{each}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return total


def vendor(distribution: str, into: Path) -> None:
    """Copy an installed distribution's files into a function's folder, as `pip install
    --target` would have put them (offline: from this virtualenv)."""
    for file in importlib.metadata.distribution(distribution).files or ():
        name = str(file)
        if "__pycache__" in name or ".dist-info" in name or name.startswith(".."):
            continue
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(str(file.locate()), target)


def bash_code(tmp: Path) -> Path:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    shutil.copytree(CLIENTS / "bash", tmp / "bash")
    return tmp / "bash"


def ric_code(tmp: Path) -> Path:
    code = tmp / "ric"
    shutil.copytree(CLIENTS / "ric", code)
    for dist in ("awslambdaric", "simplejson", "snapshot-restore-py"):
        vendor(dist, code)
    return code


def c_code(tmp: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    code = tmp / "c"
    code.mkdir()
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(code / "bootstrap"), str(CLIENTS / "c" / "runtime.c")],
        check=True,
    )
    return code


CODE = {"bash": bash_code, "awslambdaric": ric_code, "c": c_code}
HANDLERS = {"bash": "function.handler", "awslambdaric": "app.handler", "c": "ignored"}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    workers: list[Worker] = []

    def start_worker(
        client: str, handler: str | None = None, env: dict[str, str] | None = None
    ) -> Worker:
        code = CODE[client](tmp_path)
        worker = Worker(code, handler or HANDLERS[client], env)
        workers.append(worker)
        return worker

    yield start_worker
    for worker in workers:
        worker.close()
        print(f"--- log of the worker for {worker.code_dir.name} ---\n{worker.log.text}")


@pytest.mark.parametrize("client", sorted(CODE))
def test_each_client_answers_invocations_on_a_warm_worker(start: Any, client: str) -> None:
    worker = start(client)
    kind, ready = worker.boot()
    assert kind == protocol.READY, ready
    assert ready["import_ms"] > 0
    for n in range(3):  # one INIT, then warm invocations
        header, body, chunks = worker.invoke({"n": n})
        assert header["ok"] is True, body
        assert chunks == []
        result = json.loads(body)
        assert result["echo"] == {"n": n}
        assert result["runtime"] == client
        assert header["duration_ms"] > 0
        # The worker's own peak and the bootstrap's (not the peak of whatever spawned it).
        assert abs(header["max_memory_kb"] - peaks_kb(worker.proc.pid)) < 4096
    assert worker.proc.poll() is None


def test_awslambdaric_sees_the_invocation_context(start: Any) -> None:
    worker = start("awslambdaric")
    assert worker.boot()[0] == protocol.READY
    request_id = worker.send_invoke({"hello": "world"})
    kind, header, body = worker.next_frame()
    assert kind == protocol.RESULT and header["ok"], body
    result = json.loads(body)
    assert result["request_id"] == request_id
    assert result["arn"].endswith("function:fn:live")
    assert result["remaining_ms_positive"] is True
    # The vendored copy ran, not the test's own.
    assert result["ric"].startswith(str(worker.code_dir))
    assert f"handling {request_id}" in worker.log.wait_for(f"handling {request_id}")


@pytest.mark.parametrize(
    ("client", "error_type", "message"),
    [
        ("bash", "Function.Failed", "the event asked to fail"),
        ("awslambdaric", "ValueError", "the event asked to fail"),
        ("c", "Custom.Failure", "asked to fail"),
    ],
)
def test_a_handler_error_fails_that_invocation_only(
    start: Any, client: str, error_type: str, message: str
) -> None:
    worker = start(client)
    assert worker.boot()[0] == protocol.READY
    header, body, _ = worker.invoke({"fail": True})
    assert header["ok"] is False
    error = json.loads(body)
    assert error["errorType"] == error_type
    assert message in error["errorMessage"]
    header, body, _ = worker.invoke({"after": "error"})
    assert header["ok"] is True
    assert json.loads(body)["echo"] == {"after": "error"}


@pytest.mark.parametrize(
    ("client", "handler", "env", "error_type"),
    [
        ("bash", "missing.handler", {}, "Runtime.NoSuchHandler"),
        ("awslambdaric", "missing.handler", {}, "Runtime.ImportModuleError"),
        ("c", "ignored", {"FAIL_INIT": "1"}, "Custom.InitFailed"),
    ],
)
def test_an_init_error_is_reported_and_the_worker_exits(
    start: Any, client: str, handler: str, env: dict[str, str], error_type: str
) -> None:
    worker = start(client, handler, env)
    kind, header = worker.boot()
    assert kind == protocol.INIT_ERROR
    assert header["error"]["errorType"] == error_type
    assert header["error"]["errorMessage"]
    assert worker.exited() != 0


def test_a_streamed_response_arrives_as_it_is_written(start: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    worker = start("c", env={"STREAM_GATE": str(gate)})
    assert worker.boot()[0] == protocol.READY
    worker.send_invoke({"stream": True, "gated": True}, stream=True)
    # The first chunk comes while the runtime is still blocked on the gate...
    kind, _, first = worker.next_frame()
    assert (kind, first) == (protocol.RESULT_CHUNK, b"part 1\n")
    with open(gate, "wb") as g:
        g.write(b"x")  # ...and the rest once it is let go.
    rest = []
    while (frame := worker.next_frame())[0] == protocol.RESULT_CHUNK:
        rest.append(frame[2])
    kind, header, body = frame
    assert kind == protocol.RESULT
    assert header["ok"] is True and header["streamed"] is True
    assert body == b""
    assert b"".join(rest) == b"part 2\npart 3\n"


def test_a_streamed_response_is_buffered_when_the_caller_does_not_stream(start: Any) -> None:
    worker = start("c")
    assert worker.boot()[0] == protocol.READY
    header, body, chunks = worker.invoke({"stream": True}, stream=False)
    assert header["ok"] is True and "streamed" not in header
    assert chunks == []
    assert body == b"part 1\npart 2\npart 3\n"


def test_a_stream_ended_with_error_trailers_is_an_error(start: Any) -> None:
    worker = start("c")
    assert worker.boot()[0] == protocol.READY
    header, body, chunks = worker.invoke({"stream": True, "stream_error": True}, stream=True)
    assert b"".join(chunks) == b"part 1\npart 2\n"
    assert header["ok"] is False
    assert json.loads(body) == {
        "errorMessage": "failed mid-stream",
        "errorType": "Custom.StreamFailed",
    }
    header, body, _ = worker.invoke({"after": "stream"})
    assert header["ok"] is True


def test_a_bootstrap_that_exits_mid_invocation_takes_the_worker_with_its_status(
    start: Any,
) -> None:
    worker = start("c")
    assert worker.boot()[0] == protocol.READY
    assert worker.invoke({"before": 1})[0]["ok"]
    worker.send_invoke({"exit": True})
    with pytest.raises(protocol.ProtocolError):
        worker.next_frame()  # the socket closes: no RESULT
    assert worker.exited() == 5  # the server reports it as Runtime.ExitError


@pytest.mark.parametrize(("signal_name", "number"), [("KILL", 9), ("SEGV", 11)])
def test_a_bootstrap_killed_by_a_signal_is_mirrored_by_the_worker(
    tmp_path: Path, signal_name: str, number: int
) -> None:
    code = write_bootstrap(tmp_path / "fn", f"kill -{signal_name} $$\n")
    worker = Worker(code, "x")
    try:
        with pytest.raises(protocol.ProtocolError):
            worker.boot()
        assert worker.exited() == -number  # the server says "signal: killed" / "segmentation fault"
    finally:
        worker.close()


def write_bootstrap(code: Path, script: str) -> Path:
    code.mkdir(exist_ok=True)
    path = code / "bootstrap"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return code


def test_a_bootstrap_that_exits_during_init_fails_init(tmp_path: Path) -> None:
    code = write_bootstrap(tmp_path / "fn", "echo starting up >&2\nexit 2\n")
    worker = Worker(code, "x")
    try:
        with pytest.raises(protocol.ProtocolError):
            worker.boot()
        assert worker.exited() == 2
        assert "starting up" in worker.log.wait_for("starting up")
    finally:
        worker.close()


@pytest.mark.parametrize("mode", ["missing", "not executable"])
def test_a_missing_bootstrap_is_an_invalid_entrypoint(tmp_path: Path, mode: str) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    if mode == "not executable":
        (code / "bootstrap").write_text("#!/bin/sh\n")
    worker = Worker(code, "x")
    try:
        kind, header = worker.boot()
        assert kind == protocol.INIT_ERROR
        assert header["error"]["errorType"] == "Runtime.InvalidEntrypoint"
        expected = "permission denied" if mode == "not executable" else "Couldn't find valid"
        assert expected in header["error"]["errorMessage"]
        assert worker.exited() == 1
    finally:
        worker.close()


def test_the_bootstrap_dies_with_its_worker(tmp_path: Path) -> None:
    code = write_bootstrap(tmp_path / "fn", 'echo "pid=$$"\nexec sleep 600\n')
    worker = Worker(code, "x")
    try:
        worker.boot_only()
        text = worker.log.wait_for("pid=")
        pid = int(text.split("pid=")[1].split()[0])
        worker.proc.kill()  # as the server kills a worker that timed out
        worker.proc.wait()
        wait_until(lambda: not _alive(pid), TIMEOUT, "the bootstrap to die with its worker")
    finally:
        worker.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


# --- the wire, with the test as the runtime ---


class Raw:
    """An HTTP/1.1 client on one socket, for requests no real client would send."""

    def __init__(self, address: str) -> None:
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._more()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def request(
        self, method: str, path: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        self.send(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        return self.response()

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


API = "/2018-06-01/runtime"


@pytest.fixture
def runtime_api(tmp_path: Path) -> Iterator[tuple[Worker, str]]:
    """A worker whose bootstrap only tells the test where the API is: the test is the runtime."""
    code = write_bootstrap(tmp_path / "fn", 'echo "api=$AWS_LAMBDA_RUNTIME_API"\nexec sleep 600\n')
    worker = Worker(code, "x")
    worker.boot_only()
    address = worker.log.wait_for("api=").split("api=")[1].split()[0]
    yield worker, address
    worker.close()


def test_next_response_and_errors_on_one_kept_alive_connection(
    runtime_api: tuple[Worker, str],
) -> None:
    worker, address = runtime_api
    client = Raw(address)
    client.send(f"GET {API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    kind, _, _ = worker.next_frame()
    assert kind == protocol.READY  # INIT ends at the first /next
    request_id = worker.send_invoke({"k": "v"})
    status, headers, body = client.response()
    assert status == 200
    assert json.loads(body) == {"k": "v"}
    assert headers["lambda-runtime-aws-request-id"] == request_id
    assert int(headers["lambda-runtime-deadline-ms"]) > time.time() * 1000
    assert headers["lambda-runtime-invoked-function-arn"].endswith(":fn:live")
    assert headers["lambda-runtime-trace-id"].startswith("Root=1-")

    # /init/error once INIT is over; a request id that is not the invocation's (refusals
    # close their connection)
    assert Raw(address).request("POST", f"{API}/init/error", b"{}")[0] == 403
    status, _, body = Raw(address).request("POST", f"{API}/invocation/nope/response", b"{}")
    assert (status, json.loads(body)["errorType"]) == (400, "InvalidRequestID")

    # Expect: 100-continue, then the response
    client.send(
        f"POST {API}/invocation/{request_id}/response HTTP/1.1\r\nHost: x\r\n"
        "Expect: 100-continue\r\nContent-Length: 11\r\n\r\n".encode()
    )
    assert client.response()[0] == 100
    client.send(b'{"ok":true}')
    status, _, body = client.response()
    assert (status, json.loads(body)) == (202, {"status": "OK"})
    kind, header, result = worker.next_frame()
    assert (kind, header["ok"], result) == (protocol.RESULT, True, b'{"ok":true}')

    # answering twice is refused
    again = Raw(address)
    status, _, body = again.request("POST", f"{API}/invocation/{request_id}/response", b"{}")
    assert (status, json.loads(body)["errorType"]) == (403, "InvalidStateTransition")

    # the next invocation, on the same connection; answered with /error
    client.send(f"GET {API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    second = worker.send_invoke({})
    assert client.response()[1]["lambda-runtime-aws-request-id"] == second
    status, _, _ = client.request(
        "POST",
        f"{API}/invocation/{second}/error",
        b"not json",
        "Lambda-Runtime-Function-Error-Type: Custom.Oops\r\n",
    )
    assert status == 202
    kind, header, result = worker.next_frame()
    assert header["ok"] is False
    assert json.loads(result) == {"errorMessage": "not json", "errorType": "Custom.Oops"}


def test_a_response_over_6_mb_is_refused_and_fails_the_invocation(
    runtime_api: tuple[Worker, str],
) -> None:
    worker, address = runtime_api
    client = Raw(address)
    client.send(f"GET {API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert worker.next_frame()[0] == protocol.READY
    request_id = worker.send_invoke({})
    client.response()
    big = 6 * 1024 * 1024 + 1
    status, _, body = client.request("POST", f"{API}/invocation/{request_id}/response", b"x" * big)
    assert (status, json.loads(body)["errorType"]) == (413, "RequestEntityTooLarge")
    kind, header, result = worker.next_frame()
    assert kind == protocol.RESULT
    assert header["ok"] is False
    assert json.loads(result)["errorType"] == "Function.ResponseSizeTooLarge"
    # An error document over the limit fails the invocation the same way.
    client = Raw(address)
    client.send(f"GET {API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    request_id = worker.send_invoke({})
    client.response()
    status, _, _ = client.request("POST", f"{API}/invocation/{request_id}/error", b"e" * big)
    assert status == 413
    _, header, result = worker.next_frame()
    assert header["ok"] is False
    assert json.loads(result)["errorType"] == "Function.ResponseSizeTooLarge"
    # The same, streamed in chunks (the size is not known up front).
    client = Raw(address)
    client.send(f"GET {API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    request_id = worker.send_invoke({})
    client.response()
    client.send(
        f"POST {API}/invocation/{request_id}/response HTTP/1.1\r\nHost: x\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    piece = b"y" * (1 << 20)
    for _ in range(8):
        client.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
    assert client.response()[0] == 413
    _, header, result = worker.next_frame()
    assert json.loads(result)["errorType"] == "Function.ResponseSizeTooLarge"
    assert client.closed_by_peer()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"hello\r\n\r\n", 400),
        (b"GET /2018-06-01/runtime/invocation/next HTTP/2.0\r\n\r\n", 505),
        (b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"POST /2018-06-01/runtime/invocation/next HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        (
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * (2 << 20) + b"\r\n\r\n", 431),
    ],
)
def test_malformed_requests_get_a_clear_4xx_and_init_goes_on(
    runtime_api: tuple[Worker, str], request_bytes: bytes, status: int
) -> None:
    worker, address = runtime_api
    client = Raw(address)
    with contextlib.suppress(OSError):  # the worker may stop reading an oversized head
        client.send(request_bytes)
    got, _, body = client.response()
    assert got == status
    assert json.loads(body)["errorMessage"]
    assert client.closed_by_peer()
    # The runtime can still finish INIT and serve.
    ok = Raw(address)
    ok.send(f"GET {API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert worker.next_frame()[0] == protocol.READY
