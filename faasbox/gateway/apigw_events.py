"""API Gateway's Lambda proxy events (payload 1.0 and 2.0) and the mapping of responses back.

Field by field as AWS documents them ("Working with AWS Lambda proxy integrations for HTTP
APIs" and "Set up Lambda proxy integrations in API Gateway"), and accepted by
aws-lambda-powertools' APIGatewayProxyEvent(V2) classes and parser models (tested).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from faasbox import fastjson
from faasbox.execution.body_beside import HttpEventParts
from faasbox.gateway.http import Scope
from faasbox.gateway.routes import Match
from faasbox.registry.models import ACCOUNT_ID

TEXT_TYPES = (
    "text/*",
    "application/json",
    "application/*+json",
    "application/xml",
    "application/*+xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/graphql",
)


class MalformedResponse(Exception):
    """A handler's result that API Gateway cannot turn into an HTTP response."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@functools.lru_cache(maxsize=1024)  # one per service: hashed once, not per request
def api_id(service: str | None) -> str:
    """A stable 10-character id per service, shaped like API Gateway's."""
    return hashlib.sha256((service or "faasbox").encode()).hexdigest()[:10]


def _title(name: str) -> str:
    # ASGI servers lowercase header names; most clients send them Title-Cased, as REST
    # APIs pass them on.
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


_second_formatted: tuple[int, str] = (-1, "")


def request_time(epoch: float) -> str:
    """`requestContext.time`: to the second, so formatted once per second."""
    global _second_formatted
    second = int(epoch)
    if _second_formatted[0] != second:
        text = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))
        _second_formatted = (second, text)
    return _second_formatted[1]


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def matches_media(content_type: str | None, patterns: list[str] | tuple[str, ...]) -> bool:
    media = _media_type(content_type)
    return any(fnmatch.fnmatchcase(media, p.lower()) for p in patterns) if media else False


def encode_body(body: bytes, binary: bool) -> tuple[str | None, bool]:
    """The event's body and isBase64Encoded. Bytes that are not UTF-8 are always base64, so
    no request body is ever mangled on its way to the function."""
    if not body:
        return None, False
    if not binary:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a setattr per field
class RequestFacts:
    """What both payload versions are built from."""

    method: str
    path: str  # percent-decoded, as REST's `path` and the routes see it
    raw_path: str  # as sent, for the HTTP API's `rawPath`
    raw_query: str
    headers: list[tuple[str, str]]  # lowercase names, in order
    source_ip: str
    protocol: str
    request_id: str
    epoch: float

    @classmethod
    def of(cls, scope: Scope, request_id: str) -> RequestFacts:
        client = scope.get("client") or ("127.0.0.1", 0)
        path = scope["path"]
        version = scope.get("http_version", "1.1")
        return cls(
            scope["method"],
            path,
            (scope.get("raw_path") or path.encode()).decode("latin-1"),
            scope["query_string"].decode("latin-1"),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            client[0],
            "HTTP/1.1" if version == "1.1" else f"HTTP/{version}",
            request_id,
            time.time(),
        )

    def header(self, name: str) -> str | None:
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found

    @property
    def host(self) -> str:
        return self.header("host") or "localhost"


@functools.lru_cache(maxsize=4096)  # a route's resource path: hashed once, not per request
def resource_id(path: str) -> str:
    """REST's `requestContext.resourceId`: 6 hex digits per resource path."""
    return hashlib.sha256(path.encode()).hexdigest()[:6]


