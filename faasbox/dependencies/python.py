"""requirements.txt, installed with pip as serverless-python-requirements would.

`pip install --target` into a bundle, with the interpreter faasbox runs Python functions on
(faasbox.execution.runtimes: every `pythonX.Y` runs on the server's own Python 3), so the
wheels fit the function's Python version and this machine's platform. The bundle's files
land at the root of the package, where LAMBDA_TASK_ROOT puts them first on sys.path.

`custom.pythonRequirements`, as the plugin reads it:
- `fileName`: the requirements file (default requirements.txt, in the service's folder);
- `noDeploy`: packages left out (default: the plugin's list, what Lambda's runtime has);
- `slim`: leave out bytecode caches and .dist-info folders;
- `layer`: the requirements go into a layer (under `python/`) instead of the package
  (faasbox.config.requirements_layer declares it, `layer_files` fills it);
- `dockerizePip` and the other Docker options: not needed (faasbox runs functions on this
  machine's platform): ignored with a note.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faasbox.config import ServiceSpec
from faasbox.config.requirements_layer import KEY
from faasbox.dependencies import bundle
from faasbox.execution import runtimes

# serverless-python-requirements' default noDeploy: what Lambda's Python runtime provides.
DEFAULT_NO_DEPLOY = (
    "boto3",
    "botocore",
    "docutils",
    "jmespath",
    "pip",
    "python-dateutil",
    "s3transfer",
    "setuptools",
    "six",
)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_DOCKER_KEYS = ("dockerizePip", "dockerImage", "dockerFile", "dockerSsh", "dockerEnv")


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class RequirementsOptions:
    file_name: str = "requirements.txt"
    slim: bool = False
    no_deploy: tuple[str, ...] = DEFAULT_NO_DEPLOY
    layer: bool = False

    @classmethod
    def of(cls, spec: ServiceSpec) -> RequirementsOptions:
        custom = spec.raw.get("custom") or {}
        raw: dict[str, Any] = custom.get("pythonRequirements") or {}
        if not isinstance(raw, dict):
            raw = {}
        no_deploy = raw.get("noDeploy", DEFAULT_NO_DEPLOY)
        return cls(
            file_name=str(raw.get("fileName") or "requirements.txt"),
            slim=bool(raw.get("slim", False)),
            no_deploy=tuple(str(n) for n in (no_deploy or ())),
            layer=bool(raw.get("layer", False)),
        )


def has_python_functions(spec: ServiceSpec) -> bool:
    return any(runtimes.lookup(f.runtime) is runtimes.PYTHON for f in spec.functions.values())


def deployed_requirements(text: str, no_deploy: tuple[str, ...]) -> str:
    """The requirements file without the lines naming a `noDeploy` package."""
    left_out = {normal(n) for n in no_deploy}
    kept = []
    for line in text.splitlines():
        match = _NAME.match(line)
        is_option = line.lstrip().startswith("-")
        if match and not is_option and normal(match.group(1)) in left_out:
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


LAYER_PREFIX = "python/"  # where a layer's Python packages go on sys.path (/opt/python)


def files(spec: ServiceSpec, cache_dir: Path, progress: bundle.Progress) -> list[tuple[str, Path]]:
    """The installed requirements, for the root of the package (unless `layer` is set)."""
    if RequirementsOptions.of(spec).layer:
        return []
    folder = installed(spec, cache_dir, progress)
    return list(bundle.files(folder)) if folder is not None else []


def layer_files(
    spec: ServiceSpec, cache_dir: Path, progress: bundle.Progress
) -> dict[str, list[tuple[str, Path]]]:
    """With `layer` set: the requirements layer's files under python/, by layer key."""
    layer = spec.layers.get(KEY)
    if layer is None or not layer.requirements:
        return {}
    folder = installed(spec, cache_dir, progress)
    found = list(bundle.files(folder)) if folder is not None else []
    return {KEY: [(LAYER_PREFIX + rel, path) for rel, path in found]}


def installed(spec: ServiceSpec, cache_dir: Path, progress: bundle.Progress) -> Path | None:
    """The bundle of the service's requirements (installed now unless cached), or None."""
    options = RequirementsOptions.of(spec)
    requirements = spec.root / options.file_name
    if not has_python_functions(spec) or not requirements.is_file():
        return None
    custom = (spec.raw.get("custom") or {}).get("pythonRequirements") or {}
    if isinstance(custom, dict) and any(k in custom for k in _DOCKER_KEYS):
        progress("custom.pythonRequirements' Docker options are not needed here: ignored")
    text = deployed_requirements(requirements.read_text(), options.no_deploy)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    bundle_key = bundle.key(
        "python", text, python, bundle.platform_tag(), str(options.slim), *options.no_deploy
    )

    def install(target: Path) -> None:
        listed = target.parent / f".{target.name}-requirements.txt"
        listed.write_text(text)
        try:
            argv = [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--target",
                str(target),
                "--requirement",
                str(listed),
                "--no-input",
                "--no-compile",  # bytecode would not match the stored sources' mtimes
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "--no-warn-script-location",
                "--no-warn-conflicts",  # with the virtualenv pip runs from: not the target
            ]
            env = {**os.environ, "PIP_NO_INPUT": "1", "PYTHONDONTWRITEBYTECODE": "1"}
            env.pop("PIP_TARGET", None)
            bundle.run(argv, spec.root, f"pip install -r {options.file_name}", progress, env)
        finally:
            listed.unlink(missing_ok=True)
        remove_distributions(target, options.no_deploy)
        shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: not importable
        if options.slim:
            slim(target)

    progress(f"{spec.name}: {options.file_name} for Python {python}")
    return bundle.cached(cache_dir, bundle_key, install, progress)


def remove_distributions(target: Path, names: tuple[str, ...]) -> None:
    """Delete what pip installed of `names` (pulled in by another requirement), by RECORD."""
    wanted = {normal(n) for n in names}
    for info in target.glob("*.dist-info"):
        name = info.name[: -len(".dist-info")].rpartition("-")[0]
        if normal(name) not in wanted:
            continue
        record = info / "RECORD"
        lines = record.read_text().splitlines() if record.is_file() else []
        for line in lines:
            rel = line.split(",", 1)[0]
            path = (target / rel).resolve()
            if path.is_file() and target.resolve() in path.parents:
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)
    for folder in sorted(target.rglob("*"), key=lambda p: -len(p.parts)):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def slim(target: Path) -> None:
    """The plugin's `slim`: no bytecode caches, no .dist-info folders."""
    for path in sorted(target.rglob("*"), key=lambda p: -len(p.parts)):
        if path.is_dir() and (path.name == "__pycache__" or path.name.endswith(".dist-info")):
            shutil.rmtree(path, ignore_errors=True)
        elif path.suffix in (".pyc", ".pyo") and path.is_file():
            path.unlink()
