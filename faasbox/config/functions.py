"""Building a FunctionSpec from one entry of ``functions:`` and the provider's defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from faasbox.config.async_settings import ASYNC_KEYS, async_settings
from faasbox.config.events import check_events
from faasbox.config.fields import (
    Context,
    construct,
    environment,
    integer,
    mapping,
    seconds,
    show,
    string,
)
from faasbox.config.keypath import KeyPath, format_path
from faasbox.config.logging_config import function_logging
from faasbox.config.placement import resources
from faasbox.config.spec import FUNCTION_NAME_PATTERN, FunctionSpec
from faasbox.execution import runtimes
from faasbox.execution.runtimes import Runtime
from faasbox.lambda_.limits import (
    MAX_EPHEMERAL_STORAGE_MB,
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_EPHEMERAL_STORAGE_MB,
    MIN_MEMORY_MB,
)

MODELED_KEYS = frozenset(
    {
        "handler", "name", "description", "runtime", "memorySize", "timeout", "environment",
        "events", "layers", "reservedConcurrency", "provisionedConcurrency", "package",
        "ephemeralStorage", "ephemeralStorageSize", "network", "logs", "faasbox",
    }
) | runtimes.OPTIONS_KEYS | ASYNC_KEYS  # fmt: skip
# Settings of the AWS deployment that change nothing about how a function runs or is reached.
DEPLOY_ONLY_KEYS = frozenset(
    {
        "role", "tags", "vpc", "tracing", "architecture", "kmsKeyArn", "disableLogs",
        "logRetentionInDays", "logDataProtectionPolicy", "runtimeManagement", "condition",
        "dependsOn", "snapStart", "versionFunction",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Defaults:
    """What every function inherits from the service and ``provider:``."""

    service: str
    stage: str
    runtime: str
    runtime_path: KeyPath | None
    """Where the runtime was set (provider.runtime), or None for faasbox's default."""
    memory_size: int
    timeout: float
    environment: dict[str, str]
    layers: list[str]
    logging_config: dict[str, str] = field(default_factory=dict)
    """``provider.logs.lambda`` as Lambda's LoggingConfig."""


def build_function(
    ctx: Context, key: str, value: object, defaults: Defaults, layer_ids: Mapping[str, str]
) -> FunctionSpec:
    """``layer_ids`` maps the CloudFormation ids of this service's layers to their keys."""
    path: KeyPath = ("functions", key)
    doc = mapping(ctx, value, path, "a mapping with at least a handler")
    for unknown in [k for k in doc if k not in MODELED_KEYS and k not in DEPLOY_ONLY_KEYS]:
        ctx.warn((*path, unknown), f"faasbox does not support {unknown!r} and ignores it")
    runtime, kind = _runtime(ctx, doc, path, defaults)
    handler = _handler(ctx, doc, path, kind)
    for other in runtimes.RUNTIMES:
        if other.options_key in doc and other is not kind:
            ctx.warn(
                (*path, other.options_key),
                f"only used by runtime {other.listed_as}; ignored for runtime {runtime}",
            )
    wasm = mapping(ctx, doc["wasm"], (*path, "wasm"), "a mapping") if doc.get("wasm") else None

    return construct(
        ctx,
        path,
        FunctionSpec,
        key=key,
        name=_function_name(ctx, doc, path, defaults),
        runtime=runtime,
        handler=handler,
        memory_size=memory_setting(ctx, doc, path, defaults.memory_size),
        timeout=timeout_setting(ctx, doc, path, defaults.timeout),
        # The function's variables win over the provider's, as on AWS.
        environment={
            **defaults.environment,
            **environment(ctx, doc.get("environment"), (*path, "environment")),
        },
        reserved_concurrency=_count(ctx, doc, path, "reservedConcurrency"),
        provisioned_concurrency=_count(ctx, doc, path, "provisionedConcurrency"),
        events=check_events(ctx, doc.get("events"), (*path, "events")),
        layers=(
            layer_refs(ctx, doc["layers"], (*path, "layers"), layer_ids)
            if "layers" in doc
            else list(defaults.layers)
        ),
        description=_description(ctx, doc.get("description"), (*path, "description")),
        wasm=wasm,
        package=mapping(ctx, doc.get("package") or {}, (*path, "package"), "a mapping"),
        ephemeral_storage=_ephemeral_storage(ctx, doc, path),
        network=_network(ctx, doc, path),
        async_config=async_settings(ctx, doc, path),
        logging_config=function_logging(ctx, doc, path, defaults.logging_config),
        resources=resources(ctx, doc, path),
    )


def _ephemeral_storage(ctx: Context, doc: dict[str, Any], path: KeyPath) -> int:
    """The size of /tmp in MB: Lambda's ``ephemeralStorage: {size: MB}``, or the Serverless
    Framework's ``ephemeralStorageSize: MB``."""
    if "ephemeralStorage" in doc:
        where = (*path, "ephemeralStorage")
        storage = mapping(ctx, doc["ephemeralStorage"], where, "a mapping such as {size: 1024}")
        for unknown in [k for k in storage if k != "size"]:
            ctx.warn((*where, unknown), f"faasbox does not support {unknown!r} and ignores it")
        if "size" not in storage:
            raise ctx.error((*where, "size"), "expected the size of /tmp in MB, e.g. size: 1024")
        return integer(
            ctx,
            storage["size"],
            (*where, "size"),
            MIN_EPHEMERAL_STORAGE_MB,
            MAX_EPHEMERAL_STORAGE_MB,
            "MB",
        )
    if "ephemeralStorageSize" in doc:
        where = (*path, "ephemeralStorageSize")
        return integer(
            ctx,
            doc["ephemeralStorageSize"],
            where,
            MIN_EPHEMERAL_STORAGE_MB,
            MAX_EPHEMERAL_STORAGE_MB,
            "MB",
        )
    return MIN_EPHEMERAL_STORAGE_MB


