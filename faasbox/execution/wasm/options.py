"""A wasm function's `wasm:` options from serverless.yml, checked.

```yaml
wasm:
  args: [--quality, "90"]          # argv[1:]; argv[0] is the .wasm file's name
  env: {MODE: fast}                # added to the function's `environment`
  contentType: image/png           # of HTTP responses; default: sniffed (images), else
                                   # application/octet-stream
  dirs:                            # preopened folders of the code, read-only unless rw
    - data                         # seen by the program as /data
    - {path: cache, mode: rw}      # a writable copy (see faasbox.execution.wasm.executor)
  fuel: 100000000                  # an instruction budget per invocation
  models:                          # wasi-nn models for load_by_name (faasbox.execution.wasm.nn)
    mobilenet: model/mobilenet.onnx  # a .onnx or .tflite file of the code
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from faasbox.registry.models import FunctionConfig

OPTION_KEYS = ("args", "env", "contentType", "dirs", "fuel", "models")


class WasmConfigError(Exception):
    """The `wasm:` options cannot be used as written."""


@dataclass(frozen=True)
class Preopen:
    path: str  # relative to the code folder, normalized ("." for the folder itself)
    guest: str  # where the program sees it: "/" + path
    writable: bool


@dataclass(frozen=True)
class WasmOptions:
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    dirs: tuple[Preopen, ...] = ()
    fuel: int | None = None
    models: tuple[tuple[str, str], ...] = ()  # (name, path relative to the code)

    @classmethod
    def of(cls, config: FunctionConfig) -> WasmOptions:
        raw = config.wasm or {}
        if not isinstance(raw, dict):
            raise WasmConfigError(f"wasm: expected a mapping, got {raw!r}")
        unknown = sorted(set(raw) - set(OPTION_KEYS))
        if unknown:
            raise WasmConfigError(
                f"wasm: unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTION_KEYS)}"
            )
        return cls(
            args=_args(raw.get("args")),
            env=_env(raw.get("env")),
            content_type=_content_type(raw.get("contentType")),
            dirs=_dirs(raw.get("dirs")),
            fuel=_fuel(raw.get("fuel")),
            models=_models(raw.get("models")),
        )

    @staticmethod
    def fuel_of(config: FunctionConfig) -> bool:
        """Whether the function meters fuel (runs on the fuel engine), without checking the
        other options."""
        raw = config.wasm
        return isinstance(raw, dict) and raw.get("fuel") is not None


def _scalar(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _args(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else None
    texts = [_scalar(v) for v in items] if items is not None else [None]
    if any(t is None or "\0" in t for t in texts):
        raise WasmConfigError(f"wasm.args: expected a list of strings, got {value!r}")
    return tuple(t for t in texts if t is not None)


def _env(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise WasmConfigError(f"wasm.env: expected a mapping of names to values, got {value!r}")
    pairs = []
    for name, raw in value.items():
        text = _scalar(raw)
        if not isinstance(name, str) or not name or "=" in name or text is None:
            raise WasmConfigError(f"wasm.env: bad variable {name!r}: {raw!r}")
        pairs.append((name, text))
    return tuple(pairs)


def _content_type(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
        raise WasmConfigError(f"wasm.contentType: expected a media type, got {value!r}")
    return value.strip()


def _dirs(value: object) -> tuple[Preopen, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WasmConfigError(f"wasm.dirs: expected a list of folders, got {value!r}")
    found: dict[str, Preopen] = {}
    for item in value:
        entry: dict[str, Any] = {"path": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise WasmConfigError(
                f"wasm.dirs: expected a folder or {{path: folder, mode: ro|rw}}, got {item!r}"
            )
        mode = entry.get("mode", "ro")
        if mode not in ("ro", "rw") or set(entry) - {"path", "mode"}:
            raise WasmConfigError(f"wasm.dirs: mode must be ro or rw, in {item!r}")
        rel = PurePosixPath(entry["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise WasmConfigError(
                f"wasm.dirs: {entry['path']!r} must be a folder inside the function's code "
                "(a relative path without ..)"
            )
        path = str(rel)
        found[path] = Preopen(path, "/" if path == "." else f"/{path}", mode == "rw")
    return tuple(found.values())


def _fuel(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise WasmConfigError(f"wasm.fuel: expected a positive integer, got {value!r}")
    return value


def _models(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise WasmConfigError(
            f"wasm.models: expected a mapping of names to model files, got {value!r}"
        )
    found = []
    for name, path in value.items():
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            raise WasmConfigError(f"wasm.models: bad entry {name!r}: {path!r}")
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts:
            raise WasmConfigError(
                f"wasm.models: {name}: {path!r} must be a file inside the function's code "
                "(a relative path without ..)"
            )
        found.append((name, str(rel)))
    return tuple(found)


def inside(base: Path, rel: str) -> Path:
    """`base/rel`, resolved, refusing `..` or a symbolic link that leads out of `base`."""
    root = base.resolve()
    resolved = (root / rel).resolve()
    if resolved != root and root not in resolved.parents:
        raise WasmConfigError(f"wasm.dirs: {rel!r} leads outside the function's code")
    return resolved
