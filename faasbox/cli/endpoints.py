"""The endpoints of deployed functions, as `deploy` and `info` print them (the Serverless
Framework's `GET - URL` lines)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def endpoint_lines(configs: Iterable[dict[str, Any]], url: str) -> list[str]:
    """One line per route of the functions whose configs (as the management API lists them)
    are given: ``METHOD - URL`` (the HTTP API catch-all as ``ANY - URL/{proxy+}``)."""
    from faasbox.gateway.routes import HTTP_API, routes_of_config
    from faasbox.registry.models import FunctionConfig

    lines: list[str] = []
    for data in configs:
        for route in routes_of_config(FunctionConfig.from_dict(data)):
            path = "/{proxy+}" if route.path == "$default" else route.path
            notes = [" (HTTP API)" if route.kind == HTTP_API else ""]
            if route.private:
                notes.append(" (needs an API key)")
            lines.append(f"{route.method} - {url.rstrip('/')}{path}{''.join(notes)}")
    return lines