def v1_multi_values(
    facts: RequestFacts,
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Payload 1.0's `multiValueHeaders` (names Title-Cased) and
    `multiValueQueryStringParameters`, in the request's order."""
    multi_headers: dict[str, list[str]] = {}
    for key, value in facts.headers:
        multi_headers.setdefault(_title(key), []).append(value)
    multi_query: dict[str, list[str]] = {}
    if facts.raw_query:
        for key, value in parse_qsl(facts.raw_query, keep_blank_values=True):
            multi_query.setdefault(key, []).append(value)
    return multi_headers, multi_query


def v1_body(
    facts: RequestFacts, body: bytes, binary_media_types: list[str], body_beside: bool
) -> tuple[str | None, bool, bool]:
    """Payload 1.0's `body` and `isBase64Encoded`, and whether the body goes beside the
    event instead (then neither key is in it)."""
    binary = matches_media(facts.header("content-type"), binary_media_types)
    if body_beside and binary and body:
        return None, True, True
    text, is_base64 = encode_body(body, binary)
    return text, is_base64, False


def v1_identity(facts: RequestFacts, api_key: str | None) -> dict[str, Any]:
    return {
        "accessKey": None,
        "accountId": None,
        "apiKey": api_key,
        "apiKeyId": None,
        "caller": None,
        "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "principalOrgId": None,
        "sourceIp": facts.source_ip,
        "user": None,
        "userAgent": facts.header("user-agent"),
        "userArn": None,
    }


def v1_event(
    facts: RequestFacts,
    match: Match,
    stage: str,
    body: bytes,
    binary_media_types: list[str],
    api_key: str | None,
    body_beside: bool = False,
) -> dict[str, Any]:
    """Payload format 1.0 (REST API `http` events). `body_beside`: a binary body is left out
    (no `body`, no `isBase64Encoded`) for `encode_event` to carry beside the rest.
    (faasbox.gateway.apigw_json writes the same event's JSON without the dict.)"""
    multi_headers, multi_query = v1_multi_values(facts)
    text, is_base64, beside = v1_body(facts, body, binary_media_types, body_beside)
    route = match.route
    domain = facts.host.split(":", 1)[0]
    event = {
        "resource": route.path,
        "path": facts.path,
        "httpMethod": facts.method,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id(route.service),
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "extendedRequestId": facts.request_id,
            "httpMethod": facts.method,
            "identity": v1_identity(facts, api_key),
            "path": f"/{stage}{facts.path}",
            "protocol": facts.protocol,
            "requestId": facts.request_id,
            "requestTime": request_time(facts.epoch),
            "requestTimeEpoch": int(facts.epoch * 1000),
            "resourceId": resource_id(route.path),
            "resourcePath": route.path,
            "stage": stage,
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }
    if beside:
        del event["body"], event["isBase64Encoded"]
    return event


def v2_headers(facts: RequestFacts) -> tuple[dict[str, str], list[str]]:
    """Payload 2.0's `headers` (repeats joined by commas) and `cookies`."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in facts.headers:
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers, cookies


def v2_query(facts: RequestFacts) -> dict[str, str]:
    """Payload 2.0's `queryStringParameters` (repeats joined by commas)."""
    query: dict[str, str] = {}
    if facts.raw_query:
        for key, value in parse_qsl(facts.raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
    return query


def v2_body(facts: RequestFacts, body: bytes, body_beside: bool) -> tuple[str | None, bool, bool]:
    """Payload 2.0's `body` (None: no key) and `isBase64Encoded`, and whether the body goes
    beside the event instead (then neither key is in it)."""
    if not body:
        return None, False, False
    content_type = facts.header("content-type")
    binary = bool(content_type) and not matches_media(content_type, TEXT_TYPES)
    if body_beside and binary:
        return None, False, True
    text, is_base64 = encode_body(body, binary)
    return text, is_base64, False


def v2_event(
    facts: RequestFacts, match: Match, body: bytes, body_beside: bool = False
) -> dict[str, Any]:
    """Payload format 2.0 (HTTP API `httpApi` events); `body_beside` as for `v1_event`."""
    headers, cookies = v2_headers(facts)
    query = v2_query(facts)
    text, is_base64, beside = v2_body(facts, body, body_beside)
    route = match.route
    domain = facts.host.split(":", 1)[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": facts.raw_path,
        "rawQueryString": facts.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": api_id(route.service),
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": facts.method,
            "path": facts.path,
            "protocol": facts.protocol,
            "sourceIp": facts.source_ip,
            "userAgent": facts.header("user-agent") or "",
        },
        "requestId": facts.request_id,
        "routeKey": route.route_key,
        "stage": "$default",
        "time": request_time(facts.epoch),
        "timeEpoch": int(facts.epoch * 1000),
    }
    if text is not None:
        event["body"] = text
    if not beside:
        event["isBase64Encoded"] = is_base64
    return event


def encode_event(event: dict[str, Any], body: bytes) -> bytes | HttpEventParts:
    """The event's JSON, or, when `v1_event`/`v2_event(body_beside=True)` left its binary
    `body` out, the JSON of the rest with `body` beside it (faasbox.execution.body_beside)."""
    if "isBase64Encoded" in event:
        return json.dumps(event).encode()
    return HttpEventParts(json.dumps(event).encode(), body)


def _decode_body(result: dict[str, Any], decoded: bytes | None) -> bytes:
    if decoded is not None:  # the worker decoded it as below (execution.body_beside)
        return decoded
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, got {type(body).__name__}")
    if result.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error as e:
            raise MalformedResponse(
                f"isBase64Encoded is true but body is not base64: {e}"
            ) from None
    return body.encode("utf-8")


def _status(result: dict[str, Any]) -> int:
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode must be an integer HTTP status, got {status!r}")
    return status


HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


# Header names already found valid: a function answers with the same few every time.
_valid_names: set[str] = set()
VALID_NAMES_KEPT = 4096


def _header(name: Any, value: Any) -> tuple[str, str]:
    """One response header, refused (502, as API Gateway would) when it cannot be sent."""
    name, value = str(name), "" if value is None else str(value)
    if name not in _valid_names:
        if not HEADER_NAME.fullmatch(name):
            raise MalformedResponse(f"header name {name!r} is not a valid HTTP token")
        if len(_valid_names) >= VALID_NAMES_KEPT:
            _valid_names.clear()
        _valid_names.add(name)
    # Printable ASCII passes BAD_VALUE at once (isprintable is False for a tab: the regex
    # decides then).
    if not (value.isascii() and value.isprintable()) and (
        BAD_VALUE.search(value) or (not value.isascii() and not _latin1(value))
    ):
        raise MalformedResponse(f"header {name!r} has a control character in its value")
    return name, value


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _headers(result: dict[str, Any]) -> list[tuple[str, str]]:
    return _headers_of(result.get("headers") or {}, result.get("multiValueHeaders") or {})


def _headers_of(single: Any, multi: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedResponse("headers and multiValueHeaders must be objects")
    for name, value in single.items():
        if isinstance(value, dict | list):
            raise MalformedResponse(f"header {name!r} must be a string")
        if name not in multi:
            out.append(_header(name, value))
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] must be a list")
        out.extend(_header(name, v) for v in values)
    return out


def v1_response(payload: bytes, body: bytes | None = None) -> HttpResponse:
    """A REST API proxy response; anything else is 'Malformed Lambda proxy response'.
    `body`: the response's body, decoded by the worker, beside a `payload` without it."""
    try:
        result = fastjson.loads(payload)
    except ValueError:
        raise MalformedResponse("the result is not JSON") from None
    if not isinstance(result, dict):
        raise MalformedResponse(f"expected an object with statusCode, got {type(result).__name__}")
    unknown = set(result) - {
        "statusCode",
        "headers",
        "multiValueHeaders",
        "body",
        "isBase64Encoded",
    }
    if unknown:
        raise MalformedResponse(f"unexpected keys {sorted(unknown)}")
    status = _status(result)
    headers = _headers(result)
    body = _decode_body(result, body)
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, body)


def v2_response(payload: bytes, body: bytes | None = None) -> HttpResponse:
    """An HTTP API response: the structured form, or any JSON value as a 200 JSON body.
    `body`: as for `v1_response` (only ever beside a structured response)."""
    try:
        result = fastjson.loads(payload)
    except ValueError:
        raise MalformedResponse("the result is not JSON") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("Content-Type", "application/json")], text.encode())
    status = _status(result)
    headers = _headers_of(result.get("headers") or {}, {})
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedResponse("cookies must be a list of strings")
    headers.extend(_header("Set-Cookie", c) for c in cookies)
    body = _decode_body(result, body)
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, body)
