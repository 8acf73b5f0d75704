"""Dapr's service invocation on faasbox: an app id is a serverless.yml service, and a method
path is matched against that service's `http`/`httpApi` routes. The call goes through the API
Gateway in-process (its authorizers, API keys and events as for any HTTP client); the callee's
status, headers and body come back unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faasbox.dapr.errors import DaprError
from faasbox.gateway.apigw import ApiGateway
from faasbox.gateway.http import Message
from faasbox.gateway.lambda_api import new_request_id
from faasbox.registry import Registry

# Hop-by-hop headers and Dapr's own are not the callee's business.
DROPPED_HEADERS = frozenset({b"host", b"content-length", b"connection", b"dapr-app-id"})


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> str | None:
        return next((v.decode("latin-1") for k, v in self.headers if k == name), None)


class ServiceInvocation:
    def __init__(self, registry: Registry, api_gateway: ApiGateway) -> None:
        self.registry = registry
        self.api_gateway = api_gateway

    def app_ids(self) -> list[str]:
        return sorted({f.config.service for f in self.registry.all() if f.config.service})

    async def invoke(
        self,
        app_id: str,
        method: str,
        path: str,
        query: bytes = b"",
        headers: Sequence[tuple[bytes, bytes]] = (),
        body: bytes = b"",
    ) -> Reply:
        """Call `method /path` of the service `app_id`."""
        if app_id not in self.app_ids():
            raise DaprError(
                500,
                "ERR_DIRECT_INVOKE",
                f"failed to invoke, id: {app_id}, err: no serverless.yml service named "
                f"{app_id!r} is deployed (services: {', '.join(self.app_ids()) or 'none'})",
            )
        path = "/" + path.lstrip("/")
        match = self.api_gateway.table.match(method, path)
        if match is None or match.route.service != app_id:
            # What the callee would answer: no route of its own serves that path.
            return Reply(404, [(b"content-type", b"application/json")], b'{"message":"Not Found"}')
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [
                *((k, v) for k, v in headers if k not in DROPPED_HEADERS),
                (b"host", b"localhost"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        reply = Reply(500, [], b"")
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                reply.status = message["status"]
                reply.headers = [
                    (k, v) for k, v in message.get("headers", []) if k != b"content-length"
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.api_gateway(scope, receive, send, new_request_id())
        reply.body = b"".join(chunks)
        return reply
