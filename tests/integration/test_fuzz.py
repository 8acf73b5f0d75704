"""Fuzzing a real server with malformed input (hypothesis): API Gateway routes, the Invoke API,
the Lambda control plane, the management API, SigV4 verification and raw HTTP.

Whatever comes in, faasbox must answer 4xx (or, through an API Gateway route, the function's
own answer or API Gateway's documented `502 {"message": "Internal server error"}`), never a 5xx
of its own, never a traceback in an error body, within a few seconds, and stay up.

What this fuzzing found (fixed since) is kept at the end as regression tests, one minimal
reproduction each.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import stat
import string
import time
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from faasbox.gateway.edge_limits import EdgeLimits
from faasbox.registry.access_keys import Credentials
from tests.support import EXAMPLES, RunningServer, signed_request

# Every request must be answered within this many seconds (the slowest honest answers here are
# a warm invocation or a CreateFunction: milliseconds); a socket or httpx timeout a little
# above it turns a hang into a failure that names the request.
ANSWER_SECONDS = 5.0
TIMEOUT_SECONDS = 8.0
API_GATEWAY_FAILURE = {"message": "Internal server error"}
ROLE = "arn:aws:iam::123456789012:role/fuzz"
TARGET = "fuzz-target"  # created by the fixture; the control-plane fuzz may change it freely
# Functions of the deployed examples (names, serverless.yml keys, services): never deleted or
# changed by the fuzz, so the final liveness checks have something to call.
PROTECTED = {
    *("hello", "echo", "item", "binary", "plain", "cookies", "secret", "malformed", "fails"),
    *("sleepy", "hungry", "suicidal", "raising", "webapi", "limits"),
}
FUZZ = settings(
    deadline=None,
    database=None,  # nothing written into the checkout (.hypothesis/)
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# --- answers and the checks every answer gets ---


@dataclass
class Answer:
    status: int | None  # None: the connection closed without an answer
    headers: dict[str, str]
    body: bytes
    seconds: float


def check(answer: Answer, what: str, *, route: bool = False) -> None:
    """The fuzz contract: a timely 4xx (or 2xx/3xx); a 5xx only as API Gateway's 502 for a
    failing function behind a route; no traceback in an error body."""
    assert answer.status is not None, f"{what}: connection closed without an answer"
    assert answer.seconds < ANSWER_SECONDS, f"{what}: answered after {answer.seconds:.1f} s"
    if answer.status >= 500:
        assert route and answer.status == 502, (
            f"{what}: faasbox answered {answer.status}: {answer.body[:300]!r}"
        )
        assert json.loads(answer.body) == API_GATEWAY_FAILURE, f"{what}: {answer.body[:300]!r}"
    if answer.status >= 400:
        assert b"Traceback" not in answer.body, f"{what}: {answer.body[:2000]!r}"


def http_call(
    server: RunningServer,
    method: str,
    path: str,
    *,
    auth: str = "good",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> Answer:
    """One request to the Lambda or management API, signed as boto3 signs (auth="good"),
    unsigned ("none"), with a wrong secret or with a key faasbox never issued."""
    assert server.credentials is not None
    credentials = {
        "good": server.credentials,
        "none": None,
        "wrong-secret": Credentials(server.credentials.access_key_id, "not-the-secret"),
        "unknown-key": Credentials("AKIAFUZZFUZZFUZZFUZZ", "whatever"),
    }[auth]
    started = time.monotonic()
    try:
        response = signed_request(
            method,
            server.url + path,
            credentials,
            content=body,
            headers=headers,
            params=params,
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.TimeoutException:
        raise AssertionError(
            f"{method} {path} {params}: no answer within {TIMEOUT_SECONDS} s (a hang)"
        ) from None
    except httpx.RemoteProtocolError:
        return Answer(None, {}, b"", time.monotonic() - started)
    return Answer(
        response.status_code, dict(response.headers), response.content, time.monotonic() - started
    )


def raw_exchange(
    server: RunningServer, data: bytes, *, half_close: bool = False, limit: float = TIMEOUT_SECONDS
) -> Answer:
    """Send bytes as they are on a fresh connection; read until the server closes it."""
    address = urlsplit(server.url)
    started = time.monotonic()
    received = bytearray()
    with socket.create_connection((address.hostname, address.port), timeout=limit) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered (and closed) before reading everything: read the answer
        while True:
            left = started + limit - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no answer within {limit} s (a hang) to {data[:300]!r}")
            sock.settimeout(left)
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return parse_answer(bytes(received), time.monotonic() - started)


def parse_answer(data: bytes, seconds: float) -> Answer:
    while True:
        if not data.startswith(b"HTTP/"):
            return Answer(None, {}, data, seconds)
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        if 100 <= status < 200:  # 100 Continue: the final answer follows
            data = rest
            continue
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length")
        body = rest[: int(length)] if length and length.isdecimal() else rest
        return Answer(status, headers, body, seconds)


def raw_request(
    server: RunningServer,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> Answer:
    address = urlsplit(server.url)
    lines = [
        f"{method} {target} HTTP/1.1",
        f"Host: {address.hostname}:{address.port}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    if body or method.upper() in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return raw_exchange(server, data)


def sent_under(server: RunningServer, path: str, prefix: str) -> bool:
    """Is `path` still under `prefix` once httpx has resolved its dot segments?"""
    return httpx.URL(server.url + path).path.startswith(prefix)


def management_parts(server: RunningServer, path: str) -> list[str] | None:
    """The route parts the management API will see for `path` as httpx sends it (its dot
    segments resolved, decoded once by uvicorn, each part once more by the API), or None
    when the request does not reach the management API at all."""
    sent = unquote(httpx.URL(server.url + path).path)
    if not sent.startswith("/_faasbox/"):
        return None
    return [unquote(p) for p in sent[len("/_faasbox/") :].strip("/").split("/") if p]


def is_route(path: str) -> bool:
    return not unquote(path).startswith(("/2015-03-31/functions", "/_faasbox/"))


# --- zips ---


def make_zip(entries: list[tuple[str, bytes, str]]) -> bytes:
    """A zip of (name, content, kind) entries, kind one of file, exec, dir, link."""
    buf = io.BytesIO()
    with (
        warnings.catch_warnings(),  # "Duplicate name": on purpose
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        warnings.simplefilter("ignore", UserWarning)
        for name, content, kind in entries:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" and not name.endswith("/") else ""))
            info.create_system = 3
            mode = {
                "file": stat.S_IFREG | 0o644,
                "exec": stat.S_IFREG | 0o755,
                "dir": stat.S_IFDIR | 0o755,
                "link": stat.S_IFLNK | 0o777,
            }[kind]
            info.external_attr = mode << 16
            archive.writestr(info, b"" if kind == "dir" else content)
    return buf.getvalue()


HANDLER_ZIP = make_zip(
    [("handler.py", b"def handler(event, context):\n    return event\n", "file")]
)


# --- strategies ---

TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
URL_SAFE = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@"
HEADER_VALUE = "".join(chr(c) for c in (9, *range(0x20, 0x7F), *range(0xA0, 0x100)))

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
NASTY_BODIES = [
    b"",
    b" ",
    b"null",
    b"[]",
    b"{",
    b'{"a":',
    b"NaN",
    b"-Infinity",
    b"1e999999",
    b"9" * 5000,
    b'"\\ud800"',
    b'{"a": 1, "a": 2}',
    b"\xff\xfe{\x00}\x00",
    b"\xef\xbb\xbf{}",
    b"\x00" * 100,
    b"[" * 5000,
    b'{"a":' * 3000,
    b"[" * 5000 + b"]" * 5000,
]
bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(NASTY_BODIES),
)
odd_ints = (
    st.sampled_from(
        [-1, 0, 1, 3, 127, 128, 512, 900, 901, 10240, 10241, 2**31, 2**63, 2**64, -(2**63)]
    )
    | st.integers()
)
query_values = st.one_of(
    st.sampled_from(
        ["", "-1", "0", "1", "50", "10001", "abc", "ALL", "all", "$LATEST", "1e3", "0x10", " 1"]
    ),
    st.sampled_from(["١٢", "²", "½", "%", "%ZZ", "\x00", "é", "€", "=&="]),
    text,
)
function_names = st.one_of(
    st.sampled_from(
        [
            "hello",
            "hello-dev-hello",
            "arn:aws:lambda:us-east-1:000000000000:function:hello-dev-hello",
            "000000000000:function:hello-dev-hello",
            "hello-dev-hello:$LATEST",
            "hello-dev-hello:1",
            "hello-dev-hello:",
            "raising",
            "limits-dev-raising",
            "nope",
            TARGET,
            f"{TARGET}:1",
            f"arn:aws:lambda:us-east-1:000000000000:function:{TARGET}",
            "",
            ":",
            "arn:aws:lambda:::function:",
            "a" * 64,
            "a" * 65,
            "a" * 300,
            "..",
            ".",
            "a/b",
            "a%2Fb",
            "€",
            "%00",
        ]
    ),
    st.text(string.ascii_letters + string.digits + "-_:.$", min_size=1, max_size=80),
    text,
)


def protected(name: str) -> bool:
    """Would `name` reach one of the example functions (which the fuzz must not break)?"""
    lowered = name.lower()
    return any(p in lowered for p in PROTECTED)


def safe_name(name: str) -> bool:
    return not protected(name) or name.startswith(TARGET)


@st.composite
def zips(draw: st.DrawFn) -> bytes:
    """Deployment packages: valid ones with odd entries, and broken ones."""
    names = st.one_of(
        st.sampled_from(
            [
                "handler.py",
                "./handler.py",
                "dir/handler.py",
                "dir/",
                "dir",
                "../evil.py",
                "a/../../evil.py",
                "/abs.py",
                "\\abs.py",
                "C:/x.py",
                "x:y",
                "a//b.py",
                "a\\..\\b",
                "é.py",
                "\u202e.py",
                "...",
                ".",
                "a" * 255,
                "a" * 256,
                "nul\x00.py",
                "x.wasm",
            ]
        ),
        st.text(URL_SAFE + "/\\ é", min_size=1, max_size=40),
    )
    entries = draw(
        st.lists(
            st.tuples(
                names,
                st.binary(max_size=100) | st.sampled_from([b"def handler(e, c): return e", b"."]),
                st.sampled_from(["file", "file", "exec", "dir", "link"]),
            ),
            max_size=6,
        )
    )
    try:
        valid = make_zip(entries)
    except (ValueError, OSError):
        valid = HANDLER_ZIP
    return draw(
        st.one_of(
            st.just(valid),
            st.just(HANDLER_ZIP),
            st.binary(max_size=300),
            st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b),
            st.integers(0, max(0, len(valid) - 1)).map(lambda n: valid[:n]),
            st.integers(0, max(0, len(valid) - 1)).map(
                lambda n: valid[:n] + bytes([valid[n] ^ 0xFF]) + valid[n + 1 :] if valid else b""
            ),
        )
    )


zip_files = st.one_of(
    zips().map(lambda z: base64.b64encode(z).decode()),
    st.sampled_from(["", "=", "!!!", "UEsDBA", "UEsDBA==", "a===", "Zm9v\nYmFy", "Zm9v YmFy"]),
    text,
    json_values,
)
handlers = st.sampled_from(
    ["handler.handler", "x.wasm", "nodots", "a..b", "/abs.h", "h .h", "", ".wasm", "é.é"]
) | st.text(max_size=140)
runtimes = st.sampled_from(
    ["python3.11", "python3.12", "python3.99", "python3.", "wasm", "nodejs20.x", "", "PYTHON3.11"]
) | st.text(max_size=20)
environments = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "Variables": st.one_of(
                st.dictionaries(
                    st.sampled_from(["A1", "AWS_REGION", "_HANDLER", "1A", "a", "K" * 300]) | text,
                    st.text(max_size=60) | json_values,
                    max_size=4,
                ),
                json_values,
            )
        },
    ),
    json_values,
)
members: dict[str, st.SearchStrategy[Any]] = {
    "FunctionName": function_names | json_values,
    "Role": st.sampled_from([ROLE, "", "arn:aws:iam::1:role/x", "role"]) | text | json_values,
    "Runtime": runtimes | json_values,
    "Handler": handlers | json_values,
    "Code": st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "ZipFile": zip_files,
                "S3Bucket": text,
                "S3Key": text,
                "ImageUri": text,
            },
        ),
        json_values,
    ),
    "ZipFile": zip_files,
    "MemorySize": odd_ints | json_values,
    "Timeout": odd_ints | json_values,
    "Description": st.text(max_size=300) | json_values,
    "Environment": environments,
    "TracingConfig": st.fixed_dictionaries(
        {}, optional={"Mode": st.sampled_from(["Active", "PassThrough", "x"]) | json_values}
    )
    | json_values,
    "EphemeralStorage": st.fixed_dictionaries({}, optional={"Size": odd_ints | json_values})
    | json_values,
    "Layers": st.lists(text, max_size=2) | json_values,
    "FileSystemConfigs": st.lists(json_values, max_size=2) | json_values,
    "Architectures": st.lists(
        st.sampled_from(["x86_64", "arm64", "mips"]) | json_values, max_size=3
    )
    | json_values,
    "Publish": st.booleans() | json_values,
    "DryRun": st.booleans() | json_values,
    "PackageType": st.sampled_from(["Zip", "Image"]) | json_values,
    "RevisionId": text | json_values,
    "CodeSha256": text | json_values,
}
lambda_bodies = st.one_of(
    st.tuples(
        st.fixed_dictionaries({}, optional=members),
        st.dictionaries(text, json_values, max_size=2),
    ).map(lambda t: json.dumps({**t[1], **t[0]}).encode()),
    bodies,
)


@st.composite
def create_requests(draw: st.DrawFn) -> bytes:
    """CreateFunction bodies that are mostly right, so that the checks past the first run."""
    request: dict[str, Any] = {
        "FunctionName": draw(
            st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=70).map(
                lambda s: "fz-" + s
            )
            | function_names
        ),
        "Role": ROLE,
        "Runtime": draw(st.sampled_from(["python3.11", "wasm"]) | runtimes),
        "Handler": draw(st.just("handler.handler") | handlers),
        "Code": {
            "ZipFile": draw(
                st.just(base64.b64encode(HANDLER_ZIP).decode())
                | zips().map(lambda z: base64.b64encode(z).decode())
                | zip_files
            )
        },
    }
    for key, value in draw(st.fixed_dictionaries({}, optional=members)).items():
        if key not in ("FunctionName", "Code"):
            request[key] = value
    return json.dumps(request).encode()


# --- fixtures ---


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        [EXAMPLES / "webapi", EXAMPLES / "hello", EXAMPLES / "limits"],
        tmp_path_factory.mktemp("fuzz-data"),
    ).start()
    created = http_call(
        running,
        "POST",
        "/2015-03-31/functions",
        body=json.dumps(
            {
                "FunctionName": TARGET,
                "Role": ROLE,
                "Runtime": "python3.11",
                "Handler": "handler.handler",
                "Code": {"ZipFile": base64.b64encode(HANDLER_ZIP).decode()},
            }
        ).encode(),
    )
    assert created.status == 201, created.body
    # Warm the functions the fuzz calls, so no cold start counts against ANSWER_SECONDS.
    for path in ("/hello", "/rest/echo/x", "/v2/echo/1", "/rest/items/1", "/rest/fails"):
        httpx.get(running.url + path, timeout=60)
    httpx.post(running.url + "/rest/binary", content=b"x", timeout=60)
    http_call(running, "POST", "/2015-03-31/functions/raising/invocations", body=b"{}")
    yield running
    running.stop()


@pytest.fixture
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of its own, for deploys that would break the server they hit if accepted."""
    running = RunningServer([], tmp_path_factory.mktemp("scratch-data")).start()
    yield running
    running.stop()


