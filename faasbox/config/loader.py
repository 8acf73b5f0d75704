"""Loading a serverless.yml into a ServiceSpec: read, resolve variables, check, build.

Unknown keys never fail a load: they stay in ``ServiceSpec.raw``, and the ones whose absence
would make faasbox behave differently from AWS (plugins, resources, unmodelled function and
provider settings) each get a warning naming the file and the key path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faasbox.config.authorizers import (
    AWS_IAM,
    REQUEST,
    UnsupportedAuthorizer,
    http_api_authorizers,
    http_api_event_authorizer,
    rest_authorizer,
)
from faasbox.config.events import describe_event
from faasbox.config.fields import (
    Context,
    construct,
    environment,
    mapping,
    show,
    string,
    string_list,
)
from faasbox.config.functions import (
    Defaults,
    build_function,
    layer_logical_id,
    layer_refs,
    memory_setting,
    timeout_setting,
)
from faasbox.config.keypath import KeyPath
from faasbox.config.logging_config import provider_logging
from faasbox.config.queues import check_visibility, declared_queues, other_resources
from faasbox.config.requirements_layer import requirements_layer, with_requirements_layer
from faasbox.config.spec import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    FunctionSpec,
    LayerSpec,
    ServiceSpec,
)
from faasbox.config.variables import Resolver
from faasbox.config.yamlfile import parse_yaml, read_text
from faasbox.errors import ConfigError
from faasbox.execution.runtimes import DEFAULT_RUNTIME

SERVICE_FILES = ("serverless.yml", "serverless.yaml")

# Top-level keys faasbox reads, or that change nothing about how functions run here.
QUIET_TOP_LEVEL = frozenset(
    {
        "service", "provider", "functions", "layers", "package", "custom", "params",
        "frameworkVersion", "configValidationMode", "useDotenv", "variablesResolutionMode",
        "deprecationNotificationMode", "disabledDeprecations",
        "unresolvedVariablesNotificationMode", "org", "app", "console", "dashboard", "outputs",
    }
)  # fmt: skip
PROVIDER_KEYS = frozenset(
    {
        "name", "runtime", "stage", "region", "memorySize", "timeout", "environment",
        "apiGateway", "httpApi", "layers", "logs",
    }
)  # fmt: skip
# What faasbox reads of a layer, or what changes nothing here (one architecture: the server's).
LAYER_KEYS = frozenset(
    {
        "path", "name", "description", "compatibleRuntimes", "compatibleArchitectures",
        "licenseInfo", "retain", "package",
    }
)  # fmt: skip
# Settings of the AWS deployment that change nothing about how functions run or are reached.
DEPLOY_ONLY_PROVIDER_KEYS = frozenset(
    {
        "profile", "deploymentBucket", "deploymentPrefix", "deploymentMethod", "stackName",
        "stackTags", "tags", "stackPolicy", "stackParameters", "rolePermissionsBoundary",
        "cfnRole", "notificationArns", "disableRollback", "versionFunctions",
        "logRetentionInDays", "logDataProtectionPolicy", "tracing", "iam", "iamRoleStatements",
        "iamManagedPolicies", "role", "architecture", "runtimeManagement", "kmsKeyArn", "vpc",
        "lambdaHashingVersion", "apiName", "endpointType",
    }
)  # fmt: skip
_PROVIDER_HINTS = {
    "apiKeys": "; Serverless Framework v3 and faasbox read provider.apiGateway.apiKeys",
}
_SERVICE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_STAGE = re.compile(r"[A-Za-z0-9-]+")
# An AWS region's shape (us-east-1, eu-central-2, us-gov-west-1): it goes into ARNs.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def load_service(
    path: Path,
    options: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> ServiceSpec:
    """The service described by ``path`` (a serverless.yml, or a folder holding one).

    ``options`` are CLI options (``stage``, ``region``, anything ``${opt:...}`` reads);
    ``env`` is what ``${env:...}`` reads, os.environ by default; ``params`` are ``--param``
    values, which ``${param:...}`` prefers to the file's ``params:``. Raises ConfigError.
    """
    file = _locate(Path(path))
    options = dict(options or {})
    document = parse_yaml(read_text(file), str(file))
    if not isinstance(document, dict):
        got = "an empty file" if document is None else show(document)
        raise ConfigError(
            str(file), "", f"expected a mapping (service, provider, functions), got {got}"
        )
    resolver = Resolver(
        document,
        file=file,
        options=options,
        env=os.environ if env is None else env,
        params=params,
    )
    resolved = resolver.resolve()
    return _build_service(
        Context(str(file)), resolved, file, resolver.stage(), resolver.region(), options
    )


def _locate(path: Path) -> Path:
    path = path.absolute()
    if path.is_dir():
        for name in SERVICE_FILES:
            if (path / name).is_file():
                return path / name
        raise ConfigError(str(path), "", f"no {' or '.join(SERVICE_FILES)} in this folder")
    if not path.is_file():
        raise ConfigError(str(path), "", "file not found")
    return path


def _build_service(
    ctx: Context,
    doc: dict[Any, Any],
    file: Path,
    stage: str,
    region: str,
    options: Mapping[str, str],
) -> ServiceSpec:
    _warn_unknown_top_level(ctx, doc)
    name = _service_name(ctx, doc)
    if not _STAGE.fullmatch(stage):
        where: KeyPath = ("provider", "stage") if "stage" not in options else ("--stage",)
        raise ctx.error(where, f"expected a stage of letters, digits and -, got {stage!r}")
    provider = mapping(ctx, doc.get("provider") or {}, ("provider",), "a mapping")
    _check_provider_keys(ctx, provider)
    if not _REGION.fullmatch(region):
        where = ("provider", "region") if not options.get("region") else ("--region",)
        raise ctx.error(
            where, f"expected a region such as us-east-1 or eu-west-1, got {show(region)}"
        )
    layers = _layers(ctx, doc.get("layers"), file.parent)
    runtime = provider.get("runtime", DEFAULT_RUNTIME)
    requirements = requirements_layer(ctx, doc, file.parent, name, stage, str(runtime))
    if requirements is not None:
        if requirements.key in layers:
            raise ctx.error(
                ("layers", requirements.key),
                "is the layer custom.pythonRequirements.layer makes; give yours another key",
            )
        layers[requirements.key] = requirements
    layer_ids = {layer_logical_id(key): key for key in layers}
    defaults = _defaults(ctx, provider, name, stage, layer_ids)
    functions: dict[str, FunctionSpec] = {
        key: build_function(ctx, key, value, defaults, layer_ids)
        for key, value in _function_entries(ctx, doc).items()
    }
    if requirements is not None:
        functions = {key: with_requirements_layer(fn) for key, fn in functions.items()}
        if not any(requirements.key in fn.layers for fn in functions.values()):
            del layers[requirements.key]  # no Python function: nothing to install, no layer
    http_api = _http_api(ctx, provider, functions, file.parent)
    _check_authorizer_functions(ctx, functions, http_api)
    api_gateway = mapping(
        ctx, provider.get("apiGateway") or {}, ("provider", "apiGateway"), "a mapping"
    )
    media_path = ("provider", "apiGateway", "binaryMediaTypes")
    queues = declared_queues(ctx, doc)
    for key, spec in functions.items():
        check_visibility(ctx, queues, key, spec.timeout, spec.events)
    return construct(
        ctx,
        (),
        ServiceSpec,
        name=name,
        stage=stage,
        region=region,
        root=file.parent,
        file=file,
        functions=functions,
        layers=layers,
        binary_media_types=string_list(
            ctx, api_gateway.get("binaryMediaTypes") or [], media_path, "media types (image/png)"
        ),
        api_keys=_api_keys(ctx, api_gateway.get("apiKeys")),
        http_api=http_api,
        queues=queues,
        warnings=ctx.warnings,
        raw=doc,
    )


# Plugins whose work faasbox does at deploy (faasbox.dependencies: requirements, WSGI).
PLUGINS_DONE_BY_FAASBOX = ("serverless-python-requirements", "serverless-wsgi")


def _warn_unknown_top_level(ctx: Context, doc: dict[Any, Any]) -> None:
    for key, value in doc.items():
        if key in QUIET_TOP_LEVEL:
            continue
        if key == "plugins":
            names = value.get("modules", []) if isinstance(value, dict) else value
            # What faasbox does itself in their stead (faasbox.dependencies) is no warning.
            if isinstance(names, list):
                names = [n for n in names if n not in PLUGINS_DONE_BY_FAASBOX]
                if not names:
                    continue
            listed = ", ".join(map(str, names)) if isinstance(names, list) else str(names)
            ctx.warn((key,), f"faasbox does not run Serverless Framework plugins ({listed})")
        elif key == "resources":
            others = other_resources(value)
            if others:
                ctx.warn(
                    (key,),
                    "faasbox creates only AWS::SQS::Queue resources; whatever the functions use "
                    f"from the others ({', '.join(others)}) must exist elsewhere",
                )
        else:
            ctx.warn((key,), f"unknown key {key!r}; faasbox ignores it")


def _service_name(ctx: Context, doc: dict[Any, Any]) -> str:
    service = doc.get("service")
    path: KeyPath = ("service",)
    if service is None:
        raise ctx.error(path, "is missing; expected the service name, e.g. 'service: my-service'")
    if isinstance(service, dict):  # the Serverless Framework v1 form, `service: {name: x}`
        service, path = service.get("name"), ("service", "name")
    name = string(ctx, service, path, "a service name")
    if not _SERVICE_NAME.fullmatch(name):
        raise ctx.error(
            path, f"expected a name of letters, digits and - starting with a letter, got {name!r}"
        )
    return name


def _check_provider_keys(ctx: Context, provider: dict[str, Any]) -> None:
    name = provider.get("name")
    if name is not None and name != "aws":
        ctx.warn(
            ("provider", "name"),
            f"faasbox runs functions the AWS Lambda way; settings meant for {name!r} may not apply",
        )
    for key in provider:
        if key not in PROVIDER_KEYS and key not in DEPLOY_ONLY_PROVIDER_KEYS:
            hint = _PROVIDER_HINTS.get(key, "")
            ctx.warn(("provider", key), f"faasbox does not support {key!r} and ignores it{hint}")


def _defaults(
    ctx: Context,
    provider: dict[str, Any],
    service: str,
    stage: str,
    layer_ids: Mapping[str, str],
) -> Defaults:
    where: KeyPath = ("provider",)
    return Defaults(
        service=service,
        stage=stage,
        runtime=provider.get("runtime", DEFAULT_RUNTIME),
        runtime_path=(*where, "runtime") if "runtime" in provider else None,
        memory_size=memory_setting(ctx, provider, where, DEFAULT_MEMORY_MB),
        timeout=timeout_setting(ctx, provider, where, DEFAULT_TIMEOUT_S),
        environment=environment(ctx, provider.get("environment"), (*where, "environment")),
        layers=layer_refs(ctx, provider.get("layers"), (*where, "layers"), layer_ids),
        logging_config=provider_logging(ctx, provider),
    )


def _function_entries(ctx: Context, doc: dict[Any, Any]) -> dict[str, Any]:
    """``functions:`` as one mapping; a list of mappings (often ``${file(...)}`` includes) is
    merged in order, as the Serverless Framework does."""
    value = doc.get("functions")
    if value is None:
        raise ctx.error(
            ("functions",), "is missing; expected a mapping of functions, each with a handler"
        )
    parts = value if isinstance(value, list) else [value]
    entries: dict[str, Any] = {}
    for index, part in enumerate(parts):
        where: KeyPath = ("functions", index) if isinstance(value, list) else ("functions",)
        for key, function in mapping(ctx, part, where, "a mapping of functions").items():
            if key in entries:
                raise ctx.error(("functions", key), "is defined more than once")
            entries[key] = function
    return entries


def _layers(ctx: Context, value: object, root: Path) -> dict[str, LayerSpec]:
    if value is None:
        return {}
    layers: dict[str, LayerSpec] = {}
    for key, item in mapping(ctx, value, ("layers",), "a mapping of layers").items():
        path: KeyPath = ("layers", key)
        layer = mapping(ctx, item, path, "a mapping with the layer's path")
        for unknown in [k for k in layer if k not in LAYER_KEYS]:
            ctx.warn((*path, unknown), f"faasbox does not support {unknown!r} and ignores it")
        package = mapping(ctx, layer.get("package") or {}, (*path, "package"), "a mapping")
        folder = layer.get("path")
        artifact = package.get("artifact")
        if folder is None and artifact is None:
            raise ctx.error(
                (*path, "path"), "is missing; expected the folder holding the layer's python/"
            )
        runtimes = layer.get("compatibleRuntimes") or []
        description = layer.get("description")
        layers[key] = construct(
            ctx,
            path,
            LayerSpec,
            key=key,
            name=string(ctx, layer.get("name", key), (*path, "name"), "a layer name"),
            path=_under(root, string(ctx, folder, (*path, "path"))) if folder is not None else None,
            artifact=(
                _under(root, string(ctx, artifact, (*path, "package", "artifact")))
                if artifact is not None
                else None
            ),
            description=None
            if description is None
            else string(ctx, description, (*path, "description")),
            compatible_runtimes=string_list(
                ctx, runtimes, (*path, "compatibleRuntimes"), "runtimes (python3.11)"
            ),
            license_info=None
            if layer.get("licenseInfo") is None
            else string(ctx, layer["licenseInfo"], (*path, "licenseInfo")),
            retain=_flag(ctx, layer.get("retain", False), (*path, "retain")),
            patterns=string_list(
                ctx, package.get("patterns") or [], (*path, "package", "patterns"), "globs"
            ),
        )
    return layers


def _flag(ctx: Context, value: object, path: KeyPath) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(path, f"expected true or false, got {show(value)}")
    return value


def _check_authorizer_functions(
    ctx: Context, functions: dict[str, FunctionSpec], http_api: dict[str, Any]
) -> None:
    """A Lambda authorizer is a function of the same service, named by its key; an httpApi
    event's authorizer is one of provider.httpApi.authorizers."""
    known = http_api_authorizers(http_api.get("authorizers"))  # checked by _http_api
    for key, spec in functions.items():
        for index, event in enumerate(spec.events):
            body = event.get("httpApi")
            if isinstance(body, dict) and body.get("authorizer") is not None:
                name = http_api_event_authorizer(body["authorizer"])  # checked with the events
                if name not in known:
                    raise ctx.error(
                        ("functions", key, "events", index, "httpApi", "authorizer"),
                        f"function {key!r}, event httpApi {describe_event(body)}: "
                        f"authorizer {name!r} is not one of provider.httpApi.authorizers "
                        f"({', '.join(sorted(known)) or 'none'})",
                    )
            body = event.get("http")
            if not isinstance(body, dict) or body.get("authorizer") is None:
                continue
            authorizer = rest_authorizer(body["authorizer"])  # checked with the events
            if authorizer.kind != AWS_IAM and authorizer.function not in functions:
                raise ctx.error(
                    ("functions", key, "events", index, "http", "authorizer"),
                    f"authorizer {authorizer.function!r} is not a function of this service; "
                    f"its functions are {', '.join(sorted(functions))}",
                )


