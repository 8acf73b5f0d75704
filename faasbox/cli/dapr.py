"""`faasbox serve`'s Dapr options, and turning Dapr's APIs on for a server (docs/dapr.md)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from faasbox.dapr.settings import DEFAULT_APP_ID, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DaprSettings
from faasbox.errors import FaasboxError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class DaprUnavailable(FaasboxError):
    """Dapr's APIs cannot listen where they were asked to."""


def dapr_options(f: F) -> F:
    """Adds --dapr-* options; the command receives them as one `dapr: DaprSettings | None`."""

    @functools.wraps(f)
    def wrapper(
        *args: Any,
        dapr_http_port: int | None,
        dapr_grpc_port: int | None,
        dapr_app_id: str,
        dapr_components: tuple[Path, ...],
        no_dapr: bool,
        **kwargs: Any,
    ) -> Any:
        kwargs["dapr"] = (
            None
            if no_dapr
            else DaprSettings(
                http_port=DEFAULT_HTTP_PORT if dapr_http_port is None else dapr_http_port,
                grpc_port=DEFAULT_GRPC_PORT if dapr_grpc_port is None else dapr_grpc_port,
                app_id=dapr_app_id,
                component_dirs=list(dapr_components),
            )
        )
        # Ports asked for explicitly must be had; the defaults give way to a free port.
        kwargs["dapr_ports_required"] = (dapr_http_port is not None, dapr_grpc_port is not None)
        return f(*args, **kwargs)

    options = [
        click.option(
            "--dapr-http-port",
            type=click.IntRange(min=0, max=65535),
            default=None,
            help=f"Dapr's HTTP API (default {DEFAULT_HTTP_PORT}, or a free port if taken; 0: any).",
        ),
        click.option(
            "--dapr-grpc-port",
            type=click.IntRange(min=0, max=65535),
            default=None,
            help=f"Dapr's gRPC API (default {DEFAULT_GRPC_PORT}, or a free port if taken; 0: any).",
        ),
        click.option(
            "--dapr-app-id",
            default=DEFAULT_APP_ID,
            show_default=True,
            help="The app id of the server's Dapr APIs (state keys are APPID||key).",
        ),
        click.option(
            "--dapr-components",
            multiple=True,
            type=click.Path(path_type=Path, file_okay=False),
            help="A folder of Dapr component files (*.yaml); default: each served "
            "directory's components/ folder.",
        ),
        click.option("--no-dapr", is_flag=True, help="Do not serve Dapr's APIs."),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def start_dapr(
    server: Any,
    settings: DaprSettings,
    directories: list[Path],
    required: tuple[bool, bool],
    out: Console,
) -> None:
    """Give `server` Dapr's APIs: bind the HTTP socket (the gRPC one binds at startup), tell
    functions where they are, and print them."""
    from faasbox.dapr.sidecar import Sidecar, free_port
    from faasbox.execution.platform_env import set_platform_environment
    from faasbox.gateway.server import bind_socket

    if not settings.component_dirs:  # a served folder's components/, or its services'
        settings.component_dirs = [
            *(d / "components" for d in directories),
            *(s / "components" for d in directories if d.is_dir() for s in sorted(d.iterdir())),
        ]
    host = settings.host
    wanted = (settings.http_port, settings.grpc_port)
    http_socket = _listen(
        lambda port: bind_socket(host, port), settings.http_port, required[0], host, "HTTP"
    )
    settings.grpc_port = _listen(
        lambda port: free_port(host, port), settings.grpc_port, required[1], host, "gRPC"
    )
    sidecar = Sidecar(settings, server.gateway, server.registry.data_dir, http_socket)
    server.dapr = sidecar
    set_platform_environment(sidecar.environment())
    stores = ", ".join(f"{c.name} ({c.type})" for c in sidecar.state.components.values())
    out.print(
        f"Dapr HTTP API on http://{host}:{sidecar.http_port}, "
        f"gRPC API on {host}:{sidecar.grpc_port}  (state stores: {stores})"
    )
    taken = [str(p) for p in wanted if p and p not in (sidecar.http_port, sidecar.grpc_port)]
    if taken:
        out.print(f"  ({', '.join(taken)} taken: functions are told the ports above)")


def _listen(bind: Callable[[int], T], port: int, required: bool, host: str, what: str) -> T:
    """`bind(port)`; a default port that is taken gives way to a free one."""
    try:
        return bind(port)
    except OSError as e:
        if required:
            raise DaprUnavailable(
                f"Dapr's {what} API cannot listen on {host}:{port}: {e.strerror} "
                f"(--dapr-{what.lower()}-port 0 picks a free port)"
            ) from None
        return bind(0)