# --- API Gateway routes (raw sockets: odd methods, dot segments and bytes stay as sent) ---

path_prefixes = st.sampled_from(
    [
        "/rest/echo",
        "/rest/items",
        "/rest/items/special",
        "/rest/private",
        "/rest/binary",
        "/rest/fails",
        "/rest/malformed",
        "/rest",
        "/v2/echo",
        "/v2/binary",
        "/v2/plain",
        "/v2/cookies",
        "/v2/fails",
        "/v2",
        "/hello",
        "",
        "/ui",
        "/_faasbox",
        "/2015-03-31/functions",
        "//rest/echo",
        "/REST/ECHO",
    ]
)
path_segments = st.one_of(
    st.sampled_from(
        [
            *("..", ".", "", "%2E%2E", "%2F", "%2f", "%00", "%0A", "%0D%0A", "%7F", "%09"),
            *("%ZZ", "%", "%E2%82%AC", "%FF", "%C0%AF", "{proxy+}", "{id}", "~", ";", "*"),
            *("rest", "v2", "echo", "items", "special", "binary", "1", "_faasbox", "health"),
            *("ui", "index.html", "2015-03-31", "functions", "hello-dev-hello", "invocations"),
        ]
    ),
    st.text(URL_SAFE, max_size=20),
    text.map(lambda s: quote(s, safe="")),
    st.integers(200, 8000).map(lambda n: "a" * n),
    text.map(lambda s: quote(s, safe="/")),
)
common_methods = st.sampled_from(["GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
methods = st.one_of(
    common_methods,
    common_methods,
    st.sampled_from(
        [
            *("PATCH", "TRACE", "PROPFIND", "MKCOL", "PURGE", "LINK", "SEARCH", "M-SEARCH", "ANY"),
            *("get", "post", "Get", "options"),
        ]
    ),
    st.text(string.ascii_letters + "-_", min_size=1, max_size=12).filter(
        lambda m: m.upper() not in ("CONNECT", "PRI")
    ),
)
header_names = st.one_of(
    st.sampled_from(
        [
            *("Content-Type", "X-Api-Key", "Origin", "Access-Control-Request-Method", "Cookie"),
            *("Accept", "User-Agent", "X-Forwarded-For", "Authorization", "X-Amz-Date"),
            *("If-None-Match", "X-Amz-Invocation-Type", "Accept-Encoding", "X-Custom"),
        ]
    ),
    st.text(TOKEN, min_size=1, max_size=30).filter(
        lambda n: (
            n.lower()
            not in (
                "content-length",
                "transfer-encoding",
                "host",
                "connection",
                "expect",
                "upgrade",
            )
        )
    ),
)
header_values = st.one_of(
    st.sampled_from(
        [
            *("", "application/json", "image/png", "application/octet-stream", "*/*", "GET"),
            *("text/plain; charset=utf-8", "multipart/form-data; boundary=x", "webapi-demo-key"),
            *("a=1; b=2", ";;;", "=", "http://evil.example", "null"),
        ]
    ),
    st.text(HEADER_VALUE, max_size=100).map(str.strip),
    st.integers(1000, 20000).map(lambda n: "v" * n),
)
query_strings = st.one_of(
    st.just(""),
    st.lists(st.tuples(text, text), max_size=4).map(
        lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    ),
    st.sampled_from(["%%", "a=%ZZ", "&&&", "=", "a[]=1&a[]=2", "x=1&x=2", "a=b=c", "+=+"]),
    st.text(URL_SAFE + "?/=&", max_size=40),
)


@settings(FUZZ, max_examples=400)
@given(
    method=methods,
    prefix=path_prefixes,
    segments=st.lists(path_segments, max_size=3),
    query=query_strings,
    headers=st.lists(st.tuples(header_names, header_values), max_size=5),
    body=bodies,
)
def test_api_gateway_routes_answer_malformed_requests(
    server: RunningServer,
    method: str,
    prefix: str,
    segments: list[str],
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    path = prefix + "/" + "/".join(segments) if segments else prefix or "/"
    target = path + ("?" + query if query else "")
    answer = raw_request(server, method, target, headers, body)
    what = f"{method} {target[:300]} {headers!r:.300} body={body[:100]!r}"
    check(answer, what, route=is_route(path))


@settings(FUZZ, max_examples=40)
@given(
    path=st.sampled_from(["/rest/echo", "/v2/echo", "/rest/binary", "/v2/binary"]),
    content_type=header_values,
    body=bodies,
)
def test_api_gateway_bodies_reach_the_function_or_are_refused(
    server: RunningServer, path: str, content_type: str, body: bytes
) -> None:
    answer = raw_request(server, "POST", path, [("Content-Type", content_type)], body)
    check(answer, f"POST {path} {content_type!r:.100} {body[:100]!r}", route=True)
    # A header line over 16 KB is refused at the edge (docs/security.md).
    too_long = len("content-type") + len(content_type) > EdgeLimits.max_header_line_bytes
    assert answer.status == (431 if too_long else 200), answer.body[:300]


# --- the Invoke API ---

# Names that reach a function that answers at once (the others: 404, 400 or 403).
invocable = st.sampled_from(
    [
        "hello",
        "hello-dev-hello",
        "arn:aws:lambda:us-east-1:000000000000:function:hello-dev-hello",
        "hello-dev-hello:$LATEST",
        "raising",
        "limits-dev-raising",
    ]
)


@settings(FUZZ, max_examples=150)
@given(
    name=invocable | invocable | function_names,
    qualifier=st.none()
    | st.none()
    | st.sampled_from(["$LATEST", "1", "0", "-1", "9" * 30, ""])
    | text,
    invocation_type=st.none()
    | st.sampled_from(["RequestResponse", "Event", "DryRun"])
    | st.sampled_from(["event", "", "Bogus", "requestresponse"])
    | st.text(string.printable.strip(), max_size=20),
    log_type=st.none()
    | st.sampled_from(["Tail", "None", "tail", ""])
    | st.text(TOKEN, max_size=10),
    client_context=st.none()
    | st.none()
    | json_values.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode())
    | st.dictionaries(text, json_values, max_size=3).map(
        lambda v: base64.b64encode(json.dumps(v).encode()).decode()
    )
    | st.binary(max_size=50).map(lambda b: base64.b64encode(b).decode())
    | st.text(TOKEN + "=/", max_size=60),
    payload=json_values.map(lambda v: json.dumps(v).encode()) | bodies,
    auth=st.sampled_from(["good", "good", "good", "none", "wrong-secret", "unknown-key"]),
)
def test_invoke_api_answers_malformed_invocations(
    server: RunningServer,
    name: str,
    qualifier: str | None,
    invocation_type: str | None,
    log_type: str | None,
    client_context: str | None,
    payload: bytes,
    auth: str,
) -> None:
    assume(not name.startswith("fz-"))  # functions the control-plane fuzz made run random code
    headers = {}
    if invocation_type is not None:
        headers["X-Amz-Invocation-Type"] = invocation_type
    if log_type is not None:
        headers["X-Amz-Log-Type"] = log_type
    if client_context is not None:
        headers["X-Amz-Client-Context"] = client_context
    path = f"/2015-03-31/functions/{quote(name, safe=':$')}/invocations"
    params = {"Qualifier": qualifier} if qualifier is not None else None
    answer = http_call(
        server, "POST", path, auth=auth, body=payload, headers=headers, params=params
    )
    check(answer, f"POST {path} {params} {headers} auth={auth} body={payload[:100]!r}")
    if auth != "good" and sent_under(server, path, "/2015-03-31/functions"):
        assert answer.status == 403, answer.body[:300]


# --- the control plane ---

OPERATIONS: dict[str, tuple[str, str]] = {
    "CreateFunction": ("POST", ""),
    "ListFunctions": ("GET", ""),
    "GetFunction": ("GET", "/{name}"),
    "DeleteFunction": ("DELETE", "/{name}"),
    "GetFunctionConfiguration": ("GET", "/{name}/configuration"),
    "UpdateFunctionConfiguration": ("PUT", "/{name}/configuration"),
    "UpdateFunctionCode": ("PUT", "/{name}/code"),
    "PublishVersion": ("POST", "/{name}/versions"),
    "ListVersionsByFunction": ("GET", "/{name}/versions"),
    "Download": ("GET", "/{name}/code/{extra}"),
    "Unknown": ("PATCH", "/{name}/{extra}"),
    "Aliases": ("GET", "/{name}/aliases"),
    "Policy": ("POST", "/{name}/policy"),
}


@settings(FUZZ, max_examples=200)
@given(
    operation=st.sampled_from(sorted(OPERATIONS)),
    name=st.sampled_from(
        [TARGET, f"{TARGET}:$LATEST", f"arn:aws:lambda:us-east-1:000000000000:function:{TARGET}"]
    )
    | function_names,
    extra=st.sampled_from(["x.zip", "..", "", "a/b", "%00"]) | text,
    params=st.dictionaries(
        st.sampled_from(["MaxItems", "Marker", "FunctionVersion", "Qualifier"]) | text,
        query_values | st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
        max_size=3,
    ),
    body=lambda_bodies | create_requests(),
    auth=st.sampled_from(["good"] * 6 + ["none", "wrong-secret", "unknown-key"]),
)
def test_control_plane_answers_malformed_requests(
    server: RunningServer,
    operation: str,
    name: str,
    extra: str,
    params: dict[str, str],
    body: bytes,
    auth: str,
) -> None:
    method, template = OPERATIONS[operation]
    if method != "GET":
        assume(safe_name(name))  # the examples stay as deployed
    if operation == "DeleteFunction":
        assume(TARGET not in name)  # the target of the other operations stays
    if operation == "CreateFunction":
        try:
            requested = json.loads(body).get("FunctionName")
        except (ValueError, AttributeError, RecursionError):
            requested = None
        assume(not isinstance(requested, str) or safe_name(requested))
    path = "/2015-03-31/functions" + template.format(
        name=quote(name, safe=":$"), extra=quote(extra, safe="")
    )
    answer = http_call(server, method, path, auth=auth, body=body, params=params or None)
    check(answer, f"{operation}: {method} {path} {params} auth={auth} body={body[:300]!r}")
    if auth != "good" and sent_under(server, path, "/2015-03-31/functions"):
        assert answer.status == 403, answer.body[:300]


@settings(FUZZ, max_examples=60)
@given(body=create_requests() | st.sampled_from([b"{}", b"[" * 5000]))
def test_create_function_with_odd_packages(server: RunningServer, body: bytes) -> None:
    requested = json.loads(body).get("FunctionName") if body.startswith(b"{") else None
    assume(not isinstance(requested, str) or safe_name(requested))
    answer = http_call(server, "POST", "/2015-03-31/functions", body=body)
    check(answer, f"CreateFunction {body[:400]!r}")


@settings(FUZZ, max_examples=40)
@given(zip_file=zip_files, extra=st.fixed_dictionaries({}, optional=members))
def test_update_function_code_with_odd_packages(
    server: RunningServer, zip_file: Any, extra: dict[str, Any]
) -> None:
    body = json.dumps({**extra, "ZipFile": zip_file}).encode()
    answer = http_call(server, "PUT", f"/2015-03-31/functions/{TARGET}/code", body=body)
    check(answer, f"UpdateFunctionCode {body[:400]!r}")


def test_list_functions_with_odd_pagination(server: RunningServer) -> None:
    for params in (
        {"MaxItems": "-1"},
        {"MaxItems": "0"},
        {"MaxItems": "1"},
        {"MaxItems": "10001"},
        {"MaxItems": "9" * 40},
        {"MaxItems": ""},
        {"MaxItems": "1.5"},
        {"MaxItems": "\u0661"},  # ARABIC-INDIC DIGIT ONE: int() takes it
        {"Marker": "garbage"},
        {"Marker": "=="},
        {"Marker": base64.urlsafe_b64encode(b'["a", "b"]').decode()},
        {"Marker": base64.urlsafe_b64encode(b'{"a": 1, "b": 2}').decode()},
        {"Marker": base64.urlsafe_b64encode(b'["a", 1e999]').decode()},
        {"Marker": base64.urlsafe_b64encode(b'["a", 99999999999999999999999]').decode()},
        {"FunctionVersion": "all"},
        {"FunctionVersion": "ALL", "MaxItems": "1", "Marker": "x"},
    ):
        for path in ("/2015-03-31/functions", f"/2015-03-31/functions/{TARGET}/versions"):
            check(http_call(server, "GET", path, params=params), f"GET {path} {params}")


# --- the management API ---

management_segments = st.one_of(
    st.sampled_from(
        ["health", "functions", "deploy", "logs", "workers", "hello", TARGET, "nope", "", ".."]
    ),
    text.map(lambda s: quote(s, safe="")),
)
management_paths = st.one_of(
    st.tuples(
        st.sampled_from(["functions/{}", "functions/{}/logs", "functions/{}/workers"]),
        function_names.map(lambda n: quote(n, safe=":$")),
    ).map(lambda t: t[0].format(t[1])),
    st.sampled_from(["health", "functions", "deploy", "functions/hello-dev-hello/logs"]),
    st.lists(management_segments, max_size=4).map("/".join),
)
function_fields = st.sampled_from(
    ["name", "handler", "runtime", "memory_size", "timeout", "events", "service", "environment"]
)


@st.composite
def deploy_bodies(draw: st.DrawFn) -> bytes:
    """Deploy requests whose code_zip is never a valid zip: a deploy that went through could
    replace the example services (ill-typed deploys are tried on a server of their own)."""
    code_zip = draw(
        st.one_of(
            st.binary(max_size=100)
            .filter(lambda b: not zipfile.is_zipfile(io.BytesIO(b)))
            .map(lambda b: base64.b64encode(b).decode()),
            st.sampled_from(["", "!!!", "UEsDBA=="]),
            json_values,
        )
    )
    request = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "service": text | json_values,
                "functions": st.lists(
                    st.dictionaries(function_fields | text, json_values, max_size=4), max_size=3
                )
                | json_values,
                "apiKeys": st.lists(text | json_values, max_size=2) | json_values,
            },
        )
    )
    if draw(st.booleans()):
        request["code_zip"] = code_zip
    return json.dumps(request).encode()


