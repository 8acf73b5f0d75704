"""HTTP/1.1 on one non-blocking socket, as much of it as the Runtime API needs.

Requests are parsed incrementally into events (a head, pieces of body, an end with its
trailers), so a streamed response can be forwarded while it arrives. Bodies are framed by
Content-Length or chunked transfer coding; heads and trailers are bounded, bodies by a limit the
caller sets after seeing the head. Keep-alive, `Expect: 100-continue`, no pipelining (a second
request on a connection is read only once the first has been answered).

Why not http.server: it costs a thread per connection and a few hundred microseconds per
request, and it cannot hand a chunked body over piece by piece. This runs inside a function's
jail, so it imports only the stdlib.
"""

from __future__ import annotations

import json
import re
import socket
from typing import NamedTuple

# Heads are small, but awslambdaric sends an X-Ray error cause of up to 1 MiB as a header.
MAX_HEAD = (1 << 20) + (64 << 10)
MAX_CHUNK_LINE = 4096
# After a refusal, input is read and dropped until the client closes (up to this much), so
# the client reads the error instead of a reset for the bytes it had in flight.
LINGER_LIMIT = 64 << 20
RECV_SIZE = 1 << 16

REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class HttpError(Exception):
    """A request this server refuses; answered with `status` and the connection closed."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


# Named tuples, not dataclasses: importing dataclasses costs a cold start ~10 ms.
class Request(NamedTuple):
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    keep_alive: bool
    content_length: int | None
    chunked: bool
    expect_continue: bool


class Data(NamedTuple):
    """A piece of the current request's body."""

    data: bytes


class End(NamedTuple):
    """The current request's body is complete."""

    trailers: dict[str, str]


