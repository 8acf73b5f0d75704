"""Deploying a serverless.yml service: its functions' configs and one code package for all.

As the Serverless Framework packages a service by default, every function of a service shares
one package: the service folder, less `package.patterns` exclusions and tooling folders.
"""

from __future__ import annotations

import io
import logging
import stat
import zipfile
from pathlib import Path
from typing import Any

from faasbox.config import ServiceSpec
from faasbox.dependencies import Progress, default_cache_dir, dependency_files
from faasbox.registry.api_keys import ApiKeyStore, NewApiKey
from faasbox.registry.code_store import package_files
from faasbox.registry.models import FunctionConfig
from faasbox.registry.registry import DeployChange, Registry

log = logging.getLogger("faasbox.dependencies")


def package_patterns(spec: ServiceSpec) -> list[str]:
    package: dict[str, Any] = spec.raw.get("package") or {}
    patterns = list(package.get("patterns") or [])
    # The older include/exclude keys, still common in the wild.
    patterns += [f"!{p}" for p in package.get("exclude") or []]
    patterns += list(package.get("include") or [])
    return [str(p) for p in patterns]


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
    """Store the service's code, with its dependencies installed, and point its functions at
    it (the in-process deploy); returns the change and the API keys generated now, whose
    values are shown only once. Function names and routes of other services are refused
    unless `force` moves them. A failed install raises before anything changes."""
    cache = registry.data_dir / "dependencies"
    extra = dependency_files(spec, cache, progress or _log_progress)
    code = registry.store_directory(spec.root, package_patterns(spec), extra)
    change = registry.deploy(function_configs(spec), code, replace_service=spec.name, force=force)
    new_keys = api_keys.ensure(spec.name, list(spec.api_keys)) if api_keys else []
    return change, new_keys


def _log_progress(line: str) -> None:
    log.info("%s", line)


def package_zip(
    spec: ServiceSpec, cache_dir: Path | None = None, progress: Progress | None = None
) -> bytes:
    """The service's package as a zip, its dependencies installed (cached in `cache_dir`,
    the user's cache by default), for a deploy to a server elsewhere."""
    extra = dependency_files(spec, cache_dir or default_cache_dir(), progress or _log_progress)
    files = dict([*extra, *package_files(spec.root, package_patterns(spec))])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, path in sorted(files.items()):
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            mode = path.stat().st_mode
            info.external_attr = ((0o755 if mode & stat.S_IXUSR else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buf.getvalue()
