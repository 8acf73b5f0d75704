"""The actor that is one execution environment on a Ray node.

It hosts faasbox's own process executor (zygotes, jail, limits, log capture) with a budget
of one worker, for one function version, so a worker on a remote node behaves exactly as a
local one: its Outcome (logs, timeouts, errors, Init Duration) is the local executor's,
made on its node. One actor per environment: the resources Ray accounts for it (placement)
are exactly what that one worker may use, and an actor that dies takes one invocation along.

Invocations reach it over its own channel (faasbox.execution.ray.channel), not as Ray calls:
`ready` opens it on the node's address and says where; only the gateway that made the actor
(its `secret`) may use it. Ray calls are for its lifecycle: `ready`, `closed`, `close`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import ray

from faasbox.execution.admission import Budget
from faasbox.execution.api import Invocation, Outcome, StreamSink
from faasbox.execution.process.executor import ProcessExecutor
from faasbox.execution.ray.channel import ChannelServer
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
        secret: bytes,
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
        self.channel = ChannelServer(secret, self.invoke)
        self.stopped = asyncio.Event()
        self.where: dict[str, Any] = {}

    async def ready(self, provisioned: bool = False) -> dict[str, Any]:
        """Fetch the code (unless this node has it), open the channel, and say where this
        environment is; a `provisioned` one runs its worker's INIT now, and waits warm."""
        code_dir = await node_copy(self.code, self.cache)
        opt_dir = await node_copy(self.opt, self.cache) if self.opt is not None else None
        config = dataclasses.replace(self.fn.config, provisioned_concurrency=int(provisioned))
        self.fn = dataclasses.replace(self.fn, config=config, code_dir=code_dir, opt_dir=opt_dir)
        self.executor = ProcessExecutor(self.settings, Budget(1))
        if provisioned:
            await self.executor.pools.pool_for(self.fn).provision()
        address = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        port = await self.channel.start(address)
        self.where = {
            "node": self.node_id,
            "address": address,
            "port": port,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "isolationMissing": self.executor.isolation_missing(),
        }
        return self.where

    def info(self) -> dict[str, Any]:
        """Where this environment is, as `ready` said (its channel's address and port)."""
        return self.where

    async def invoke(
        self, header: dict[str, Any], payload: bytes, stream: StreamSink | None
    ) -> Outcome:
        """One CALL from the channel (faasbox.execution.ray.channel.call_header); a streamed
        response's pieces go back over it through `stream` as they are made."""
        assert self.executor is not None, "ready() first"
        return await self.executor.invoke(
            Invocation(
                self.fn,
                payload,
                header["request_id"],
                header["invoked_arn"],
                header["client_context"],
                header["identity"],
                header["http_event"],
                stream,
                header["trace_id"],
            )
        )

    async def closed(self) -> None:
        """Returns when the environment is closed; the gateway keeps one call of it pending,
        so an actor (or node) Ray sees die fails it, and the gateway drops the channel."""
        await self.stopped.wait()

    def worker_pid(self) -> int | None:
        workers = self.executor.workers() if self.executor is not None else []
        return workers[0].pid if workers else None

    async def close(self) -> None:
        self.stopped.set()
        await self.channel.close()
        if self.executor is not None:
            await self.executor.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