@settings(FUZZ, max_examples=150)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    route=management_paths,
    params=st.dictionaries(st.sampled_from(["since", "limit"]) | text, query_values, max_size=3)
    | st.sampled_from([{"wait": "0"}, {"wait": "-1"}, {"wait": "nan"}, {"wait": "x"}]),
    body=bodies | deploy_bodies(),
    auth=st.sampled_from(["good"] * 6 + ["none", "wrong-secret", "unknown-key"]),
)
def test_management_api_answers_malformed_requests(
    server: RunningServer,
    method: str,
    route: str,
    params: dict[str, str],
    body: bytes,
    auth: str,
) -> None:
    assume("wait" not in params or params["wait"] in ("0", "-1", "nan", "x"))  # no long polls
    path = "/_faasbox/" + route
    parts = management_parts(server, path)
    if method == "DELETE":
        assume(not any(protected(p) or TARGET in p for p in parts or [""]))
    answer = http_call(server, method, path, auth=auth, body=body, params=params or None)
    check(answer, f"{method} {path} {params} auth={auth} body={body[:300]!r}")
    if auth != "good" and parts is not None and parts != ["health"]:
        assert answer.status == 403, answer.body[:300]


# --- SigV4: unsigned, wrongly signed, malformed signatures ---

amz_dates = st.one_of(
    st.just("NOW"),
    st.sampled_from(
        [
            *("20240101T000000Z", "99991231T235959Z", "19700101T000000Z", "20241301T000000Z"),
            *("20240230T000000Z", "20240101T246060Z", "2024-01-01T00:00:00Z", "", "Z" * 16),
            *("\uff12\uff10\uff12\uff140101T000000Z", "20240101T000000", "0001" + "0101T000000Z"),
        ]
    ),
    st.text(string.digits + "TZ", min_size=14, max_size=18),
    st.text(HEADER_VALUE, max_size=20).map(str.strip),
)


