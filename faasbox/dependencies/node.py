"""package.json, installed with npm into `node_modules/` of the service's package.

`npm ci --omit=dev` when a package-lock.json (or npm-shrinkwrap.json) is there, else
`npm install --omit=dev`: the production dependencies only, as they would be zipped for
Lambda. Run in a scratch folder holding only the manifest and lock, so the service's own
node_modules (never packaged: faasbox.registry.code_store.ALWAYS_EXCLUDED) plays no part.
Only for services with a Node.js function and at least one dependency.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from faasbox.config import ServiceSpec
from faasbox.dependencies import bundle
from faasbox.errors import DependencyInstallError
from faasbox.execution import runtimes

LOCKS = ("package-lock.json", "npm-shrinkwrap.json")


def has_node_functions(spec: ServiceSpec) -> bool:
    return any(runtimes.lookup(f.runtime) is runtimes.NODE for f in spec.functions.values())


def _npm() -> str:
    found = shutil.which("npm")
    if found is None:
        raise DependencyInstallError(
            "package.json has dependencies but npm is not installed: install Node.js's npm"
        )
    return found


def _node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "none"
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "none"


def files(spec: ServiceSpec, cache_dir: Path, progress: bundle.Progress) -> list[tuple[str, Path]]:
    manifest = spec.root / "package.json"
    if not has_node_functions(spec) or not manifest.is_file():
        return []
    try:
        dependencies = json.loads(manifest.read_text()).get("dependencies") or {}
    except (ValueError, AttributeError) as e:
        raise DependencyInstallError(f"{manifest}: not a valid package.json ({e})") from None
    if not dependencies:
        return []
    lock = next((spec.root / name for name in LOCKS if (spec.root / name).is_file()), None)
    inputs = [manifest.read_bytes(), lock.read_bytes() if lock else b""]
    bundle_key = bundle.key("node", *inputs, _node_version(), bundle.platform_tag())

    def install(target: Path) -> None:
        work = target / ".work"
        work.mkdir()
        shutil.copy2(manifest, work / "package.json")
        if lock is not None:
            shutil.copy2(lock, work / lock.name)
            argv = [_npm(), "ci", "--omit=dev"]
        else:
            argv = [_npm(), "install", "--omit=dev", "--no-package-lock"]
        argv += ["--no-audit", "--no-fund"]
        env = {**os.environ, "NODE_ENV": "production"}
        bundle.run(argv, work, " ".join(argv[1:3]), progress, env)
        if (work / "node_modules").is_dir():
            os.rename(work / "node_modules", target / "node_modules")
        shutil.rmtree(work)

    progress(f"{spec.name}: package.json ({len(dependencies)} dependencies)")
    folder = bundle.cached(cache_dir, bundle_key, install, progress)
    return list(bundle.files(folder, "node_modules"))
