"""The packager: which zips a deploy of a service uploads, as `serverless package` makes them.

One plan serves `faasbox package` (the zips written into `.serverless/`), `faasbox deploy`
(the same zips uploaded) and the in-process deploy of `faasbox serve` (the same files stored
straight from the folder), so all three ship the same bytes:

- the service's package, `<service>.zip`: the service folder filtered by the Framework's
  default excludes, then `package.patterns` in order (`!glob` excludes, a later glob
  re-includes; the older `exclude`/`include` keys after them), less serverless.yml itself and
  the folders of the service's layers; shared by every function not packaged on its own;
- with `package.individually` (the service's or a function's), a function's own
  `<function key>.zip`: the same, then the function's own `package.patterns`;
- a prebuilt `package.artifact` (the service's or a function's) used as it is;
- each layer's `<layer key>.zip`: its `path` folder filtered by its own `package.patterns`
  (node_modules kept: a layer's `nodejs/node_modules` is the point of it), or its artifact.

The service's installed dependencies (faasbox.dependencies: requirements.txt, package.json)
join every package made from the folder, the folder's own files winning over them; with
`custom.pythonRequirements.layer` the requirements make the `pythonRequirements` layer's zip
instead.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from faasbox.config import LayerSpec, ServiceSpec
from faasbox.dependencies import Dependencies
from faasbox.errors import DeployError
from faasbox.registry.code_store import (
    ALWAYS_EXCLUDED,
    StoredCode,
    package_files,
    write_files_zip,
)
from faasbox.registry.registry import Registry

# The Serverless Framework's default excludes (packageService.js's defaultExcludes).
FRAMEWORK_EXCLUDES = (
    ".git/**",
    ".gitignore",
    ".DS_Store",
    "npm-debug.log",
    "yarn-*.log",
    ".serverless/**",
    ".serverless_plugins/**",
)
OUTPUT_DIR = ".serverless"  # where `serverless package` writes its zips
# A layer ships its node_modules; the rest of faasbox's tooling folders stay out.
FUNCTION_EXCLUDED = frozenset(ALWAYS_EXCLUDED)
LAYER_EXCLUDED = FUNCTION_EXCLUDED - {"node_modules"}


@dataclass(frozen=True)
class Source:
    """One zip of a deploy: a folder filtered by patterns, or a prebuilt zip (`artifact`)."""

    file_name: str  # under .serverless/
    root: Path | None = None
    patterns: tuple[str, ...] = ()
    artifact: Path | None = None
    excluded: frozenset[str] = FUNCTION_EXCLUDED
    extra: tuple[tuple[str, Path], ...] = ()  # installed dependencies: (path in zip, file)

    def files(self) -> Iterator[tuple[str, Path]]:
        if self.root is None:  # a layer made of installed dependencies only
            return iter(sorted(dict(self.extra).items()))
        own = package_files(self.root, self.patterns, self.excluded)
        if not self.extra:
            return own
        return iter(sorted(dict([*self.extra, *own]).items()))

    def zip_bytes(self) -> bytes:
        if self.artifact is not None:
            return _read_artifact(self.artifact)
        buf = io.BytesIO()
        self.write_zip(buf)
        return buf.getvalue()

    def write_zip(self, out: IO[bytes]) -> None:
        """The canonical zip of the files (see faasbox.registry.code_store)."""
        if self.artifact is not None:
            out.write(_read_artifact(self.artifact))
            return
        write_files_zip(self.files(), out)

    def store(self, registry: Registry) -> StoredCode:
        """Into the code store: a folder straight from disk, an artifact as the zip it is."""
        if self.artifact is not None:
            return registry.store_zip(_read_artifact(self.artifact))
        if self.root is None:
            return registry.store_zip(self.zip_bytes())
        return registry.store_directory(self.root, self.patterns, self.excluded, self.extra)


@dataclass(frozen=True)
class ServicePackages:
    """What a deploy of one service uploads."""

    service: Source | None  # shared by the functions not in `functions`; None if none is
    functions: dict[str, Source] = field(default_factory=dict)  # by function name
    layers: dict[str, Source] = field(default_factory=dict)  # by layer key

    def all(self) -> list[Source]:
        shared = [self.service] if self.service is not None else []
        return [*shared, *self.functions.values(), *self.layers.values()]


def service_patterns(spec: ServiceSpec) -> list[str]:
    """The patterns of the service's package, defaults first (a later pattern wins)."""
    package: dict[str, Any] = spec.raw.get("package") or {}
    patterns = [f"!{p}" for p in FRAMEWORK_EXCLUDES]
    patterns.append(f"!{spec.file.name}")  # serverless.yml itself, as the Framework does
    for layer in spec.layers.values():  # the layers ship as layers, not in the code
        if layer.path is not None and spec.root in layer.path.parents:
            patterns.append(f"!{layer.path.relative_to(spec.root).as_posix()}/**")
    patterns += [str(p) for p in package.get("patterns") or []]
    # The older include/exclude keys, still common in the wild.
    patterns += [f"!{p}" for p in package.get("exclude") or []]
    patterns += [str(p) for p in package.get("include") or []]
    return patterns


