"""A service's dependencies, installed at deploy into bundles that join its package.

`requirements.txt` (pip, python.py) and `package.json` (npm, node.py) are installed, as
serverless-python-requirements and `npm ci` would, into a bundle cached by content hash
(bundle.py): a redeploy with unchanged requirements installs nothing. A plugin the
Framework would need to package the service (serverless-wsgi, wsgi.py) adds its files the
same way. `dependency_files` is the one entry point: the files to add to the package, at
the paths the function sees them under LAMBDA_TASK_ROOT. docs/packaging.md, Dependencies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from faasbox.config import ServiceSpec
from faasbox.dependencies import node, python, wsgi
from faasbox.dependencies.bundle import Progress, default_cache_dir

__all__ = ["Progress", "default_cache_dir", "dependency_files"]

Installer = Callable[[ServiceSpec, Path, Progress], list[tuple[str, Path]]]
INSTALLERS: tuple[Installer, ...] = (python.files, node.files, wsgi.files)


def dependency_files(
    spec: ServiceSpec, cache_dir: Path, progress: Progress
) -> list[tuple[str, Path]]:
    """(package path, file) of everything the service's dependencies add to its package;
    raises DependencyInstallError, with the installer's own message, when one fails."""
    found: list[tuple[str, Path]] = []
    for installer in INSTALLERS:
        found += installer(spec, cache_dir, progress)
    return found
