"""Dapr's HTTP API (`daprd`'s port 3500) as an ASGI app: service invocation, state, pub/sub,
health and metadata, answering with Dapr's status codes, ETag headers and error bodies
`{"errorCode": ..., "message": ...}`."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import urllib.parse
from typing import Any

from faasbox.dapr.errors import DaprError, malformed
from faasbox.dapr.sidecar import Sidecar
from faasbox.dapr.state import FIRST_WRITE, LAST_WRITE, DeleteRequest, Item, Operation, SetRequest
from faasbox.errors import RequestTooLarge
from faasbox.gateway.http import (
    ClientDisconnected,
    Headers,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    respond,
    respond_json,
)
from faasbox.lambda_.limits import SYNC_PAYLOAD_LIMIT

log = logging.getLogger("faasbox.dapr")

API = "/v1.0/"
ALPHA = "/v1.0-alpha1/"
BODY_LIMIT = SYNC_PAYLOAD_LIMIT


class DaprHttpApi:
    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except DaprError as e:
            await respond_json(send, e.status, e.body())
        except RequestTooLarge:
            await respond_json(
                send, 413, {"errorCode": "ERR_BODY_TOO_LARGE", "message": "request too large"}
            )
        except ClientDisconnected:
            return
        except Exception:
            log.exception("dapr: unexpected error serving %s %s", scope["method"], scope["path"])
            await respond_json(
                send, 500, {"errorCode": "ERR_INTERNAL", "message": "internal error (see the log)"}
            )

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        app_id = header(scope, b"dapr-app-id")
        if app_id is not None and not path.startswith(API):  # the header form of invocation
            await self._invoke(scope, receive, send, app_id, path)
            return
        if path.startswith(ALPHA) and method in ("POST", "PUT"):
            parts = path[len(ALPHA) :].split("/")
            if len(parts) == 3 and parts[0] == "state" and parts[2] == "query":
                body = _json(await read_body(scope, receive, BODY_LIMIT, ""))
                await respond_json(send, 200, await self.sidecar.state.query(parts[1], body))
                return
        if not path.startswith(API):
            raise DaprError(404, "ERR_NOT_FOUND", f"{method} {path} is not one of Dapr's APIs")
        parts = [urllib.parse.unquote(p) for p in path[len(API) :].split("/")]
        head = parts[0]
        if head == "invoke" and len(parts) >= 3 and parts[2] == "method":
            rest = path[len(API) :].split("/", 3)[3] if len(parts) > 3 else ""
            await self._invoke(scope, receive, send, parts[1], rest)
        elif head == "state" and len(parts) >= 2:
            await self._state(scope, receive, send, method, parts[1:])
        elif head == "publish" and len(parts) >= 3 and method == "POST":
            await self._publish(scope, receive, send, parts[1], "/".join(parts[2:]))
        elif head == "healthz" and method == "GET" and parts[1:] in ([], ["outbound"]):
            await respond(send, 204, b"", None)
        elif head == "metadata" and method == "GET" and len(parts) == 1:
            await respond_json(send, 200, self.sidecar.metadata())
        else:
            raise DaprError(404, "ERR_NOT_FOUND", f"{method} {path} is not one of Dapr's APIs")

    async def _invoke(
        self, scope: Scope, receive: Receive, send: Send, app_id: str, rest: str
    ) -> None:
        body = await read_body(scope, receive, BODY_LIMIT, "")
        reply = await self.sidecar.invocation.invoke(
            app_id, scope["method"], rest, scope.get("query_string", b""), scope["headers"], body
        )
        await respond(send, reply.status, reply.body, None, reply.headers)

    # -- state ---------------------------------------------------------------------------

    async def _state(
        self, scope: Scope, receive: Receive, send: Send, method: str, parts: list[str]
    ) -> None:
        store, rest = parts[0], parts[1:]
        state = self.sidecar.state
        if method == "POST" and not rest:
            items = _json(await read_body(scope, receive, BODY_LIMIT, ""))
            if not isinstance(items, list):
                raise malformed("expected a JSON list of {key, value, etag, options, metadata}")
            await state.save(store, [_set_request(item) for item in items])
            await respond(send, 204, b"", None)
        elif method == "POST" and rest == ["bulk"]:
            request = _json(await read_body(scope, receive, BODY_LIMIT, ""))
            keys = request.get("keys") if isinstance(request, dict) else None
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise malformed('expected {"keys": ["key", ...]}')
            found = await state.bulk_get(store, keys)
            await respond_json(send, 200, [_bulk_entry(key, item) for key, item in found])
        elif method == "POST" and rest == ["transaction"]:
            request = _json(await read_body(scope, receive, BODY_LIMIT, ""))
            ops = request.get("operations") if isinstance(request, dict) else None
            if not isinstance(ops, list):
                raise malformed('expected {"operations": [{"operation": ..., "request": ...}]}')
            await state.transact(store, [_operation(op) for op in ops])
            await respond(send, 204, b"", None)
        elif method == "GET" and len(rest) == 1:
            item = await state.get(store, rest[0])
            if item is None:  # (an unknown store raised: a missing key is a 204)
                await respond(send, 204, b"", None)
                return
            await respond(send, 200, item.value, b"application/json", _item_headers(item))
        elif method == "DELETE" and len(rest) == 1:
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
            concurrency = (query.get("concurrency") or [LAST_WRITE])[0]
            etag = header(scope, b"if-match")
            await state.delete(
                store, DeleteRequest(rest[0], etag or None, _first_write(concurrency))
            )
            await respond(send, 204, b"", None)
        else:
            raise DaprError(
                404, "ERR_NOT_FOUND", f"{method} /v1.0/state/{'/'.join(parts)} is not a state API"
            )

    async def _publish(
        self, scope: Scope, receive: Receive, send: Send, pubsub: str, topic: str
    ) -> None:
        body = await read_body(scope, receive, BODY_LIMIT, "")
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
        raw = (query.get("metadata.rawPayload") or ["false"])[0].lower() == "true"
        content_type = header(scope, b"content-type") or "application/json"
        self.sidecar.pubsub.publish(pubsub, topic, body, content_type, raw)
        await respond(send, 204, b"", None)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as e:
        raise malformed(f"the body is not JSON: {e}") from None


def _first_write(concurrency: object) -> bool:
    if concurrency in (None, "", LAST_WRITE):
        return False
    if concurrency == FIRST_WRITE:
        return True
    raise malformed(f"concurrency must be {FIRST_WRITE} or {LAST_WRITE}, got {concurrency!r}")


def _options(request: dict[str, Any]) -> tuple[str | None, bool, dict[str, Any]]:
    key = request.get("key")
    if not isinstance(key, str):
        raise malformed(f"each state item needs a string key, got {json.dumps(key)}")
    etag = request.get("etag")
    if etag is not None and not isinstance(etag, str):
        raise malformed(f"key {key}: etag must be a string")
    options = request.get("options") or {}
    metadata = request.get("metadata") or {}
    if not isinstance(options, dict) or not isinstance(metadata, dict):
        raise malformed(f"key {key}: options and metadata must be objects")
    return etag or None, _first_write(options.get("concurrency")), metadata


def _set_request(item: object) -> SetRequest:
    if not isinstance(item, dict):
        raise malformed("each state item must be an object {key, value, ...}")
    etag, first_write, metadata = _options(item)
    return SetRequest(
        item["key"],
        json.dumps(item.get("value"), separators=(",", ":")).encode(),
        etag,
        first_write,
        _ttl(metadata),
    )


def _ttl(metadata: dict[str, Any]) -> int | None:
    value = metadata.get("ttlInSeconds")
    if value is None:
        return None
    try:
        ttl = int(value)
    except (TypeError, ValueError):
        raise malformed(f"metadata.ttlInSeconds must be an integer, got {value!r}") from None
    if ttl < -1:
        raise malformed(f"metadata.ttlInSeconds must be -1 or more, got {ttl}")
    return ttl


def _operation(op: object) -> Operation:
    if not isinstance(op, dict) or not isinstance(op.get("request"), dict):
        raise malformed('each operation must be {"operation": ..., "request": {...}}')
    kind, request = op.get("operation"), op["request"]
    if kind == "upsert":
        return _set_request(request)
    if kind == "delete":
        etag, first_write, _ = _options(request)
        return DeleteRequest(request["key"], etag, first_write)
    raise DaprError(
        400,
        "ERR_NOT_SUPPORTED_STATE_OPERATION",
        f"operation type {kind} not supported (upsert or delete)",
    )


def _item_headers(item: Item) -> Headers:
    headers = [(b"etag", item.etag.encode())]
    if item.expires_at is not None:
        when = datetime.datetime.fromtimestamp(item.expires_at, datetime.UTC)
        headers.append((b"metadata.ttlexpiretime", when.isoformat().encode()))
    return headers


def _bulk_entry(key: str, item: Item | None) -> dict[str, Any]:
    if item is None:
        return {"key": key}
    try:
        data: Any = json.loads(item.value)
    except ValueError:  # bytes saved through gRPC that are not JSON
        try:
            data = item.value.decode()
        except UnicodeDecodeError:
            data = base64.b64encode(item.value).decode()
    return {"key": key, "data": data, "etag": item.etag}
