"""The wasm runtime's HTTP contract: an API Gateway event in, a proxy response out.

Behind an `http` or `httpApi` route the program does not see the event: its stdin is the
request body (decoded from base64 when API Gateway carried it so), and the request itself is
in CGI-like environment variables:

| variable | value |
|---|---|
| `REQUEST_METHOD` | `GET`, `POST`, ... |
| `PATH_INFO` | the request path, e.g. `/wasm/grayscale` |
| `QUERY_STRING` | the query string without `?` (empty if none) |
| `CONTENT_TYPE` | the request's Content-Type (empty if none) |
| `CONTENT_LENGTH` | the body's length in bytes (`0` if none) |
| `HTTP_<NAME>` | each other header, its name uppercased, `-` as `_`; repeats joined by `, ` |
| `SERVER_PROTOCOL`, `REMOTE_ADDR` | e.g. `HTTP/1.1`, the client's address |

The program's stdout becomes the response body, status 200, with the function's
`wasm.contentType`, or else a sniffed image type (PNG, JPEG, GIF, WebP), or else
`application/octet-stream`; it travels base64-encoded (`isBase64Encoded: true`) as a Python
function's binary response does, so any bytes come back intact.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Headers not passed on: `Proxy` would become HTTP_PROXY ("httpoxy").
SKIPPED_HEADERS = frozenset({"proxy"})
_NOT_NAME = re.compile(r"[^A-Z0-9_]")


@dataclass(frozen=True)
class HttpRequest:
    body: bytes
    env: tuple[tuple[str, str], ...]


def is_api_gateway_event(event: object) -> bool:
    """A payload 1.0 (REST API) or 2.0 (HTTP API) proxy event."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        return False
    if event.get("version") == "2.0" and "routeKey" in event:
        return True
    return "httpMethod" in event


def request_from_event(payload: bytes) -> HttpRequest | None:
    """The body and CGI variables of an API Gateway event; None if `payload` is not one."""
    try:
        event: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not is_api_gateway_event(event):
        return None
    context = event["requestContext"]
    headers: list[tuple[str, str]]
    if event.get("version") == "2.0":
        http = context.get("http") or {}
        method = str(http.get("method", ""))
        path = str(event.get("rawPath", ""))
        query = str(event.get("rawQueryString", ""))
        protocol, source = http.get("protocol"), http.get("sourceIp")
        headers = [(str(k), str(v)) for k, v in (event.get("headers") or {}).items()]
        if event.get("cookies"):
            headers.append(("cookie", "; ".join(str(c) for c in event["cookies"])))
    else:
        method = str(event.get("httpMethod", ""))
        path = str(event.get("path", ""))
        multi_query = event.get("multiValueQueryStringParameters") or {}
        query = urlencode(
            [(k, v) for k, values in multi_query.items() for v in values], quote_via=quote
        )
        protocol = context.get("protocol")
        source = (context.get("identity") or {}).get("sourceIp")
        multi = event.get("multiValueHeaders") or {
            k: [v] for k, v in (event.get("headers") or {}).items()
        }
        headers = [
            (str(k), ("; " if k.lower() == "cookie" else ", ").join(map(str, vs)))
            for k, vs in multi.items()
        ]
    body = _body(event)
    env: dict[str, str] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": "",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_PROTOCOL": str(protocol or "HTTP/1.1"),
        "REMOTE_ADDR": str(source or ""),
    }
    for name, value in headers:
        lower = name.lower()
        if lower == "content-type":
            env["CONTENT_TYPE"] = value
        elif lower != "content-length" and lower not in SKIPPED_HEADERS:
            key = "HTTP_" + _NOT_NAME.sub("_", name.upper().replace("-", "_"))
            env[key] = f"{env[key]}, {value}" if key in env else value
    return HttpRequest(body, tuple(env.items()))


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body")
    if not isinstance(body, str):
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            return body.encode()
    return body.encode()


def sniff_content_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return DEFAULT_CONTENT_TYPE


def proxy_response(stdout: bytes, content_type: str | None) -> bytes:
    """The proxy response API Gateway maps back to HTTP (both payload versions)."""
    return json.dumps(
        {
            "statusCode": 200,
            "headers": {"Content-Type": content_type or sniff_content_type(stdout)},
            "body": base64.b64encode(stdout).decode("ascii"),
            "isBase64Encoded": True,
        }
    ).encode()
