"""Putting a server together: registry + invoker + gateway under uvicorn."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import uvicorn

from faasbox.gateway.app import Gateway
from faasbox.registry import Registry
from faasbox.registry.api_keys import ApiKeyStore
from faasbox.runtime.invoker import Invoker
from faasbox.runtime.settings import RuntimeSettings

LISTEN_BACKLOG = 4096


@dataclass
class Server:
    registry: Registry
    invoker: Invoker
    gateway: Gateway
    api_keys: ApiKeyStore


def build_server(settings: RuntimeSettings, registry: Registry | None = None) -> Server:
    registry = registry or Registry(settings.data_dir)
    invoker = Invoker(settings)
    api_keys = ApiKeyStore(registry.db_path)
    return Server(registry, invoker, Gateway(registry, invoker, api_keys), api_keys)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket with a large backlog; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def run(server: Server, sock: socket.socket) -> None:
    """Serve on an already-listening socket until SIGINT/SIGTERM, then stop every worker."""
    config = uvicorn.Config(
        server.gateway,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=LISTEN_BACKLOG,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=[sock])