@st.composite
def authorizations(draw: st.DrawFn, key: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query) of a request with a malformed or wrong signature."""
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    date = draw(amz_dates).replace("NOW", now)
    scope_date = draw(st.sampled_from([date[:8], now[:8], "", "x"]) | st.text(TOKEN, max_size=10))
    credential = "/".join(
        draw(
            st.tuples(
                st.sampled_from([key, "AKIAUNKNOWN", ""]) | st.text(TOKEN, max_size=20),
                st.just(scope_date),
                st.sampled_from(["us-east-1", "", "\xe9"]) | st.text(TOKEN, max_size=12),
                st.sampled_from(["lambda", "s3", ""]),
                st.sampled_from(["aws4_request", "aws4", ""]),
            )
        )
    )
    signed = draw(
        st.sampled_from(["host;x-amz-date", "host", "x-amz-date", "", "host;x-missing", ";;"])
        | st.text(TOKEN + ";", max_size=30)
    )
    signature = draw(st.sampled_from(["0" * 64, "", "zz"]) | st.text(string.hexdigits, max_size=70))
    if draw(st.booleans()):
        scheme = draw(st.sampled_from(["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", "Basic", ""]))
        parts = [f"Credential={credential}", f"SignedHeaders={signed}", f"Signature={signature}"]
        parts = draw(st.permutations(parts).flatmap(lambda p: st.lists(st.sampled_from(p))))
        if draw(st.booleans()):
            parts.append(draw(st.text(HEADER_VALUE, max_size=20)))
        headers = {"Authorization": f"{scheme} {', '.join(parts)}".strip()}
        if draw(st.booleans()):
            headers["X-Amz-Date"] = date
        if draw(st.booleans()):
            headers["X-Amz-Content-Sha256"] = draw(
                st.sampled_from(["UNSIGNED-PAYLOAD", "STREAMING-X", "0" * 64, ""])
            )
        return headers, {}
    query = {
        "X-Amz-Algorithm": draw(st.sampled_from(["AWS4-HMAC-SHA256", "x", ""])),
        "X-Amz-Credential": credential,
        "X-Amz-Date": date,
        "X-Amz-Expires": draw(
            st.sampled_from(["1", "300", "604800", "604801", "0", "-1", "", "1e3", "٣"])
            | st.text(HEADER_VALUE, max_size=8)
        ),
        "X-Amz-SignedHeaders": signed,
        "X-Amz-Signature": signature,
    }
    drop = draw(st.sets(st.sampled_from(sorted(query)), max_size=2))
    return {}, {k: v for k, v in query.items() if k not in drop}


@settings(FUZZ, max_examples=150)
@given(
    data=st.data(),
    target=st.sampled_from(
        [
            ("GET", "/2015-03-31/functions"),
            ("POST", "/2015-03-31/functions/hello/invocations"),
            ("GET", "/_faasbox/functions"),
            ("POST", "/_faasbox/deploy"),
            ("DELETE", "/2015-03-31/functions/hello"),
        ]
    ),
)
def test_malformed_signatures_are_refused(
    server: RunningServer, data: st.DataObject, target: tuple[str, str]
) -> None:
    assert server.credentials is not None
    headers, query = data.draw(authorizations(server.credentials.access_key_id))
    method, path = target
    started = time.monotonic()
    response = httpx.request(
        method,
        server.url + path,
        params=query,
        headers={k: v.encode() for k, v in headers.items()},
        content=b"{}",
        timeout=TIMEOUT_SECONDS,
    )
    answer = Answer(
        response.status_code, dict(response.headers), response.content, time.monotonic() - started
    )
    check(answer, f"{method} {path} {headers} {query}")
    assert answer.status == 403, (headers, query, answer.body[:300])


# --- raw HTTP ---


def request_bytes(server: RunningServer, first_line: bytes, rest: bytes = b"") -> bytes:
    host = urlsplit(server.url).netloc.encode()
    return first_line + b"\r\nHost: " + host + b"\r\n" + rest


ANSWER, HALF_CLOSE = "answer", "half-close"
# name: (the request, the Host header added after its first line unless it is a no-host case;
# ANSWER: an answer must come; HALF_CLOSE: the client stops sending (shutdown) and the server
# may close without answering, as the request never completed)
RAW_CASES: dict[str, tuple[bytes, str]] = {
    "garbage": (b"GARBAGE\r\n\r\n", ANSWER),
    "bad version": (b"GET /hello HTTP/9.9\r\nConnection: close\r\n\r\n", ANSWER),
    "no version": (b"GET /hello\r\n\r\n", ANSWER),
    "lowercase method": (b"get /hello HTTP/1.1\r\nConnection: close\r\n\r\n", ANSWER),
    "absolute form": (
        b"GET http://evil.example/hello HTTP/1.1\r\nConnection: close\r\n\r\n",
        ANSWER,
    ),
    "asterisk": (b"OPTIONS * HTTP/1.1\r\nConnection: close\r\n\r\n", ANSWER),
    "connect": (b"CONNECT evil.example:443 HTTP/1.1\r\nConnection: close\r\n\r\n", HALF_CLOSE),
    "dot segments": (
        b"GET /rest/echo/../../_faasbox/functions HTTP/1.1\r\nConnection: close\r\n\r\n",
        ANSWER,
    ),
    "dot segments to management": (
        b"GET /_faasbox/../2015-03-31/functions HTTP/1.1\r\nConnection: close\r\n\r\n",
        ANSWER,
    ),
    "dot segments to ui": (
        b"GET /ui/../../../etc/passwd HTTP/1.1\r\nConnection: close\r\n\r\n",
        ANSWER,
    ),
    "raw utf-8 path": ("GET /rest/echo/é€ HTTP/1.1\r\nConnection: close\r\n\r\n".encode(), ANSWER),
    "http/1.0 without host": (b"GET /hello HTTP/1.0\r\n\r\n", ANSWER),
    "header without colon": (b"GET /hello HTTP/1.1\r\nBroken\r\nConnection: close\r\n\r\n", ANSWER),
    "space before colon": (b"GET /hello HTTP/1.1\r\nX-A : b\r\nConnection: close\r\n\r\n", ANSWER),
    "obs-fold": (b"GET /hello HTTP/1.1\r\nX-A: b\r\n c\r\nConnection: close\r\n\r\n", ANSWER),
    "nul in header": (b"GET /hello HTTP/1.1\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n", ANSWER),
    "huge header": (
        b"GET /rest/echo/x HTTP/1.1\r\nX-Big: "
        + b"a" * 2_000_000
        + b"\r\nConnection: close\r\n\r\n",
        ANSWER,
    ),
    "many headers": (
        b"GET /rest/echo/x HTTP/1.1\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(20000))
        + b"Connection: close\r\n\r\n",
        ANSWER,
    ),
    "bad chunk size": (
        b"POST /v2/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
        ANSWER,
    ),
    "chunk longer than said": (
        b"POST /v2/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n",
        ANSWER,
    ),
    "chunked and content-length": (
        b"POST /v2/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        ANSWER,
    ),
    "chunked, well formed": (
        b"POST /v2/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        ANSWER,
    ),
    "transfer-encoding gzip": (
        b"POST /v2/echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nabc",
        HALF_CLOSE,
    ),
    "negative content-length": (b"POST /v2/echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n", ANSWER),
    "text content-length": (b"POST /v2/echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n", ANSWER),
    "two content-lengths": (
        b"POST /v2/echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        ANSWER,
    ),
    "content-length overflow": (
        b"POST /2015-03-31/functions HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ANSWER,
    ),
    "invoke content-length over 6 MB": (
        b"POST /2015-03-31/functions/hello/invocations HTTP/1.1\r\n"
        b"Content-Length: 99999999999\r\nConnection: close\r\n\r\n",
        ANSWER,
    ),
    "route content-length over 6 MB": (
        b"POST /rest/echo HTTP/1.1\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n",
        ANSWER,
    ),
    "deploy content-length over its limit": (
        b"POST /_faasbox/deploy HTTP/1.1\r\nContent-Length: 99999999999\r\n"
        b"Connection: close\r\n\r\n",
        ANSWER,
    ),
    "expect 100-continue": (
        b"POST /v2/echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n{}",
        ANSWER,
    ),
    "upgrade websocket": (
        b"GET /hello HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        HALF_CLOSE,
    ),
    "upgrade h2c": (
        b"GET /hello HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        HALF_CLOSE,
    ),
    "http/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HALF_CLOSE),
    "pipelined": (
        b"GET /hello HTTP/1.1\r\n\r\nGET /rest/echo/x HTTP/1.1\r\nConnection: close\r\n\r\n",
        ANSWER,
    ),
    "truncated body": (b"POST /v2/echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort", HALF_CLOSE),
    "truncated chunked body": (
        b"POST /v2/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        HALF_CLOSE,
    ),
    "truncated headers": (b"GET /hello HTTP/1.1\r\nX-A: b", HALF_CLOSE),
}
NO_HOST = {"garbage", "http/1.0 without host", "http/2 preface"}


@pytest.mark.parametrize("case", sorted(RAW_CASES))
def test_raw_malformed_http(server: RunningServer, case: str) -> None:
    request, mode = RAW_CASES[case]
    if case in NO_HOST:
        data = request
    else:
        first, _, rest = request.partition(b"\r\n")
        data = request_bytes(server, first, rest)
    answer = raw_exchange(server, data, half_close=mode == HALF_CLOSE)
    if not (answer.status is None and mode == HALF_CLOSE):
        check(answer, f"raw {case}: {data[:200]!r}", route=True)
    health = httpx.get(server.url + "/_faasbox/health", timeout=TIMEOUT_SECONDS)
    assert health.status_code == 200, case


def test_a_request_whose_body_never_comes_blocks_no_one(server: RunningServer) -> None:
    address = urlsplit(server.url)
    stalled = []
    for path in (b"/v2/echo", b"/2015-03-31/functions/hello/invocations", b"/_faasbox/deploy"):
        sock = socket.create_connection((address.hostname, address.port), timeout=5)
        sock.sendall(
            request_bytes(server, b"POST " + path + b" HTTP/1.1", b"Content-Length: 100\r\n\r\nab")
        )
        stalled.append(sock)
    try:
        started = time.monotonic()
        assert httpx.get(server.url + "/_faasbox/health", timeout=5).status_code == 200
        assert httpx.get(server.url + "/hello", timeout=5).status_code == 200
        assert time.monotonic() - started < ANSWER_SECONDS
    finally:
        for sock in stalled:
            sock.close()


@pytest.mark.parametrize(
    "path, signed",
    [
        ("/rest/echo", False),
        ("/v2/binary", False),
        ("/2015-03-31/functions/hello/invocations", True),
    ],
)
def test_bodies_over_the_payload_limit_are_413(
    server: RunningServer, path: str, signed: bool
) -> None:
    body = b"x" * (6 * 1024 * 1024 + 1)
    if signed:
        answer = http_call(server, "POST", path, body=body)
    else:
        answer = raw_request(server, "POST", path, [("Content-Type", "text/plain")], body)
    check(answer, f"POST {path} with 6 MB + 1")
    assert answer.status == 413


@settings(FUZZ, max_examples=60)
@given(
    method=methods.map(str.encode) | st.binary(min_size=1, max_size=10),
    target=st.sampled_from([b"/", b"*", b"/hello", b"/rest/echo/x", b"http://x/y", b""])
    | st.binary(max_size=60),
    version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1", b""])
    | st.binary(max_size=10),
)
def test_raw_request_lines(
    server: RunningServer, method: bytes, target: bytes, version: bytes
) -> None:
    forbidden = b"\r\n \t"
    method, target, version = (
        bytes(b for b in part if b not in forbidden) for part in (method, target, version)
    )
    assume(method.upper() not in (b"CONNECT", b"PRI") and method)
    line = b" ".join(p for p in (method, target, version) if p)
    data = request_bytes(server, line, b"Connection: close\r\n\r\n")
    answer = raw_exchange(server, data)
    check(answer, f"raw request line {line!r}", route=True)


# --- what the fuzz found (each was a 500, or no answer): regression tests, minimal inputs ---

DEEP = b"[" * 5000  # deeper than the JSON decoder's recursion limit


def refused(answer: Answer, what: str) -> None:
    check(answer, what)
    assert answer.status is not None and 400 <= answer.status < 500, (what, answer.body[:300])


def test_invoke_payload_nested_too_deep_is_refused(server: RunningServer) -> None:
    """Was a 500: RecursionError escaped lambda_api._check_json."""
    answer = http_call(server, "POST", "/2015-03-31/functions/hello/invocations", body=DEEP)
    refused(answer, "Invoke, payload [[[[... x5000")


def test_invoke_client_context_nested_too_deep_is_refused(server: RunningServer) -> None:
    """Was a 500: RecursionError escaped lambda_api._client_context."""
    headers = {"X-Amz-Client-Context": base64.b64encode(DEEP).decode()}
    answer = http_call(
        server, "POST", "/2015-03-31/functions/hello/invocations", body=b"{}", headers=headers
    )
    refused(answer, "Invoke, X-Amz-Client-Context base64([[[[... x5000)")


def test_max_items_of_digits_int_does_not_take_is_refused(server: RunningServer) -> None:
    """Was a 500: "²".isdigit() is true, int("²") raises (control_plane._page)."""
    for path in ("/2015-03-31/functions", f"/2015-03-31/functions/{TARGET}/versions"):
        refused(http_call(server, "GET", path, params={"MaxItems": "²"}), f"{path}?MaxItems=²")


def test_marker_nested_too_deep_is_refused(server: RunningServer) -> None:
    """Was a 500: RecursionError escaped control_plane._decode_marker."""
    marker = base64.urlsafe_b64encode(DEEP).decode()
    answer = http_call(server, "GET", "/2015-03-31/functions", params={"Marker": marker})
    refused(answer, "ListFunctions, Marker of [[[[... x5000")


def test_presigned_expires_of_a_superscript_digit_is_refused(server: RunningServer) -> None:
    """Was a 500 to an unauthenticated request: X-Amz-Expires=%B2 decodes (latin-1) to "²",
    which passes isdigit() and fails int() (sigv4._from_query)."""
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a/20240101/us-east-1/lambda/"
        "aws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=%B2&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=ab"
    )
    answer = raw_request(server, "GET", f"/2015-03-31/functions?{query}")
    assert answer.status == 403, answer.body[:300]
    check(answer, "presigned X-Amz-Expires=%B2")


def test_amz_date_in_year_zero_is_refused(server: RunningServer) -> None:
    """Was a 500 to an unauthenticated request: calendar.timegm raised "year 0 is out of
    range" (sigv4._parse_amz_date)."""
    headers = [
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=a/00000101/us-east-1/lambda/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=ab",
        ),
        ("X-Amz-Date", "00000101T000000Z"),
    ]
    answer = raw_request(server, "GET", "/2015-03-31/functions", headers)
    assert answer.status == 403, answer.body[:300]
    check(answer, "X-Amz-Date 00000101T000000Z")


