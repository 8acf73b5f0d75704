"""What is deployed: a function's configuration and the code version it runs.

These are the values the gateway and the runtime work from; they hold no I/O. A
`DeployedFunction` is immutable, so a deploy replaces it whole and an in-flight invocation
keeps the one it started with.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faasbox.config.async_settings import async_config_problem
from faasbox.config.fields import env_control_character
from faasbox.config.placement import resource_problem
from faasbox.config.spec import ACCOUNT_ID as ACCOUNT_ID  # shared with ${aws:accountId}
from faasbox.execution import runtimes
from faasbox.execution.runtimes import DEFAULT_RUNTIME
from faasbox.lambda_.limits import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_MEMORY_MB,
)

LATEST = "$LATEST"

# How the Lambda API names a function: its name, its ARN or a partial ARN
# (123456789012:function:NAME), each optionally qualified (NAME:1, ARN:$LATEST).
FUNCTION_NAME = re.compile(
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?(?P<name>[a-zA-Z0-9-_\.]+)(:(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?"
)


def split_function_name(value: str) -> tuple[str, str | None]:
    """(name, qualifier or None) of a function name, ARN or partial ARN; the value unchanged
    when it is none of these."""
    if ":" not in value:
        return value, None
    match = FUNCTION_NAME.fullmatch(value)
    if match is None:
        return value, None
    return match["name"], match["qualifier"]


@dataclass(frozen=True)
class FunctionConfig:
    """A function's settings as deployed (from serverless.yml or the Lambda API)."""

    name: str
    handler: str
    runtime: str = DEFAULT_RUNTIME
    memory_size: int = DEFAULT_MEMORY_MB
    timeout: float = float(DEFAULT_TIMEOUT_S)
    environment: dict[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    description: str = ""
    region: str = "us-east-1"
    service: str | None = None
    key: str | None = None  # the function's key in its serverless.yml
    stage: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    wasm: dict[str, Any] | None = None
    # The service's API Gateway settings its routes need: binaryMediaTypes, the HTTP API's
    # cors, the names of apiKeys (never their values).
    api_gateway: dict[str, Any] = field(default_factory=dict)
    # Lambda API settings (CreateFunction/UpdateFunctionConfiguration): kept and reported back.
    role: str = ""  # the execution role's ARN; faasbox assumes no role
    ephemeral_storage: int = 512  # MB of the worker's private /tmp (a tmpfs of that size)
    network: str = "default"  # "none": a network namespace with only loopback
    tracing_mode: str = "PassThrough"  # reported only: faasbox does no X-Ray tracing
    # serverless.yml's async settings (faasbox.events.invoke_config.from_function):
    # maximumRetryAttempts, maximumEventAge, onSuccess, onFailure, onError.
    async_config: dict[str, Any] | None = None
    # The service's AWS::SQS::Queue resources (logical id -> {name, attributes}), created
    # at deploy; its `sqs` events and queue destinations name them.
    queues: dict[str, Any] = field(default_factory=dict)
    # Lambda's LoggingConfig (faasbox.lambda_.log_format): {} is Text, the default.
    logging_config: dict[str, str] = field(default_factory=dict)
    # faasbox.resources (faasbox.config.placement): what an environment needs of a Ray node.
    resources: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FunctionConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class DeployedFunction:
    """One invocable version of a function: its config, and its code on disk."""

    config: FunctionConfig
    version: str  # "$LATEST" or a published number
    code_sha256: str
    code_dir: Path
    code_size: int
    last_modified: str
    revision_id: str
    # The hex SHA-256 of the zip this version was uploaded as ("" when deployed from a folder:
    # its package is then the canonical zip of its code, see faasbox.registry.code_store).
    package_sha256: str = ""
    # Its layers merged, the folder a worker sees as /opt (faasbox.registry.layers); None
    # without layers.
    opt_dir: Path | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @functools.cached_property  # every invocation names it
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.config.region}:{ACCOUNT_ID}:function:{self.config.name}"

    @property
    def qualified_arn(self) -> str:
        return f"{self.arn}:{self.version}"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.config.name}"


DEPLOYED_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def checked_config(data: Any) -> FunctionConfig:
    """A FunctionConfig from untrusted JSON (the management API's deploy), every member of
    the type and range the runtime and the gateway rely on; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"a function must be an object, got {type(data).__name__}")
    config = FunctionConfig.from_dict(data)

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"function {config.name!r}: {what}")

    need(
        isinstance(config.name, str) and bool(DEPLOYED_NAME.fullmatch(config.name)),
        "name must be 1-64 letters, digits, '-' or '_'",
    )
    need(isinstance(config.handler, str) and bool(config.handler), "handler must be a string")
    need(
        isinstance(config.runtime, str) and runtimes.lookup(config.runtime) is not None,
        f"runtime must be one of {runtimes.enum_names()}",
    )
    need(
        type(config.memory_size) is int and MIN_MEMORY_MB <= config.memory_size <= MAX_MEMORY_MB,
        f"memory_size must be an integer from {MIN_MEMORY_MB} to {MAX_MEMORY_MB}",
    )
    need(
        type(config.timeout) in (int, float) and 0 < config.timeout <= MAX_TIMEOUT_S,
        f"timeout must be a number of seconds above 0, at most {MAX_TIMEOUT_S}",
    )
    need(
        isinstance(config.environment, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in config.environment.items()),
        "environment must map strings to strings",
    )
    for name, value in config.environment.items():
        bad = env_control_character(name) or env_control_character(value)
        need(bad is None, f"environment variable {name!r} holds the control character {bad}")
    for key in ("reserved_concurrency", "provisioned_concurrency"):
        value = getattr(config, key)
        need(value is None or (type(value) is int and value >= 0), f"{key} must be an integer >= 0")
    for key in ("description", "region"):
        need(isinstance(getattr(config, key), str), f"{key} must be a string")
    for key in ("service", "key", "stage"):
        value = getattr(config, key)
        need(value is None or isinstance(value, str), f"{key} must be a string")
    need(
        isinstance(config.events, list)
        and all(isinstance(e, dict) and len(e) == 1 for e in config.events),
        "events must be a list of one-key objects",
    )
    need(
        isinstance(config.layers, list) and all(isinstance(x, str) for x in config.layers),
        "layers must be a list of strings",
    )
    need(config.wasm is None or isinstance(config.wasm, dict), "wasm must be an object")
    need(isinstance(config.resources, dict), "resources must be an object")
    for name, amount in config.resources.items():
        problem = resource_problem(name, amount)
        need(problem is None, f"resources.{name}: {problem}")
    need(isinstance(config.api_gateway, dict), "api_gateway must be an object")
    problem = async_config_problem(config.async_config)
    need(problem is None, problem or "")
    need(
        isinstance(config.queues, dict)
        and all(
            isinstance(q, dict) and isinstance(q.get("name"), str)
            and isinstance(q.get("attributes"), dict)
            for q in config.queues.values()
        ),
        "queues must map ids to {name, attributes}",
    )  # fmt: skip
    return config