def _network(ctx: Context, doc: dict[str, Any], path: KeyPath) -> str:
    """``network: none``: the function's workers get a network namespace with only loopback."""
    if "network" not in doc:
        return "default"
    value = doc["network"]
    if value not in ("none", "default"):
        raise ctx.error(
            (*path, "network"),
            f"expected none (no network but loopback) or default, got {show(value)}",
        )
    return str(value)


def _runtime(
    ctx: Context, doc: dict[str, Any], path: KeyPath, defaults: Defaults
) -> tuple[str, Runtime]:
    """The function's runtime (its own, else the provider's); errors and warnings name where
    it was set."""
    if "runtime" in doc:
        runtime_path: KeyPath | None = (*path, "runtime")
        value = doc["runtime"]
    else:
        runtime_path, value = defaults.runtime_path, defaults.runtime
    where = runtime_path or path
    runtime = string(ctx, value, where, f"a runtime such as {runtimes.example_names()}")
    kind = runtimes.lookup(runtime)
    if kind is None:
        raise ctx.error(
            where,
            f"runtime {runtime!r} is not supported by faasbox; "
            f"supported: {runtimes.supported_runtimes()}",
        )
    # faasbox's own default is never "not installed": it is whatever runs faasbox.
    warning = kind.version_warning(runtime, format_path(where)) if runtime_path else None
    if warning:
        ctx.note(warning)
    return runtime, kind


def _handler(ctx: Context, doc: dict[str, Any], path: KeyPath, kind: Runtime) -> str:
    where = (*path, "handler")
    if doc.get("handler") is None:
        raise ctx.error(where, "is missing; " + kind.missing_hint)
    handler = string(ctx, doc["handler"], where, kind.missing_hint)
    problem = kind.handler_problem(handler)
    if problem:
        raise ctx.error(where, problem)
    return handler


def memory_setting(ctx: Context, doc: dict[str, Any], path: KeyPath, default: int) -> int:
    """``memorySize`` of a function or the provider, in MB."""
    if "memorySize" not in doc:
        return default
    where = (*path, "memorySize")
    return integer(ctx, doc["memorySize"], where, MIN_MEMORY_MB, MAX_MEMORY_MB, "MB")


def timeout_setting(ctx: Context, doc: dict[str, Any], path: KeyPath, default: float) -> float:
    """``timeout`` of a function or the provider, in seconds."""
    if "timeout" not in doc:
        return default
    return seconds(ctx, doc["timeout"], (*path, "timeout"), MAX_TIMEOUT_S)


def layer_refs(
    ctx: Context, value: object, path: KeyPath, layer_ids: Mapping[str, str]
) -> list[str]:
    """A ``layers:`` list of a function or the provider: ARNs as written, and this service's
    layers (written ``{Ref: NameLambdaLayer}``) as their keys."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.error(path, f"expected a list of layers, got {show(value)}")
    layers: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, str) and item:
            layers.append(item)
        elif isinstance(item, dict) and list(item) == ["Ref"] and item["Ref"] in layer_ids:
            layers.append(layer_ids[item["Ref"]])
        else:
            known = ", ".join(f"{{Ref: {ref}}}" for ref in layer_ids) or "none"
            raise ctx.error(
                (*path, index),
                f"expected a layer ARN or {{Ref: <Name>LambdaLayer}} naming a layer of this "
                f"service (here: {known}), got {item!r}",
            )
    return layers


def layer_logical_id(key: str) -> str:
    """The CloudFormation id the Serverless Framework gives layer ``key``: my-deps ->
    MyDashdepsLambdaLayer; functions refer to their service's layers by it."""
    normalized = key.replace("-", "Dash").replace("_", "Underscore")
    return normalized[:1].upper() + normalized[1:] + "LambdaLayer"


def _function_name(ctx: Context, doc: dict[str, Any], path: KeyPath, defaults: Defaults) -> str:
    if "name" in doc:
        name = string(ctx, doc["name"], (*path, "name"), "a function name")
        if not re.fullmatch(FUNCTION_NAME_PATTERN, name):
            raise ctx.error(
                (*path, "name"),
                f"expected at most 64 letters, digits, - and _ (Lambda's rule), got {name!r}",
            )
        return name
    name = f"{defaults.service}-{defaults.stage}-{path[-1]}"
    if not re.fullmatch(FUNCTION_NAME_PATTERN, name):
        raise ctx.error(
            path,
            f"the function name {name!r} made of service, stage and key breaks Lambda's rule "
            "(at most 64 letters, digits, - and _); set a shorter name: for it",
        )
    return name


def _count(ctx: Context, doc: dict[str, Any], path: KeyPath, key: str) -> int | None:
    value = doc.get(key)
    return None if value is None else integer(ctx, value, (*path, key), 0, None)


def _description(ctx: Context, value: object, path: KeyPath) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ctx.error(path, f"expected text, got {show(value)}")
