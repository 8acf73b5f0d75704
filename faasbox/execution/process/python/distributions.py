"""Which version of each top-level package: installed here, or shipped in a function's code.

The launcher forks a function's workers from the preloaded zygote only where that is the
same as importing the function's own packages: for every package the zygote has imported
that the function ships too, the same version (faasbox.execution.process.launcher).
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
from collections.abc import Iterable
from pathlib import Path

UNKNOWN = ""  # a package shipped without its .dist-info (vendored by hand, a `slim` install)


def installed_versions(top_levels: Iterable[str]) -> dict[str, str]:
    """The installed version of each of `top_levels` (import names), where one is known."""
    providers = metadata.packages_distributions()
    versions: dict[str, str] = {}
    for name in top_levels:
        for dist in providers.get(name, [])[:1]:
            with contextlib.suppress(metadata.PackageNotFoundError):
                versions[name] = metadata.version(dist)
    return versions


def shipped_versions(folder: Path) -> dict[str, str]:
    """Top-level import name -> version, from the .dist-info folders pip left in `folder`."""
    versions: dict[str, str] = {}
    try:
        infos = [p for p in folder.iterdir() if p.name.endswith(".dist-info") and p.is_dir()]
    except OSError:
        return versions
    for info in infos:
        version = info.name[: -len(".dist-info")].rpartition("-")[2]
        for name in _top_levels(info):
            versions[name] = version
    return versions


def _top_levels(info: Path) -> set[str]:
    try:
        listed = (info / "top_level.txt").read_text().split()
        if listed:
            return set(listed)
    except OSError:
        pass
    names: set[str] = set()
    try:
        record = (info / "RECORD").read_text()
    except OSError:
        return names
    for line in record.splitlines():
        first = line.split(",", 1)[0].split("/", 1)[0]
        if first.endswith(".py"):
            first = first[:-3]
        if first and not first.endswith((".dist-info", ".libs", ".data")) and first != "..":
            names.add(first.split(".", 1)[0] if first.endswith(".so") else first)
    return names