def test_deploy_of_a_function_that_is_not_an_object_is_refused(server: RunningServer) -> None:
    """Was a 500: AttributeError in FunctionConfig.from_dict (management._deploy)."""
    body = json.dumps({"functions": ["x"], "code_zip": ""}).encode()
    refused(http_call(server, "POST", "/_faasbox/deploy", body=body), "deploy functions=['x']")


def test_deploy_nested_too_deep_is_refused(server: RunningServer) -> None:
    """Was a 500: RecursionError escaped management._deploy."""
    refused(http_call(server, "POST", "/_faasbox/deploy", body=DEEP), "deploy [[[[... x5000")


def test_zip_entry_path_over_path_max_is_refused(server: RunningServer) -> None:
    """Was a 500: OSError ENAMETOOLONG in CodeStore.put_zip (every part under 255 bytes)."""
    package = base64.b64encode(make_zip([("/".join(["a" * 200] * 30), b"x", "file")])).decode()
    create = {
        "FunctionName": "fz-long-path",
        "Role": ROLE,
        "Runtime": "python3.11",
        "Handler": "handler.handler",
        "Code": {"ZipFile": package},
    }
    answer = http_call(server, "POST", "/2015-03-31/functions", body=json.dumps(create).encode())
    refused(answer, "CreateFunction, a zip entry path of 6029 bytes")
    update = json.dumps({"ZipFile": package}).encode()
    answer = http_call(server, "PUT", f"/2015-03-31/functions/{TARGET}/code", body=update)
    refused(answer, "UpdateFunctionCode, a zip entry path of 6029 bytes")


