"""Where a Python function finds its imports: Lambda's `sys.path`, defined here once.

On Lambda's python3.x runtimes a function imports, in this order: its own code
(LAMBDA_TASK_ROOT), its layers (merged at /opt: `/opt/python/lib/python3.x/site-packages`,
then `/opt/python`, as sys.path shows on Lambda), the runtime's own packages (boto3, botocore,
awslambdaric), then the standard library. Nothing else: not the packages of the process
that started the worker. faasbox's worker is a child of the server's interpreter, whose
virtualenv holds faasbox's own dependencies (pydantic, uvicorn, click, rich, PyYAML, ...);
`function_sys_path` leaves all of them out, and `enter` also removes the import hooks that
the virtualenv's .pth files installed (an editable install's finder), so a function cannot
reach them either way.

Where the runtime's packages live: `RUNTIME_PACKAGES`, `<sys.prefix>/lambda-runtime`, filled
by `make` (the Makefile's lambda-runtime target, from `lambda_runtime.txt` beside this file)
with the versions Lambda's python3.11 runtime ships. Being inside the virtualenv, it is part
of what the jail binds read-only (faasbox.execution.process.jail binds sys.prefix).

Stdlib only: the worker imports this module.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence

PYTHON_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"
RUNTIME_PACKAGES = os.path.join(sys.prefix, "lambda-runtime")
RUNTIME_REQUIREMENTS = os.path.join(os.path.dirname(__file__), "lambda_runtime.txt")
LAYER_ROOT = "/opt"  # where a jailed worker sees its layers, as on Lambda
# Import hooks a virtualenv's .pth files add at interpreter start (an editable install's
# finder, setuptools' distutils shim): they would reach the server's packages.
_SERVER_HOOK_MODULES = ("__editable__", "_distutils_hack")


def layer_paths(root: str = LAYER_ROOT) -> list[str]:
    """The two folders of a layer root that Lambda's Python runtime puts on sys.path."""
    return [f"{root}/python/lib/{PYTHON_DIR}/site-packages", f"{root}/python"]


@functools.cache
def stdlib_paths() -> tuple[str, ...]:
    """This interpreter's standard library folders (and its zip), in sys.path's order
    (as at the first call: once per process, off the cold-start path's hundreds of µs)."""
    prefixes = tuple(os.path.realpath(p) for p in {sys.base_prefix, sys.base_exec_prefix})
    found = []
    for entry in sys.path:
        if not entry or not os.path.isabs(entry):
            continue
        real = os.path.realpath(entry)
        if real.startswith(prefixes) and not _is_site_dir(real):
            found.append(entry)
    return tuple(found)


def _is_site_dir(path: str) -> bool:
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def function_sys_path(
    task_root: str, layer_roots: Sequence[str] = (), runtime_dirs: Sequence[str] = ()
) -> list[str]:
    """A function's sys.path: its code, each layer root's two folders in order, the runtime's
    packages (`runtime_dirs`, RUNTIME_PACKAGES first), the standard library."""
    path = [task_root]
    for root in layer_roots:
        path += layer_paths(root)
    path += [RUNTIME_PACKAGES, *runtime_dirs]
    path += stdlib_paths()
    return list(dict.fromkeys(path))  # in order, each once


def enter(path: Sequence[str]) -> None:
    """Make `path` this process's import path, and nothing of the server's reachable."""
    sys.path[:] = list(path)
    sys.meta_path[:] = [f for f in sys.meta_path if not _is_server_hook(f)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if not _is_server_hook(h)]
    sys.path_importer_cache.clear()


def _is_server_hook(hook: object) -> bool:
    module = getattr(hook, "__module__", None) or type(hook).__module__
    return str(module).startswith(_SERVER_HOOK_MODULES)
