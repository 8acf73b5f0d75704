"""serverless.yml -> validated, immutable specs.

``load_service(path, options, env)`` reads a Serverless Framework serverless.yml, resolves its
variables (``${env:X}``, ``${self:a.b}``, ``${opt:stage}``, ``${sls:stage}``, ``${file(x)}``,
``${param:x}``, with defaults), checks it and returns a ServiceSpec. Problems raise
faasbox.errors.ConfigError naming the file and the key path; what faasbox ignores or runs
differently from AWS is listed in ``ServiceSpec.warnings``. Nothing here does I/O beyond
reading the YAML (and files it includes).
"""

from faasbox.config.loader import SERVICE_FILES, load_service
from faasbox.config.spec import (
    DEFAULT_MEMORY_MB,
    DEFAULT_REGION,
    DEFAULT_STAGE,
    DEFAULT_TIMEOUT_S,
    FunctionSpec,
    LayerSpec,
    ServiceSpec,
)
from faasbox.lambda_.limits import MAX_MEMORY_MB, MAX_TIMEOUT_S, MIN_MEMORY_MB

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_REGION",
    "DEFAULT_STAGE",
    "DEFAULT_TIMEOUT_S",
    "MAX_MEMORY_MB",
    "MAX_TIMEOUT_S",
    "MIN_MEMORY_MB",
    "SERVICE_FILES",
    "FunctionSpec",
    "LayerSpec",
    "ServiceSpec",
    "load_service",
]
