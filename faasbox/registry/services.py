"""Deploying a serverless.yml service: its functions' configs, packages and layers.

As the Serverless Framework packages a service by default, every function of a service shares
one package (the service folder, less `package.patterns` exclusions and tooling folders),
unless it is packaged on its own; faasbox.registry.packaging decides which zips there are.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from faasbox.config import ServiceSpec
from faasbox.dependencies import Progress, default_cache_dir, dependency_files
from faasbox.errors import DeployError
from faasbox.registry.api_keys import ApiKeyStore, NewApiKey
from faasbox.registry.models import FunctionConfig
from faasbox.registry.packaging import plan, service_patterns
from faasbox.registry.registry import DeployChange, Registry
from faasbox.registry.service_layers import ServiceLayer, publish_layers, with_layer_arns

log = logging.getLogger("faasbox.dependencies")


def package_patterns(spec: ServiceSpec) -> list[str]:
    """The patterns of the service's shared package (faasbox.registry.packaging)."""
    return service_patterns(spec)


def function_configs(spec: ServiceSpec) -> list[FunctionConfig]:
    return [
        FunctionConfig(
            name=f.name,
            handler=f.handler,
            runtime=f.runtime,
            memory_size=f.memory_size,
            timeout=f.timeout,
            environment=dict(f.environment),
            reserved_concurrency=f.reserved_concurrency,
            provisioned_concurrency=f.provisioned_concurrency,
            description=f.description or "",
            region=spec.region,
            service=spec.name,
            key=f.key,
            stage=spec.stage,
            events=[dict(e) for e in f.events],
            layers=list(f.layers),
            wasm=dict(f.wasm) if f.wasm is not None else None,
            api_gateway=api_gateway_settings(spec),
            ephemeral_storage=f.ephemeral_storage,
            network=f.network,
            async_config=dict(f.async_config) if f.async_config is not None else None,
            queues=dict(spec.queues),
            logging_config=dict(f.logging_config),
            resources=dict(f.resources),
        )
        for f in spec.functions.values()
    ]


def api_gateway_settings(spec: ServiceSpec) -> dict[str, Any]:
    """What the routes of each function need to know of the service's API Gateway."""
    key_names = [k if isinstance(k, str) else str(k.get("name", "")) for k in spec.api_keys]
    return {
        "binaryMediaTypes": list(spec.binary_media_types),
        "httpApiCors": spec.http_api.get("cors"),
        "httpApiAuthorizers": spec.http_api.get("authorizers") or {},
        "apiKeys": key_names,
    }


def deploy_service(
    registry: Registry,
    spec: ServiceSpec,
    api_keys: ApiKeyStore | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[DeployChange, list[NewApiKey]]:
    """Store the service's packages (with its dependencies installed) and layers, and point
    its functions at them (the in-process deploy); returns the change and the API keys
    generated now, whose values are shown only once. Function names and routes of other
    services are refused unless `force` moves them. A failed install raises before anything
    changes."""
    installed = dependency_files(
        spec, registry.data_dir / "dependencies", progress or _log_progress
    )
    packages = plan(spec, installed)
    layers = [
        (ServiceLayer.of(spec.layers[key]), source.store(registry))
        for key, source in packages.layers.items()
    ]
    shared = packages.service.store(registry) if packages.service is not None else None
    code = {name: source.store(registry) for name, source in packages.functions.items()}
    configs = function_configs(spec)
    if shared is not None:
        code.update({c.name: shared for c in configs if c.name not in code})
    published = publish_layers(registry, spec.name, spec.region, layers)
    change = registry.deploy(
        with_layer_arns(configs, published), code, replace_service=spec.name, force=force
    )
    new_keys = api_keys.ensure(spec.name, list(spec.api_keys)) if api_keys else []
    return change, new_keys


def _log_progress(line: str) -> None:
    log.info("%s", line)


def package_zip(
    spec: ServiceSpec, cache_dir: Path | None = None, progress: Progress | None = None
) -> bytes:
    """The service's shared package as a zip, its dependencies installed (cached in
    `cache_dir`, the user's cache by default), for a deploy to a server elsewhere."""
    installed = dependency_files(spec, cache_dir or default_cache_dir(), progress or _log_progress)
    shared = plan(spec, installed).service
    if shared is None:
        raise DeployError(f"{spec.file}: every function of {spec.name} is packaged on its own")
    return shared.zip_bytes()