def plan(spec: ServiceSpec, dependencies: Dependencies | None = None) -> ServicePackages:
    """The zips a deploy of `spec` uploads (nothing is read or written yet); `dependencies`
    (faasbox.dependencies.dependency_files) join each package made from the folder, or make
    the layers of installed dependencies."""
    dependencies = dependencies or Dependencies()
    package: dict[str, Any] = spec.raw.get("package") or {}
    extra = dependencies.package
    base = tuple(service_patterns(spec))
    individually = bool(package.get("individually"))
    service_artifact = _artifact(spec, package.get("artifact"))
    own: dict[str, Source] = {}
    for fn in spec.functions.values():
        fn_package = fn.package
        artifact = _artifact(spec, fn_package.get("artifact"))
        if artifact is not None:
            own[fn.name] = Source(f"{fn.key}.zip", artifact=artifact)
        elif individually or fn_package.get("individually"):
            patterns = [str(p) for p in fn_package.get("patterns") or []]
            patterns += [f"!{p}" for p in fn_package.get("exclude") or []]
            patterns += [str(p) for p in fn_package.get("include") or []]
            own[fn.name] = Source(f"{fn.key}.zip", spec.root, (*base, *patterns), extra=extra)
    shared: Source | None = None
    if any(fn.name not in own for fn in spec.functions.values()):
        shared = (
            Source(f"{spec.name}.zip", artifact=service_artifact)
            if service_artifact is not None
            else Source(f"{spec.name}.zip", spec.root, base, extra=extra)
        )
    layers = {key: _layer_source(spec, layer, dependencies) for key, layer in spec.layers.items()}
    return ServicePackages(shared, own, layers)


def _layer_source(spec: ServiceSpec, layer: LayerSpec, dependencies: Dependencies) -> Source:
    """A layer's zip: its artifact, its installed dependencies, or its folder filtered."""
    name = f"{layer.key}.zip"
    if layer.artifact is not None:
        return Source(name, artifact=layer.artifact)
    if layer.requirements:  # custom.pythonRequirements.layer
        return Source(name, extra=tuple(dependencies.layers.get(layer.key, ())))
    if layer.path is None or not layer.path.is_dir():
        raise DeployError(f"{spec.file}: layers.{layer.key}.path: no folder {layer.path}")
    patterns = tuple(f"!{p}" for p in FRAMEWORK_EXCLUDES) + tuple(layer.patterns)
    return Source(name, layer.path, patterns, excluded=LAYER_EXCLUDED)


def write_packages(spec: ServiceSpec, packages: ServicePackages) -> list[Path]:
    """`faasbox package`: each zip into the service's `.serverless/`, written atomically."""
    out_dir = spec.root / OUTPUT_DIR
    out_dir.mkdir(exist_ok=True)
    written: list[Path] = []
    for source in packages.all():
        target = out_dir / source.file_name
        tmp = target.with_name(f".{target.name}.tmp")
        with tmp.open("wb") as out:
            source.write_zip(out)
        os.replace(tmp, target)
        written.append(target)
    return written


def _artifact(spec: ServiceSpec, value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise DeployError(f"{spec.file}: package.artifact must be the path of a zip")
    return Path(os.path.normpath(spec.root / value))


def _read_artifact(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DeployError(f"Cannot read package.artifact {path}: {e.strerror}") from None
