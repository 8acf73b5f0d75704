"""Where and as what the server's Dapr APIs listen (set by `faasbox serve --dapr-*`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HTTP_PORT = 3500  # daprd's
DEFAULT_GRPC_PORT = 50001  # daprd's
DEFAULT_APP_ID = "faasbox"


@dataclass
class DaprSettings:
    host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    app_id: str = DEFAULT_APP_ID
    component_dirs: list[Path] = field(default_factory=list)
