"""The Dapr "sidecar" of a faasbox server: its building blocks (state, invocation, pub/sub),
its two listeners (HTTP on a socket of the server's uvicorn, gRPC on its own server in the
same event loop), and what functions are told of it (DAPR_HTTP_PORT, ...).

One sidecar serves every function of the server, with one app id (`--dapr-app-id`, default
"faasbox"): state keys are `faasbox||key` unless a component sets `keyPrefix`. Service
invocation names the callee's serverless.yml service as its app id.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

from faasbox.dapr.components import Component, load_components
from faasbox.dapr.invoke import ServiceInvocation
from faasbox.dapr.pubsub import PubSub
from faasbox.dapr.settings import DaprSettings
from faasbox.dapr.state import CAPABILITIES
from faasbox.dapr.state_api import StateApi
from faasbox.execution.platform_env import set_platform_environment
from faasbox.gateway.http import Receive, Scope, Send

log = logging.getLogger("faasbox.dapr")

RUNTIME_VERSION = "faasbox"


def free_port(host: str, wanted: int = 0) -> int:
    """`wanted` if it is free on `host` (0: any free port), else OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, wanted))
        port: int = sock.getsockname()[1]
        return port


class Sidecar:
    def __init__(
        self, settings: DaprSettings, gateway: Any, data_dir: Path, http_socket: socket.socket
    ) -> None:
        """`gateway`: the server's faasbox.gateway.app.Gateway (its registry, invoker and
        API Gateway routes); `http_socket`: where the HTTP API listens (uvicorn serves it)."""
        self.settings = settings
        self.components: list[Component] = load_components(
            [d for d in settings.component_dirs if d.is_dir()]
        )
        self.state = StateApi(settings.app_id, self.components, data_dir, gateway.registry.database)
        self.invocation = ServiceInvocation(gateway.registry, gateway.api_gateway)
        events = gateway.events  # the durable queue pub/sub delivers through
        self.pubsub = PubSub(
            settings.app_id,
            self.components,
            gateway.registry,
            gateway.invoker,
            events.store,
            events.settings.max_in_flight,
        )
        self.gateway = gateway
        self.http_socket = http_socket
        self.http_port: int = http_socket.getsockname()[1]
        self.grpc_port = settings.grpc_port or free_port(settings.host)
        self._grpc: Any = None
        from faasbox.dapr.http_api import DaprHttpApi

        self.http_api = DaprHttpApi(self)

    def environment(self) -> dict[str, str]:
        """What a function is told: as `dapr run` tells an app."""
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return {
            "APP_ID": self.settings.app_id,
            "DAPR_HTTP_PORT": str(self.http_port),
            "DAPR_GRPC_PORT": str(self.grpc_port),
            "DAPR_HTTP_ENDPOINT": f"http://{host}:{self.http_port}",
            "DAPR_GRPC_ENDPOINT": f"{host}:{self.grpc_port}",
        }

    def metadata(self) -> dict[str, Any]:
        stores = [
            {"name": c.name, "type": c.type, "version": "v1", "capabilities": CAPABILITIES}
            for c in self.state.components.values()
        ]
        pubsubs = [
            {"name": name, "type": "pubsub.faasbox", "version": "v1", "capabilities": []}
            for name in sorted(self.pubsub.names)
        ]
        subscriptions = [
            {
                "pubsubname": s.pubsub,
                "topic": s.topic,
                "deadLetterTopic": s.dead_letter_topic or "",
                "rules": [{"path": f"function:{s.function}"}],
                "type": "DECLARATIVE",
            }
            for s in self.pubsub.subscriptions()
        ]
        return {
            "id": self.settings.app_id,
            "runtimeVersion": RUNTIME_VERSION,
            "enabledFeatures": [],
            "components": stores + pubsubs,
            "subscriptions": subscriptions,
            "httpEndpoints": [],
            "extended": {"appIds": ",".join(self.invocation.app_ids())},
        }

    def wrap(self, app: Any) -> Any:
        """`app` on its own sockets, this sidecar's HTTP API on `http_socket` (both served
        by one uvicorn), and the gRPC API started and stopped with `app`'s lifespan."""
        return PortDispatch(app, self)

    async def start(self) -> None:
        self.pubsub.start()  # after the gateway's start: its event store is open
        try:  # the protos come with the dapr SDK (the examples extra installs it)
            from faasbox.dapr.grpc_api import start_grpc_server
        except ImportError as e:
            log.warning("Dapr's gRPC API is off: %s (pip install -e '.[examples]')", e)
            return
        try:
            self._grpc = await start_grpc_server(self, self.settings.host, self.grpc_port)
        except RuntimeError as e:  # the port checked free at start was taken since
            log.warning("Dapr's gRPC API: port %d: %s; a free port instead", self.grpc_port, e)
            self.grpc_port = free_port(self.settings.host)
            self._grpc = await start_grpc_server(self, self.settings.host, self.grpc_port)
            set_platform_environment(self.environment())

    async def stop(self) -> None:
        await self.pubsub.stop()
        if self._grpc is not None:
            await self._grpc.stop(grace=1)
        self.state.close()


class PortDispatch:
    def __init__(self, app: Any, sidecar: Sidecar) -> None:
        self.app = app
        self.sidecar = sidecar

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        server = scope.get("server")
        if server is not None and server[1] == self.sidecar.http_port:
            await self.sidecar.http_api(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.sidecar.stop()
            return message

        async def send_(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete":
                await self.sidecar.start()
            await send(message)

        await self.app(scope, receive_, send_)
