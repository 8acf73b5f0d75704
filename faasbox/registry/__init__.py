"""Deployed functions, their versions and their code (faasbox.registry.registry).

The names below are imported on first use, not with the package: its light submodules
(access_keys, which the CLI's client reads credentials with) then do not pull in the
registry, its models and their configuration (pydantic).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faasbox.registry.code_store import CodeStore, StoredCode
    from faasbox.registry.models import LATEST, DeployedFunction, FunctionConfig
    from faasbox.registry.registry import DeployChange, Registry

__all__ = [
    "LATEST",
    "CodeStore",
    "DeployChange",
    "DeployedFunction",
    "FunctionConfig",
    "Registry",
    "StoredCode",
]

_MODULES = {
    "CodeStore": "code_store",
    "StoredCode": "code_store",
    "LATEST": "models",
    "DeployedFunction": "models",
    "FunctionConfig": "models",
    "DeployChange": "registry",
    "Registry": "registry",
}

if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ to hide a typo behind

    def __getattr__(name: str) -> Any:
        module = _MODULES.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # once: later lookups find it without __getattr__
        return value
