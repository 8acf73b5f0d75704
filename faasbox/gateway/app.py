"""The ASGI application: dispatches each request by its path prefix.

- `/2015-03-31/functions...`  the Lambda API (Invoke, and the control plane), SigV4-signed
- `/2018-10-31/layers...`     the Lambda layer API, SigV4-signed
- `/_faasbox/...`             faasbox's management API (CLI, UI), SigV4-signed but for health
- `/metrics`                 Prometheus metrics, SigV4-signed unless --metrics-public
- everything else            API Gateway routes of the deployed functions

Dispatch is a few string checks on the path: no framework router, no SQL, no disk on the hot
path. Errors raised as faasbox.errors.ServiceError become AWS-shaped responses here; anything
else becomes a 500 without a traceback in the body (the traceback goes to the server's log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from faasbox.errors import ServiceError, UnknownOperation
from faasbox.events.dispatcher import AsyncSettings, EventQueue
from faasbox.events.scheduler import Scheduler, event_invocation
from faasbox.events.sqs import QueueService
from faasbox.events.sqs_source import SqsEventSources
from faasbox.execution.invoker import Invoker
from faasbox.gateway import async_status_api, event_invoke_config_api, sqs_api
from faasbox.gateway.apigw import ApiGateway
from faasbox.gateway.collector import freeze_what_startup_made
from faasbox.gateway.console_api import server_facts
from faasbox.gateway.control_plane import ControlPlaneApi
from faasbox.gateway.http import (
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    respond_aws_error,
    respond_json,
)
from faasbox.gateway.lambda_api import InvokeApi, new_request_id, too_large_message
from faasbox.gateway.layer_api import PREFIX as LAYERS_PREFIX
from faasbox.gateway.layer_api import LayerApi
from faasbox.gateway.management import DEPLOY_BODY_LIMIT, ManagementApi
from faasbox.gateway.metrics import PATH as METRICS_PATH
from faasbox.gateway.metrics import serve_metrics
from faasbox.gateway.observe import observed
from faasbox.gateway.routes import claim_routes
from faasbox.gateway.sigv4 import SigV4Authenticator
from faasbox.gateway.ui import PREFIX as UI_PREFIX
from faasbox.gateway.ui import StaticUi, redirect
from faasbox.lambda_.limits import SYNC_PAYLOAD_LIMIT
from faasbox.registry import DeployChange, Registry
from faasbox.registry.api_keys import ApiKeyStore
from faasbox.registry.follower import RevisionFollower

log = logging.getLogger("faasbox.gateway")

LAMBDA_PREFIX = "/2015-03-31/functions"
STREAM_PREFIX = "/2021-11-15/functions/"  # InvokeWithResponseStream
STREAM_SUFFIX = "/response-streaming-invocations"
MANAGEMENT_PREFIX = "/_faasbox/"
PUBLIC_MANAGEMENT = ("/_faasbox/health",)
UI_FACTS = UI_PREFIX + "server.json"  # what the page needs before it signs anything
CONTROL_BODY_LIMIT = DEPLOY_BODY_LIMIT  # CreateFunction carries the zip base64 in JSON
UPLOAD_BYTES = 1 << 20  # a body over this (or of unknown size) to those APIs waits its turn


class Authenticator(Protocol):
    """Checks a request's signature in two steps, raising a 403: what needs no body (before
    the body is read), then the signature over the body (returns the access key id)."""

    def precheck(self, scope: Scope) -> Any: ...

    def verify_body(self, scope: Scope, checked: Any, body: bytes) -> str: ...


class Gateway:
    def __init__(
        self,
        registry: Registry,
        invoker: Invoker,
        api_keys: ApiKeyStore,
        authenticator: Authenticator | None = None,
        iam: SigV4Authenticator | None = None,
        sqs_authenticator: Authenticator | None = None,
        *,
        metrics_public: bool = False,
    ) -> None:
        self.registry = registry
        self.invoker = invoker
        self.authenticator = authenticator
        self.events = EventQueue(
            registry,
            invoker,
            AsyncSettings(
                invoker.settings.async_retry_delay_s, max_in_flight=invoker.budget.concurrency
            ),
        )
        self.invoke_api = InvokeApi(registry, invoker, self.events)
        self.event_invoke_configs = event_invoke_config_api.EventInvokeConfigApi(
            registry, self.events.configs
        )
        # SQS queues: on the same durable store, signed for service `sqs`.
        self.queues = QueueService(registry.database, self.events.store)
        self.events.queues = self.queues
        self.sqs_api = sqs_api.SqsApi(self.queues)
        self.sqs_sources = SqsEventSources(registry, invoker, self.queues)
        self.sqs_authenticator = sqs_authenticator
        self.schedules = Scheduler(registry, event_invocation(self.events))
        self.management = ManagementApi(registry, invoker, api_keys, self.schedules)
        self.control_plane = ControlPlaneApi(registry, invoker)
        self.layer_api = LayerApi(registry)
        self.api_gateway = ApiGateway(registry, invoker, api_keys, iam)
        self.ui = StaticUi()
        self.metrics_public = metrics_public  # /metrics unsigned (for a Prometheus scraper)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._uploads: asyncio.Semaphore | None = None
        registry.on_change(self._on_deploy)
        # Other gateways on the same database: their deploys, keys and configs, here too.
        self.follower = RevisionFollower(
            registry.database, [registry.refresh, api_keys.reload, self.events.configs.reload]
        )
        # Deploys check their routes against other services' (routes are the gateway's).
        registry.route_guard = claim_routes

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
        self.api_gateway.recompile()
        self.sqs_sources.refresh()  # declared queues created, sqs event pollers (re)started
        # New invocations get the new code at once; workers of the old code finish what
        # they are running and are then retired.
        by_name = {f.name: f for f in change.deployed}
        for name in change.changed:
            self.invoker.drain(name, keep=by_name.get(name))
            if name not in by_name:
                continue
            if self._loop is not None:  # before startup: at startup
                self.invoker.provision(by_name[name])
        for name in change.removed:
            self.invoker.drain(name)
        for name, version in change.removed_versions:
            # A deleted published version: its workers stop (they are invoked no more).
            self.invoker.retire(name, version)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await observed(scope, receive, send, self._http, new_request_id())
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        path: str = scope["path"]
        try:
            if path.startswith(LAMBDA_PREFIX):
                await self._lambda_api(scope, receive, send, path[len(LAMBDA_PREFIX) :], request_id)
            elif path.startswith(LAYERS_PREFIX):
                async with self._upload_turn(scope):
                    body = await self._authenticated_body(
                        scope, receive, CONTROL_BODY_LIMIT, "Request too large"
                    )
                    await self.layer_api(scope, send, path[len(LAYERS_PREFIX) :], request_id, body)
            elif path.startswith(STREAM_PREFIX):
                await self._stream_api(scope, receive, send, path[len(STREAM_PREFIX) :], request_id)
            elif path.startswith(event_invoke_config_api.PREFIX):
                body = await self._authenticated_body(scope, receive, 1 << 20, "Request too large")
                rest = path[len(event_invoke_config_api.PREFIX) :]
                await self.event_invoke_configs(scope, send, rest, request_id, body)
            elif path.startswith(async_status_api.PREFIX):
                await self._authenticated_body(scope, receive, 1 << 20, "Request too large")
                await async_status_api.serve_async_status(scope, send, self.events)
            elif path.startswith(MANAGEMENT_PREFIX):
                async with self._upload_turn(scope):
                    if path not in PUBLIC_MANAGEMENT:
                        body = await self._authenticated_body(
                            scope, receive, DEPLOY_BODY_LIMIT, "Request too large"
                        )
                    else:
                        body = b""
                    await self.management(scope, send, path[len(MANAGEMENT_PREFIX) :], body)
            elif sqs_api.is_sqs_request(scope):
                try:
                    body = await self._authenticated_body(
                        scope,
                        receive,
                        sqs_api.BODY_LIMIT,
                        "Request too large",
                        self.sqs_authenticator,
                    )
                except ServiceError as e:  # refused before the operation: in SQS's shape too
                    await sqs_api.respond_error(send, request_id, e)
                    return
                await self.sqs_api(scope, send, request_id, body)
            elif path == UI_FACTS:
                auth = self.authenticator is not None
                await server_facts(scope, send, self.api_gateway.table, auth)
            elif path == "/ui" or path.startswith(UI_PREFIX):
                await self.ui(scope, send)
            elif path == METRICS_PATH and scope["method"] == "GET":
                if not self.metrics_public:
                    await self._authenticated_body(scope, receive, 0, "Request too large")
                await serve_metrics(send, self.invoker.metrics)
            elif not await self.api_gateway(scope, receive, send, request_id):
                if path == "/" and scope["method"] in ("GET", "HEAD"):
                    await redirect(send, UI_PREFIX)  # no function claims "/": the page
                else:
                    await self.api_gateway.not_found(send)
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

    async def _lambda_api(
        self, scope: Scope, receive: Receive, send: Send, rest: str, request_id: str
    ) -> None:
        parts = rest.strip("/").split("/")
        if len(parts) == 2 and parts[1] == "invocations" and scope["method"] == "POST":
            body = await self._authenticated_body(
                scope, receive, SYNC_PAYLOAD_LIMIT, too_large_message(SYNC_PAYLOAD_LIMIT)
            )
            await self.invoke_api(scope, send, parts[0], request_id, body)
            return
        async with self._upload_turn(scope):
            body = await self._authenticated_body(
                scope, receive, CONTROL_BODY_LIMIT, "Request too large"
            )
            await self.control_plane(scope, send, [p for p in parts if p], request_id, body)

    @contextlib.asynccontextmanager
    async def _upload_turn(self, scope: Scope) -> AsyncIterator[None]:
        """Code uploads (deploys, CreateFunction, UpdateFunctionCode) are held in memory
        while they are checked, a few times their size: one at a time, so concurrent ones
        do not add up. Smaller requests never wait for one."""
        declared = header(scope, b"content-length")
        small = declared is not None and declared.isdigit() and int(declared) <= UPLOAD_BYTES
        if small or scope["method"] not in ("POST", "PUT"):
            yield
            return
        if self._uploads is None:  # created on the server's loop
            self._uploads = asyncio.Semaphore(1)
        async with self._uploads:
            yield

    async def _stream_api(
        self, scope: Scope, receive: Receive, send: Send, rest: str, request_id: str
    ) -> None:
        name = rest[: -len(STREAM_SUFFIX)] if rest.endswith(STREAM_SUFFIX) else ""
        if not name or "/" in name or scope["method"] != "POST":
            raise UnknownOperation(f"faasbox does not serve {scope['method']} {scope['path']}")
        body = await self._authenticated_body(
            scope, receive, SYNC_PAYLOAD_LIMIT, too_large_message(SYNC_PAYLOAD_LIMIT)
        )
        await self.invoke_api.stream(scope, send, name, request_id, body)

    async def _authenticated_body(
        self,
        scope: Scope,
        receive: Receive,
        limit: int,
        too_large: str,
        authenticator: Authenticator | None = None,
    ) -> bytes:
        """The body of a request to a signed API; an unsigned or unknown caller is refused
        before a byte of it is buffered. `authenticator`: another API's (SQS's) instead of
        the Lambda API's (both are None when auth is off)."""
        auth = authenticator or self.authenticator
        if auth is None:
            return await read_body(scope, receive, limit, too_large)
        checked = auth.precheck(scope)
        body = await read_body(scope, receive, limit, too_large)
        auth.verify_body(scope, checked, body)
        return body

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self.invoker.start(self.registry.all())  # zygotes preload while we wait
                self.events.start()
                self.sqs_sources.start()
                self.schedules.start()
                self.follower.start()
                freeze_what_startup_made()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.follower.close()
                await self.schedules.close()
                await self.sqs_sources.close()
                await self.events.close()
                self.queues.close()
                await self.invoker.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
