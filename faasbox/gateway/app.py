"""The ASGI application: dispatches each request to the Lambda API or the management API.

Dispatch is a few string checks on the path: no framework router, no SQL, no disk on the
hot path. Errors raised as faasbox.errors.ServiceError become AWS-shaped responses here;
anything else becomes a 500 without a traceback in the body (the traceback goes to the log).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faasbox.errors import ServiceError
from faasbox.gateway.http import (
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    respond_aws_error,
    respond_json,
)
from faasbox.gateway.lambda_api import InvokeApi, new_request_id
from faasbox.gateway.management import ManagementApi
from faasbox.registry import DeployChange, Registry
from faasbox.runtime.invoker import Invoker

log = logging.getLogger("faasbox.gateway")

LAMBDA_PREFIX = "/2015-03-31/functions/"
MANAGEMENT_PREFIX = "/_faasbox/"


class Gateway:
    def __init__(self, registry: Registry, invoker: Invoker) -> None:
        self.registry = registry
        self.invoker = invoker
        self.invoke_api = InvokeApi(registry, invoker)
        self.management = ManagementApi(registry, invoker)
        self._loop: asyncio.AbstractEventLoop | None = None
        registry.on_change(self._on_deploy)

    def _on_deploy(self, change: DeployChange) -> None:
        # Deploys run in a thread (they copy code); pools live on the event loop.
        if self._loop is not None and self._loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not self._loop:
                self._loop.call_soon_threadsafe(self._drain_changed, change)
                return
        self._drain_changed(change)

    def _drain_changed(self, change: DeployChange) -> None:
        # New invocations get the new code at once; workers of the old code finish what
        # they are running and are then retired.
        pools = self.invoker.pools
        by_name = {f.name: f for f in change.deployed}
        for name in change.changed:
            pools.drain(name, keep=by_name.get(name))
        for name in change.removed:
            pools.drain(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        request_id = new_request_id()
        try:
            if path.startswith(LAMBDA_PREFIX):
                rest = path[len(LAMBDA_PREFIX) :]
                name, _, tail = rest.partition("/")
                if tail == "invocations" and scope["method"] == "POST":
                    await self.invoke_api(scope, receive, send, name, request_id)
                    return
            elif path.startswith(MANAGEMENT_PREFIX):
                await self.management(scope, receive, send, path[len(MANAGEMENT_PREFIX) :])
                return
            await respond_json(send, 404, {"message": "Not Found"})
        except ServiceError as e:
            await respond_aws_error(send, e, request_id)
        except ClientDisconnected:
            return
        except Exception:
            log.exception("unexpected error serving %s %s", scope["method"], path)
            await respond_json(
                send,
                500,
                {"Type": "Service", "Message": "Internal server error", "requestId": request_id},
                [(b"x-amzn-errortype", b"ServiceException")],
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.invoke_api.close()
                await self.invoker.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
