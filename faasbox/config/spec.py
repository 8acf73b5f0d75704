"""The validated, immutable description of a service: what faasbox.config hands to the rest.

The models repeat Lambda's limits as constraints so that a spec built by other code (the
registry, the management API) is held to the same rules as one loaded from serverless.yml;
faasbox.config.loader checks them first to give messages in serverless.yml's terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from faasbox.lambda_.limits import (
    FRAMEWORK_MEMORY_MB,
    FRAMEWORK_TIMEOUT_S,
    MAX_EPHEMERAL_STORAGE_MB,
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_EPHEMERAL_STORAGE_MB,
    MIN_MEMORY_MB,
)

# Lambda's limits, and the Serverless Framework's defaults where they differ from Lambda's.
DEFAULT_MEMORY_MB = FRAMEWORK_MEMORY_MB
DEFAULT_TIMEOUT_S = FRAMEWORK_TIMEOUT_S
DEFAULT_STAGE = "dev"
DEFAULT_REGION = "us-east-1"
# The AWS account every faasbox resource belongs to (ARNs, ${aws:accountId}): one local account.
ACCOUNT_ID = "000000000000"
FUNCTION_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class _Frozen(BaseModel):
    # strict: the loader has already converted YAML's values; anything else is a bug.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class FunctionSpec(_Frozen):
    """One function, with the provider's defaults applied."""

    key: str
    """The function's key under ``functions:`` in serverless.yml."""
    name: str = Field(pattern=FUNCTION_NAME_PATTERN)
    """The deployed name: ``name:`` if given, else ``{service}-{stage}-{key}``."""
    runtime: str
    """``pythonX.Y`` (run on the server's Python) or ``wasm``."""
    handler: str = Field(min_length=1)
    """``path/module.function`` for Python; the ``.wasm`` file for wasm."""
    memory_size: int = Field(ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)
    timeout: float = Field(gt=0, le=MAX_TIMEOUT_S)
    environment: dict[str, str]
    """The provider's environment updated with the function's own."""
    reserved_concurrency: int | None = Field(default=None, ge=0)
    provisioned_concurrency: int | None = Field(default=None, ge=0)
    events: list[dict[str, Any]]
    """As written, each a one-key mapping such as ``{"httpApi": "GET /hello"}``."""
    layers: list[str]
    """Keys of layers in this service (from ``{Ref: XLambdaLayer}``), or ARNs as written."""
    description: str | None = None
    wasm: dict[str, Any] | None = None
    """The function's ``wasm:`` options, kept as written (runtime wasm only)."""
    package: dict[str, Any]
    """The function's ``package:`` (patterns, individually, artifact), kept as written."""
    ephemeral_storage: int = Field(
        default=MIN_EPHEMERAL_STORAGE_MB, ge=MIN_EPHEMERAL_STORAGE_MB, le=MAX_EPHEMERAL_STORAGE_MB
    )
    """The size of the function's private /tmp, in MB (Lambda's ephemeral storage)."""
    network: str = Field(default="default", pattern="^(default|none)$")
    """``none``: no network but loopback for the function's workers."""
    async_config: dict[str, Any] | None = None
    """maximumRetryAttempts, maximumEventAge, destinations and onError, checked
    (faasbox.config.async_settings)."""
    logging_config: dict[str, str] = Field(default_factory=dict)
    """Lambda's LoggingConfig from ``logs`` (the function's over ``provider.logs.lambda``)."""
    resources: dict[str, float] = Field(default_factory=dict)
    """``faasbox.resources``: what each environment needs of a Ray node (CPU, GPU, custom)."""


class LayerSpec(_Frozen):
    """A layer declared under ``layers:``, published at deploy (faasbox.registry.layers)."""

    key: str
    name: str
    """The layer's ``name:`` if given, else its key, as the Serverless Framework names it."""
    path: Path | None
    """The layer's folder (absolute), whose ``python/`` goes on sys.path."""
    artifact: Path | None = None
    """A prebuilt zip (``package.artifact``), absolute."""
    description: str | None = None
    compatible_runtimes: list[str]
    license_info: str | None = None
    retain: bool = False
    """Keep earlier versions when a deploy publishes a new one (else they are deleted)."""
    patterns: list[str] = []
    """The layer's ``package.patterns``, applied to its folder."""
    requirements: bool = False
    """Its content is the service's installed Python requirements under ``python/``
    (``custom.pythonRequirements.layer``), not a folder."""


class ServiceSpec(_Frozen):
    """A whole serverless.yml, variables resolved and checked."""

    name: str
    stage: str
    region: str
    root: Path
    """The folder of serverless.yml; relative paths in it are relative to this."""
    file: Path
    functions: dict[str, FunctionSpec]
    """By key, in the order of the file."""
    layers: dict[str, LayerSpec]
    binary_media_types: list[str]
    """provider.apiGateway.binaryMediaTypes: bodies of these types are base64 in events."""
    api_keys: list[str | dict[str, Any]]
    """provider.apiGateway.apiKeys as written: names, or {name, value} mappings."""
    http_api: dict[str, Any]
    """provider.httpApi as written (cors, payload, ...), for the gateway."""
    warnings: list[str]
    """What faasbox ignores or runs differently; each names the file and the key path."""
    raw: dict[Any, Any]
    """The whole document with variables resolved, unknown keys included."""
    queues: dict[str, dict[str, Any]] = {}
    """The AWS::SQS::Queue resources: logical id -> {name, attributes} (faasbox.config.queues)."""