def _embed_jwks(ctx: Context, http_api: dict[str, Any], root: Path) -> dict[str, Any]:
    """A JWT authorizer's `jwksFile` (faasbox's: the keys without a network fetch), read now
    and carried in the deploy as `jwks`, so the server needs no access to the file."""
    authorizers = http_api.get("authorizers")
    if not isinstance(authorizers, dict):
        return http_api
    embedded: dict[str, Any] = {}
    for name, spec in authorizers.items():
        if isinstance(spec, dict) and "jwksFile" in spec:
            where: KeyPath = ("provider", "httpApi", "authorizers", str(name), "jwksFile")
            path = _under(root, string(ctx, spec["jwksFile"], where))
            try:
                text = path.read_text(encoding="utf-8")
                keys = json.loads(text)
            except (OSError, ValueError) as e:
                raise ctx.error(where, f"cannot read a JWKS from {path}: {e}") from None
            if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
                raise ctx.error(where, f'{path} is not a JWKS ({{"keys": [...]}})')
            spec = {k: v for k, v in spec.items() if k != "jwksFile"} | {"jwks": text}
        embedded[name] = spec
    return {**http_api, "authorizers": embedded}


def _http_api(
    ctx: Context, provider: dict[str, Any], functions: dict[str, FunctionSpec], root: Path
) -> dict[str, Any]:
    http_api = mapping(ctx, provider.get("httpApi") or {}, ("provider", "httpApi"), "a mapping")
    where: KeyPath = ("provider", "httpApi", "authorizers")
    http_api = _embed_jwks(ctx, http_api, root)
    try:
        authorizers = http_api_authorizers(http_api.get("authorizers"))
    except UnsupportedAuthorizer as e:
        raise ctx.error(where, str(e)) from None
    for name, authorizer in authorizers.items():
        if authorizer.kind == REQUEST and authorizer.function not in functions:
            raise ctx.error(
                (*where, name, "functionName"),
                f"{authorizer.function!r} is not a function of this service; its functions "
                f"are {', '.join(sorted(functions))}",
            )
    return http_api


def _under(root: Path, relative: str) -> Path:
    return Path(os.path.normpath(root / relative))


def _api_keys(ctx: Context, value: object) -> list[str | dict[str, Any]]:
    path: KeyPath = ("provider", "apiGateway", "apiKeys")
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.error(path, f"expected a list of API keys, got {show(value)}")
    keys: list[str | dict[str, Any]] = []
    for index, item in enumerate(value):
        if isinstance(item, str) and item:
            keys.append(item)
        elif isinstance(item, dict):
            keys.append(mapping(ctx, item, (*path, index), "a mapping"))
        else:
            raise ctx.error(
                (*path, index), f"expected a key name or {{name, value}}, got {show(item)}"
            )
    return keys