@pytest.mark.parametrize("escape", ["%0D%0A", "%00", "%7F"])
def test_control_character_in_a_response_header_is_a_502(
    server: RunningServer, escape: str
) -> None:
    """Was no answer at all: the webapi `item` function copies the path parameter into its
    X-Item header; uvicorn refused the header, and the gateway's 500 then failed too."""
    answer = raw_request(server, "GET", f"/rest/items/{escape}")
    check(answer, f"GET /rest/items/{escape}", route=True)


def deploy(server: RunningServer, *functions: dict[str, Any]) -> Answer:
    package = base64.b64encode(make_zip([("h.py", b"def h(e, c):\n    return 1\n", "file")]))
    body = {"functions": list(functions), "code_zip": package.decode()}
    return http_call(server, "POST", "/_faasbox/deploy", body=json.dumps(body).encode())


def test_deploy_of_a_non_string_name_is_refused(scratch: RunningServer) -> None:
    """Was a 500, then health and every listing a 500 for good, and the server no longer
    started on its data dir: the name 7 was stored and sorted with strings."""
    refused(deploy(scratch, {"name": 7, "handler": "h.h"}), "deploy name=7")
    health = httpx.get(scratch.url + "/_faasbox/health", timeout=TIMEOUT_SECONDS)
    assert health.status_code == 200, health.text


