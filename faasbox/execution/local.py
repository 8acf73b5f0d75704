"""`invoke local`: one invocation in a throwaway runtime, with no server and no registry."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import LATEST, DeployedFunction, FunctionConfig


def invoke_local(config: FunctionConfig, code_dir: Path, payload: bytes) -> InvocationResult:
    """Run the function once from its source folder, with the same worker, limits and logs
    as the server uses (but not its jail)."""
    fn = DeployedFunction(
        config=config,
        version=LATEST,
        code_sha256="local",
        code_dir=code_dir.resolve(),
        code_size=0,
        last_modified="",
        revision_id="local",
    )

    async def once() -> InvocationResult:
        with tempfile.TemporaryDirectory(prefix="faasbox-local-") as tmp:
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
