"""A service's dependencies, installed at deploy into bundles that join its package.

`requirements.txt` (pip, python.py) and `package.json` (npm, node.py) are installed, as
serverless-python-requirements and `npm ci` would, into a bundle cached by content hash
(bundle.py): a redeploy with unchanged requirements installs nothing. A plugin the
Framework would need to package the service (serverless-wsgi, wsgi.py) adds its files the
same way. `dependency_files` is the one entry point: the files to add to the package, at
the paths the function sees them under LAMBDA_TASK_ROOT, and the files of the layers made
of dependencies (`custom.pythonRequirements.layer`). docs/packaging.md, Dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from faasbox.config import ServiceSpec
from faasbox.dependencies import node, python, wsgi
from faasbox.dependencies.bundle import Progress, default_cache_dir

__all__ = ["Dependencies", "Progress", "default_cache_dir", "dependency_files"]

Files = list[tuple[str, Path]]  # (path in the zip, file on disk)
Installer = Callable[[ServiceSpec, Path, Progress], Files]
INSTALLERS: tuple[Installer, ...] = (python.files, node.files, wsgi.files)
LayerInstaller = Callable[[ServiceSpec, Path, Progress], dict[str, Files]]
LAYER_INSTALLERS: tuple[LayerInstaller, ...] = (python.layer_files,)


@dataclass(frozen=True)
class Dependencies:
    """What a service's installed dependencies add to a deploy."""

    package: tuple[tuple[str, Path], ...] = ()  # into every package made from the folder
    layers: Mapping[str, Files] = field(default_factory=dict)  # a layer's files, by layer key


def dependency_files(spec: ServiceSpec, cache_dir: Path, progress: Progress) -> Dependencies:
    """Everything the service's dependencies add to its packages and layers; raises
    DependencyInstallError, with the installer's own message, when one fails."""
    found: Files = []
    for installer in INSTALLERS:
        found += installer(spec, cache_dir, progress)
    layers: dict[str, Files] = {}
    for layer_installer in LAYER_INSTALLERS:
        layers.update(layer_installer(spec, cache_dir, progress))
    return Dependencies(tuple(found), layers)
