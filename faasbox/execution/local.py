"""`invoke local`: one invocation in a throwaway runtime, with no server and no registry.

There is no jail, so no /opt: the function's layers (their source folders) are merged, in
order, into a scratch folder of symbolic links that stands in for /opt (its python/ on
sys.path, nodejs/node_modules on NODE_PATH, bin/ on PATH, lib/ on LD_LIBRARY_PATH, a
`bootstrap` found there), as an unjailed server's workers use their merged layers' folder.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import LATEST, DeployedFunction, FunctionConfig


def invoke_local(
    config: FunctionConfig, code_dir: Path, payload: bytes, layer_dirs: Sequence[Path] = ()
) -> InvocationResult:
    """Run the function once from its source folder, with the same worker, limits and logs
    as the server uses (but not its jail); `layer_dirs`: its layers' folders, in order."""

    async def once() -> InvocationResult:
        with tempfile.TemporaryDirectory(prefix="faasbox-local-") as tmp:
            opt = _merged(layer_dirs, Path(tmp) / "opt") if layer_dirs else None
            fn = DeployedFunction(
                config=config,
                version=LATEST,
                code_sha256="local",
                code_dir=code_dir.resolve(),
                code_size=0,
                last_modified="",
                revision_id="local",
                opt_dir=opt,
            )
            # No jail: this is the caller's own code, run in place from its source folder
            # (which the jail's unprivileged uid may not even be allowed to read).
            settings = RuntimeSettings(
                data_dir=Path(tmp), max_workers=1, jail=False, persist_logs=False
            )
            invoker = Invoker(settings)
            try:
                return await invoker.invoke(fn, payload)
            finally:
                await invoker.close()

    return asyncio.run(once())


def _merged(layer_dirs: Sequence[Path], opt: Path) -> Path:
    """Links to every file of `layer_dirs` under `opt`, a later layer's file winning."""
    for layer in layer_dirs:
        for file in sorted(p for p in layer.rglob("*") if not p.is_dir()):
            link = opt / file.relative_to(layer)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(file.resolve())
    return opt
