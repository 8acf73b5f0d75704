"""`invoke local`: one invocation in a throwaway runtime, with no server and no registry.

There is no jail, so no /opt: the function's layers (their source folders) are merged, in
order, into a scratch folder of symbolic links that stands in for /opt (its python/ on
sys.path, nodejs/node_modules on NODE_PATH, bin/ on PATH, lib/ on LD_LIBRARY_PATH, a
`bootstrap` found there), as an unjailed server's workers use their merged layers' folder.
A function with installed dependencies (faasbox.dependencies) runs from a scratch folder
of links to its package's files, the folder's own and the dependencies', as deployed.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import LATEST, DeployedFunction, FunctionConfig

Files = Iterable[tuple[str, Path]]  # (path in the package, file)


def invoke_local(
    config: FunctionConfig,
    code_dir: Path,
    payload: bytes,
    layers: Sequence[Files] = (),
    package: Files | None = None,
) -> InvocationResult:
    """Run the function once from its source folder, with the same worker, limits and logs
    as the server uses (but not its jail); `layers`: each layer's files, in order;
    `package`: the package's files (with its dependencies), if not just `code_dir`'s."""

    async def once() -> InvocationResult:
        with tempfile.TemporaryDirectory(prefix="faasbox-local-") as tmp:
            opt = _merged(layers, Path(tmp) / "opt") if layers else None
            task = _merged([package], Path(tmp) / "task") if package is not None else code_dir
            fn = DeployedFunction(
                config=config,
                version=LATEST,
                code_sha256="local",
                code_dir=task.resolve(),
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


def _merged(parts: Sequence[Files], into: Path) -> Path:
    """Links to every file of `parts` under `into`, a later part's file winning."""
    into.mkdir(parents=True, exist_ok=True)
    for files in parts:
        for rel, file in files:
            link = into / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(file.resolve())
    return into