Event = Request | Data | End


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _parse_fields(lines: list[str], what: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        if line[:1] in (" ", "\t"):
            raise HttpError(400, "InvalidRequest", f"obsolete line folding in {what}")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise HttpError(400, "InvalidRequest", f"malformed {what} line {line[:80]!r}")
        key = name.lower()
        value = value.strip(" \t")
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return fields


def parse_head(head: bytes) -> Request:
    """The request line and headers (`head` without its final CRLF CRLF)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        raise HttpError(400, "InvalidRequest", "undecodable request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith("/"):
        raise HttpError(400, "InvalidRequest", f"malformed request line {lines[0][:80]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            raise HttpError(505, "InvalidRequest", f"{version} is not supported; use HTTP/1.1")
        raise HttpError(400, "InvalidRequest", f"malformed request line {lines[0][:80]!r}")
    headers = _parse_fields(lines[1:], "header")
    length: int | None = None
    if "content-length" in headers:
        values = {v.strip() for v in headers["content-length"].split(",")}
        value = values.pop() if len(values) == 1 else ""
        if not value.isdigit() or len(value) > 18:
            raise HttpError(400, "InvalidRequest", "invalid Content-Length")
        length = int(value)
    chunked = False
    if "transfer-encoding" in headers:
        if headers["transfer-encoding"].strip().lower() != "chunked":
            raise HttpError(501, "InvalidRequest", "only chunked transfer coding is supported")
        if length is not None:
            raise HttpError(400, "InvalidRequest", "both Content-Length and Transfer-Encoding")
        chunked = True
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    return Request(
        method=method.upper(),
        path=target.partition("?")[0],
        headers=headers,
        keep_alive=keep_alive,
        content_length=length,
        chunked=chunked,
        expect_continue=headers.get("expect", "").lower() == "100-continue",
    )


def error_body(error_type: str, message: str) -> bytes:
    """The Runtime API's error document."""
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class Connection:
    """One client connection: a parser of requests and a buffer of responses."""

    _HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _ANSWER = range(7)

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.request: Request | None = None
        self.max_body = 0  # set by the caller once it has seen the head
        self.route: object = None  # what the caller made of the current request
        self.closed = False
        self._in = bytearray()
        self._out = bytearray()
        self._state = self._HEAD
        self._remaining = 0  # of the body (Content-Length) or of the current chunk
        self._body_seen = 0
        self._close_after = False
        self._linger = False
        self._dropped = 0
        self._eof = False

    @property
    def wants_write(self) -> bool:
        return bool(self._out)

    @property
    def awaiting_answer(self) -> bool:
        return self._state == self._ANSWER

    def receive(self) -> bool:
        """Read all the socket has now; False once the peer has closed its side."""
        while True:
            try:
                chunk = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                return True
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                return False
            if self._linger:
                self._dropped += len(chunk)
                if self._dropped > LINGER_LIMIT:
                    self.close()
                    return False
                continue
            self._in += chunk
            if len(chunk) < RECV_SIZE:
                return True

    def events(self) -> list[Event]:
        """What the buffered input now makes of the current request, up to its head or its end
        (raises HttpError)."""
        out: list[Event] = []
        while True:
            event = self._next_event()
            if event is None:
                return out
            out.append(event)
            if not isinstance(event, Data):  # the caller acts on a head before its body
                return out

    def _next_event(self) -> Event | None:
        state = self._state
        if state == self._HEAD:
            return self._read_head()
        if state == self._BODY:
            return self._read_body()
        if state in (self._CHUNK_SIZE, self._CHUNK_DATA, self._CHUNK_END, self._TRAILERS):
            return self._read_chunked()
        return None  # _ANSWER: waiting for the caller to answer

    def _read_head(self) -> Request | None:
        while self._in.startswith(b"\r\n"):  # tolerated before a request line (RFC 9112)
            del self._in[:2]
        end = self._in.find(b"\r\n\r\n")
        if end < 0:
            if len(self._in) > MAX_HEAD:
                raise HttpError(431, "InvalidRequest", "request head too large")
            if self._eof and self._in:
                raise HttpError(400, "InvalidRequest", "connection closed mid-request")
            return None
        if end > MAX_HEAD:
            raise HttpError(431, "InvalidRequest", "request head too large")
        request = parse_head(bytes(self._in[:end]))
        del self._in[: end + 4]
        self.request = request
        self._body_seen = 0
        if request.chunked:
            self._state = self._CHUNK_SIZE
        else:
            self._remaining = request.content_length or 0
            self._state = self._BODY
        return request

    def _count(self, n: int) -> None:
        self._body_seen += n
        if self._body_seen > self.max_body:
            raise HttpError(413, "RequestEntityTooLarge", "request body over the limit")

    def _read_body(self) -> Event | None:
        if self._remaining == 0:
            self._state = self._ANSWER
            return End({})
        if not self._in:
            if self._eof:
                raise HttpError(400, "InvalidRequest", "connection closed mid-body")
            return None
        take = bytes(self._in[: self._remaining])
        del self._in[: len(take)]
        self._remaining -= len(take)
        self._count(len(take))
        return Data(take)

    def _read_chunked(self) -> Event | None:
        while True:
            if self._state == self._CHUNK_SIZE:
                line = self._line()
                if line is None:
                    return None
                size_text = line.split(b";", 1)[0].strip()
                try:
                    if not size_text or len(size_text) > 16:
                        raise ValueError
                    size = int(size_text, 16)
                except ValueError:
                    raise HttpError(400, "InvalidRequest", "malformed chunk size") from None
                if size == 0:
                    self._state = self._TRAILERS
                    continue
                self._count(size)
                self._remaining = size
                self._state = self._CHUNK_DATA
            elif self._state == self._CHUNK_DATA:
                if not self._in:
                    self._need_more()
                    return None
                take = bytes(self._in[: self._remaining])
                del self._in[: len(take)]
                self._remaining -= len(take)
                if self._remaining == 0:
                    self._state = self._CHUNK_END
                return Data(take)
            elif self._state == self._CHUNK_END:
                if len(self._in) < 2:
                    self._need_more()
                    return None
                if self._in[:2] != b"\r\n":
                    raise HttpError(400, "InvalidRequest", "chunk not followed by CRLF")
                del self._in[:2]
                self._state = self._CHUNK_SIZE
            else:  # trailers: header lines up to an empty line
                end = self._in.find(b"\r\n\r\n") if not self._in.startswith(b"\r\n") else -2
                if end == -1:
                    if len(self._in) > MAX_HEAD:
                        raise HttpError(431, "InvalidRequest", "trailers too large")
                    self._need_more()
                    return None
                if end == -2:
                    del self._in[:2]
                    trailers: dict[str, str] = {}
                else:
                    lines = bytes(self._in[:end]).decode("latin-1").split("\r\n")
                    del self._in[: end + 4]
                    trailers = _parse_fields(lines, "trailer")
                self._state = self._ANSWER
                return End(trailers)

    def _line(self) -> bytes | None:
        end = self._in.find(b"\r\n", 0, MAX_CHUNK_LINE)
        if end < 0:
            if len(self._in) >= MAX_CHUNK_LINE:
                raise HttpError(400, "InvalidRequest", "chunk size line too long")
            self._need_more()
            return None
        line = bytes(self._in[:end])
        del self._in[: end + 2]
        return line

    def _need_more(self) -> None:
        if self._eof:
            raise HttpError(400, "InvalidRequest", "connection closed mid-body")

    def send_continue(self) -> None:
        self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def answer(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]] | None = None,
        close: bool = False,
    ) -> None:
        """Respond to the current request; the connection then reads the next one."""
        close = close or self.request is None or not self.request.keep_alive
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
        head += [f"{name}: {value}" for name, value in headers or ()]
        head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(body)}")
        if close:
            head.append("Connection: close")
            self._close_after = True
        self._write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.request = None
        self.route = None
        self._state = self._HEAD

    def refuse(self, error: HttpError) -> None:
        """Answer a request that cannot be read on, and close the connection."""
        self._in.clear()
        self._linger = True
        self.answer(error.status, error_body(error.error_type, error.message), close=True)
        self._state = self._ANSWER  # parse nothing more

    def _write(self, data: bytes) -> None:
        if self.closed:
            return
        if not self._out:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close()
                return
            data = data[sent:]
        self._out += data
        if not self._out and self._close_after:
            self._finish()

    def flush(self) -> None:
        """Send more of what is buffered (the socket was writable)."""
        try:
            sent = self.sock.send(self._out)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        del self._out[:sent]
        if not self._out and self._close_after:
            self._finish()

    def _finish(self) -> None:
        """The last response is out: close, or (after a refusal) half-close and drain."""
        if not self._linger:
            self.close()
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._out.clear()
            self.sock.close()
