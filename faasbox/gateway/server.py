"""Putting a server together: registry + invoker + gateway under uvicorn."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

from faasbox.execution.invoker import Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.gateway.app import Gateway
from faasbox.gateway.edge import edge_protocol
from faasbox.gateway.edge_limits import EdgeLimits, raise_fd_limit
from faasbox.gateway.sigv4 import IAM_SERVICE, SigV4Authenticator
from faasbox.registry import Registry
from faasbox.registry.access_keys import AccessKeyStore
from faasbox.registry.api_keys import ApiKeyStore

LISTEN_BACKLOG = 4096


@dataclass
class Server:
    registry: Registry
    invoker: Invoker
    gateway: Gateway
    api_keys: ApiKeyStore
    # The SigV4 access keys of the Lambda and management APIs; None when auth is off.
    access_keys: AccessKeyStore | None = None
    # Dapr's APIs (faasbox.dapr.sidecar.Sidecar), when the CLI turned them on.
    dapr: Any = None


def build_server(
    settings: RuntimeSettings,
    registry: Registry | None = None,
    *,
    auth: bool = True,
    metrics_public: bool = False,
) -> Server:
    """A server whose Lambda and management APIs need SigV4 signatures, unless `auth` is off
    (local development only: anyone who can reach the port can then deploy and run code)."""
    registry = registry or Registry(settings.data_dir, settings.database)
    invoker = Invoker(settings)
    api_keys = ApiKeyStore(registry.database)
    access_keys = AccessKeyStore(settings.data_dir, registry.database) if auth else None
    authenticator = SigV4Authenticator(access_keys) if access_keys is not None else None
    # `aws_iam` routes: the same access keys, signed for API Gateway's service.
    iam = SigV4Authenticator(access_keys, service=IAM_SERVICE) if access_keys is not None else None
    sqs = SigV4Authenticator(access_keys, service="sqs") if access_keys is not None else None
    gateway = Gateway(
        registry, invoker, api_keys, authenticator, iam, sqs, metrics_public=metrics_public
    )
    return Server(registry, invoker, gateway, api_keys, access_keys)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket with a large backlog; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def run(server: Server, sock: socket.socket, limits: EdgeLimits | None = None) -> None:
    """Serve on an already-listening socket until SIGINT/SIGTERM, then stop every worker."""
    limits = limits or EdgeLimits()
    # Each connection is a file descriptor: take what the hard limit allows, and keep the
    # connection cap below it, so the excess is refused instead of failing accept().
    max_connections = limits.connection_cap(raise_fd_limit())
    app: Any = server.gateway
    sockets = [sock]
    if server.dapr is not None:  # Dapr's HTTP API: another socket of the same uvicorn
        app = server.dapr.wrap(server.gateway)
        sockets.append(server.dapr.http_socket)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        # uvicorn's httptools protocol, with a header timeout, head size and connection caps.
        http=edge_protocol(limits, max_connections),
        lifespan="on",
        access_log=False,
        # faasbox faces clients itself: X-Forwarded-For is theirs to forge, not a proxy's word.
        proxy_headers=False,
        log_level="warning",
        backlog=LISTEN_BACKLOG,
        timeout_keep_alive=limits.keep_alive_timeout_s,  # type: ignore[arg-type]
        # uvicorn's own 503 past this many connections or requests in flight; the edge
        # protocol refuses connections over the cap before (this one counts the refused).
        limit_concurrency=max_connections + 1,
        # Only read by uvicorn's h11 protocol; kept equal for anyone who switches to it.
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=sockets)