@pytest.mark.parametrize("member", ["memory_size", "timeout"])
def test_deploy_of_an_ill_typed_member_is_refused(scratch: RunningServer, member: str) -> None:
    """Was stored (200); invoking the function was then a 500, and ListFunctions too for
    timeout "abc"."""
    refused(deploy(scratch, {"name": "m1", "handler": "h.h", member: "abc"}), f"{member}='abc'")
    invoked = http_call(scratch, "POST", "/2015-03-31/functions/m1/invocations", body=b"{}")
    check(invoked, f"invoke the function deployed with {member}='abc'")
    check(http_call(scratch, "GET", "/2015-03-31/functions"), "ListFunctions")


def test_a_malformed_event_does_not_freeze_the_routes(scratch: RunningServer) -> None:
    """Was stored (200), then compiling the route table failed in an event-loop callback:
    no later deploy's routes were ever served (404), and the next start failed."""
    poisoned = deploy(scratch, {"name": "m4", "handler": "h.h", "events": [{"http": 5}]})
    check(poisoned, "deploy events=[{'http': 5}]")
    routed = deploy(scratch, {"name": "m5", "handler": "h.h", "events": [{"httpApi": "GET /m5"}]})
    assert routed.status == 200, routed.body
    assert httpx.get(scratch.url + "/m5", timeout=TIMEOUT_SECONDS).status_code == 200
    scratch.stop()
    restarted = RunningServer([], scratch.data_dir).start()
    try:
        assert httpx.get(restarted.url + "/m5", timeout=TIMEOUT_SECONDS).status_code == 200
    finally:
        restarted.stop()


# --- still up (last: after everything above) ---


def test_the_server_survived_the_fuzz(server: RunningServer) -> None:
    assert server.alive(), "".join(server.output[-50:])
    health = httpx.get(server.url + "/_faasbox/health", timeout=TIMEOUT_SECONDS)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    invoked = http_call(
        server, "POST", "/2015-03-31/functions/hello/invocations", body=b'{"name": "fuzz"}'
    )
    assert invoked.status == 200 and json.loads(invoked.body)["message"] == "Hello, fuzz!"
    assert httpx.get(server.url + "/hello", timeout=TIMEOUT_SECONDS).status_code == 200
    echo = httpx.post(server.url + "/rest/echo", content=b"ok", timeout=TIMEOUT_SECONDS)
    assert echo.status_code == 200 and echo.json()["body"] == "ok"
    listed = http_call(server, "GET", "/2015-03-31/functions")
    assert listed.status == 200
    log = "".join(server.output)
    assert "Exception in callback" not in log, log[-5000:]
