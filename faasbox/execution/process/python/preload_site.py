"""The preloaded packages as a folder of their own, so functions can import them.

A function's sys.path holds none of the server's virtualenv (search_path). The packages of
faasbox's `examples` extra and those the preloaded zygote imports (numpy, Pillow, simplejpeg,
OpenCV, onnxruntime: faasbox.execution.settings.DEFAULT_PRELOAD) are the exception faasbox
makes on purpose, as if a layer every function has provided them: the example image
functions use them without shipping 200 MB of wheels, and a worker forked from the
preloaded zygote has them imported already. This module builds `<sys.prefix>/
faasbox-preload/<hash>/`: symbolic links to exactly those distributions (and what they
require) in the virtualenv, nothing else, which the worker puts after the runtime's
packages. A function that ships its own copy finds its copy first (its code comes first).

Built by the server at start, in the virtualenv (which a jail shows read-only), under a name
that is a hash of its links: servers sharing a virtualenv share one folder, and a half-built
one is never seen (renamed into place).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("faasbox.execution")
PRELOAD_ROOT = Path(sys.prefix) / "faasbox-preload"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: metadata.Distribution) -> list[str]:
    """The names `dist` requires, leaving out optional extras."""
    names = []
    for requirement in dist.requires or []:
        if "extra ==" in requirement.replace("extra==", "extra =="):
            continue
        match = _NAME.match(requirement.strip())
        if match:
            names.append(match.group(0))
    return names


def faasbox_requirements(extra: str | None) -> list[str]:
    """The distributions faasbox requires itself (None), or those of one of its extras."""
    try:
        requires = metadata.requires("faasbox") or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for requirement in requires:
        marker = requirement.partition(";")[2].replace(" ", "").replace("'", '"')
        match = _NAME.match(requirement.strip())
        wanted = f'extra=="{extra}"' in marker if extra else "extra==" not in marker
        if match and wanted:
            names.append(match.group(0))
    return names


def distribution_closure(modules: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions providing `modules` (top-level names taken) and those of
    the `examples` extra, and every distribution they require, once each."""
    providers = metadata.packages_distributions()
    todo = [d for m in modules for d in providers.get(m.partition(".")[0], [])]
    todo += faasbox_requirements("examples")
    # Never faasbox's own dependencies, whatever an example package requires, but for those
    # the `examples` extra lists itself (the gRPC runtime the Dapr SDK needs, psycopg).
    own = {_normal(n) for n in faasbox_requirements(None)}
    own -= {_normal(n) for n in faasbox_requirements("examples")}
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        name = _normal(todo.pop())
        if name in seen or name in own:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        todo += _requirements(dist)
    return list(seen.values())


def top_level_entries(dist: metadata.Distribution) -> set[str]:
    """The names a distribution installed at the top of its site-packages folder."""
    entries: set[str] = set()
    for file in dist.files or []:
        first = file.parts[0] if file.parts else ""
        if first and first not in ("..", "__pycache__") and not first.endswith(".pth"):
            entries.add(first)
    return entries


def build(modules: Iterable[str]) -> Path | None:
    """The folder of links to the distributions behind `modules`; None if none is installed
    or the virtualenv cannot be written (functions then see no preloaded package)."""
    links: dict[str, str] = {}
    for dist in distribution_closure(modules):
        site = Path(str(dist.locate_file("")))
        for entry in top_level_entries(dist):
            target = site / entry
            if target.exists():
                links[entry] = str(target)
    if not links:
        return None
    digest = hashlib.sha256(repr(sorted(links.items())).encode()).hexdigest()[:16]
    final = PRELOAD_ROOT / digest
    if final.is_dir():
        return final
    staging: Path | None = None
    try:
        PRELOAD_ROOT.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=PRELOAD_ROOT))
        for entry, link_to in links.items():
            os.symlink(link_to, staging / entry)
        staging.chmod(0o755)
        try:
            os.rename(staging, final)
        except OSError:  # another server built the same folder meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as e:
        log.warning("functions will not see the preloaded packages: %s", e)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        return final if final.is_dir() else None
    return final
