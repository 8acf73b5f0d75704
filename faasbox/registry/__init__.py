"""Deployed functions, their versions and their code (faasbox.registry.registry)."""

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
