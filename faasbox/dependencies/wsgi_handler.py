"""faasbox's stand-in for serverless-wsgi's handler module, copied into a service's package.

`handler(event, context)` loads the WSGI app that `.serverless-wsgi` names (`module.attr`),
builds a WSGI environ from an API Gateway event (REST payload 1.0 or HTTP API payload 2.0),
calls the app, and returns the API Gateway response. Stdlib only: it runs in the function's
environment, beside the function's own packages. Written for faasbox; not the plugin's code.
"""

import base64
import importlib
import io
import json
import os
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

_app: Callable[..., Any] | None = None
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


def _load_app() -> Callable[..., Any]:
    global _app
    if _app is None:
        root = os.environ.get("LAMBDA_TASK_ROOT") or os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(root, ".serverless-wsgi")) as f:
            spec = json.load(f)["app"]
        module_name, _, attribute = spec.rpartition(".")
        _app = getattr(importlib.import_module(module_name.replace("/", ".")), attribute)
    assert _app is not None
    return _app


def _is_v2(event: dict[str, Any]) -> bool:
    return event.get("version") == "2.0"


def _environ(event: dict[str, Any], context: Any) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
    if _is_v2(event):
        http = event.get("requestContext", {}).get("http", {})
        method = http.get("method", "GET")
        path = event.get("rawPath") or "/"
        query = event.get("rawQueryString", "")
        if event.get("cookies"):
            headers["cookie"] = "; ".join(event["cookies"])
        source_ip = http.get("sourceIp", "")
    else:
        method = event.get("httpMethod", "GET")
        path = event.get("path") or "/"
        multi = event.get("multiValueQueryStringParameters")
        single = event.get("queryStringParameters") or {}
        pairs = [(k, v) for k, vs in multi.items() for v in vs] if multi else list(single.items())
        query = urlencode(pairs)
        source_ip = event.get("requestContext", {}).get("identity", {}).get("sourceIp", "")
    body = event.get("body") or ""
    data = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    host = headers.get("host", "localhost")
    server_name, _, port = host.partition(":")
    scheme = headers.get("x-forwarded-proto", "http")
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": server_name,
        "SERVER_PORT": port or ("443" if scheme == "https" else "80"),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": source_ip,
        "CONTENT_LENGTH": str(len(data)),
        "CONTENT_TYPE": headers.get("content-type", ""),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "serverless.event": event,
        "serverless.context": context,
    }
    for name, value in headers.items():
        if name not in ("content-type", "content-length"):
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    status_headers: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[Any], exc_info: Any = None) -> None:
        status_headers["status"] = status
        status_headers["headers"] = response_headers

    result = _load_app()(_environ(event, context), start_response)
    try:
        payload = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    status = int(status_headers["status"].split(" ", 1)[0])
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in status_headers["headers"]:
        if name.lower() == "set-cookie":
            cookies.append(value)
        elif name.lower() != "content-length":  # API Gateway sets its own
            headers[name] = value
    content_type = headers.get("Content-Type", headers.get("content-type", ""))
    text = not content_type or content_type.startswith(TEXT_TYPES)
    response: dict[str, Any] = {"statusCode": status, "headers": headers}
    if text:
        response["body"] = payload.decode("utf-8")
        response["isBase64Encoded"] = False
    else:
        response["body"] = base64.b64encode(payload).decode("ascii")
        response["isBase64Encoded"] = True
    if cookies:
        if _is_v2(event):
            response["cookies"] = cookies
        else:
            response["multiValueHeaders"] = {"Set-Cookie": cookies}
    return response
