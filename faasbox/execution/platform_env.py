"""Variables the platform itself puts in every function's environment, besides Lambda's: where
the server's Dapr APIs listen (DAPR_HTTP_PORT, ...). Set once when the server starts, before a
worker starts; a function's own `environment` overrides them."""

from __future__ import annotations

from collections.abc import Mapping

_variables: dict[str, str] = {}


def set_platform_environment(variables: Mapping[str, str]) -> None:
    _variables.clear()
    _variables.update(variables)


def platform_environment() -> dict[str, str]:
    return dict(_variables)
