"""The actor that is one execution environment on a Ray node.

It hosts faasbox's own process executor (zygotes, jail, limits, log capture) with a budget
of one worker, for one function version, so a worker on a remote node behaves exactly as a
local one: its Outcome (logs, timeouts, errors, Init Duration) is the local executor's,
made on its node. One actor per environment: the resources Ray accounts for it (placement)
are exactly what that one worker may use, and an actor that dies takes one invocation along.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import ray

from faasbox.execution.admission import Budget
from faasbox.execution.api import Invocation, Outcome
from faasbox.execution.process.executor import ProcessExecutor
from faasbox.execution.ray.code import Bundle, node_cache, node_copy
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import DeployedFunction

# The host decides nothing about idleness: the gateway's pool stops the actor.
NEVER = 10.0 * 365 * 86400


class EnvironmentHost:
    """One function version's environment; `ready` before the first `invoke`."""

    def __init__(
        self,
        settings: RuntimeSettings,
        fn: DeployedFunction,
        code: Bundle,
        opt: Bundle | None,
    ) -> None:
        self.node_id = ray.get_runtime_context().get_node_id()
        self.cache = node_cache(self.node_id)
        self.data_dir = Path(tempfile.mkdtemp(prefix="env-", dir=self.cache))
        self.settings = dataclasses.replace(
            settings,
            data_dir=self.data_dir,
            max_workers=1,
            idle_timeout_s=NEVER,
            persist_logs=False,
            # `preload` kept: its packages are what functions may import beyond their own
            # (preload_site); its zygote starts only for a second cold start that wants it.
        )
        self.fn = fn
        self.code = code
        self.opt = opt
        self.executor: ProcessExecutor | None = None

    async def ready(self, provisioned: bool = False) -> dict[str, Any]:
        """Fetch the code (unless this node has it) and say where this environment is; a
        `provisioned` one runs its worker's INIT now, and waits warm."""
        code_dir = await node_copy(self.code, self.cache)
        opt_dir = await node_copy(self.opt, self.cache) if self.opt is not None else None
        config = dataclasses.replace(self.fn.config, provisioned_concurrency=int(provisioned))
        self.fn = dataclasses.replace(self.fn, config=config, code_dir=code_dir, opt_dir=opt_dir)
        self.executor = ProcessExecutor(self.settings, Budget(1))
        if provisioned:
            await self.executor.pools.pool_for(self.fn).provision()
        return {
            "node": self.node_id,
            "address": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "isolationMissing": self.executor.isolation_missing(),
        }

    async def invoke(
        self,
        payload: bytes,
        request_id: str,
        invoked_arn: str,
        client_context: dict[str, Any] | None,
        identity: dict[str, Any] | None,
        http_event: bool,
        trace_id: str | None,
    ) -> Outcome:
        assert self.executor is not None, "ready() first"
        return await self.executor.invoke(
            Invocation(
                self.fn,
                payload,
                request_id,
                invoked_arn,
                client_context,
                identity,
                http_event,
                None,  # no streaming across the hop: the whole payload comes back
                trace_id,
            )
        )

    def worker_pid(self) -> int | None:
        workers = self.executor.workers() if self.executor is not None else []
        return workers[0].pid if workers else None

    async def close(self) -> None:
        if self.executor is not None:
            await self.executor.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
