"""The gateway's Ray environments of each function version.

An `ActorPool` is, as a local pool is (faasbox.execution.process.pool), an
`EnvironmentLane` (faasbox.execution.lane), here of host actors (faasbox.execution.ray.host)
on the cluster's nodes: an idle one serves the next invocation; none idle, one more is
started (scale-up on queueing: while it starts, a busy one that frees first serves the
request, and the new one joins the pool) under the function's limits and the invoker's
budget, else the request queues, then gets a 429. Idle environments are stopped after
`idle_timeout_s` but the provisioned ones (scale-down on idleness). A function with a
reserved or provisioned concurrency claims each environment from its cluster-wide ledger
(faasbox.execution.ray.ledger) as it starts and releases it as it stops. Each environment's
invocations go over its channel (faasbox.execution.ray.channel), opened once it is ready; a
Ray call of it stays pending meanwhile (`closed`), so an actor Ray sees die drops its
channel, failing what runs there and sparing the next caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import ray

from faasbox.execution.admission import Budget
from faasbox.execution.lane import EnvironmentLane
from faasbox.execution.ray import placement
from faasbox.execution.ray.channel import Channel, new_secret
from faasbox.execution.ray.code import CodeShipper
from faasbox.execution.ray.host import EnvironmentHost
from faasbox.execution.ray.ledger import NAMESPACE, ledger_for
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import DeployedFunction

HostActor = ray.remote(EnvironmentHost)
# A claim the ledger refused is asked again this often until the request's queue deadline:
# meanwhile the gateway holding an idle environment of the function gives it up.
CLAIM_RETRY_S = 0.25


class PlacementFailed(Exception):
    """No node took the environment in time (its resources exist nowhere, or are in use)."""


@dataclass(eq=False)
class Environment:
    """One host actor, as the gateway sees it."""

    actor: Any
    name: str
    node: str = ""
    address: str = ""
    pid: int | None = None
    invocations: int = 0
    last_used: float = field(default_factory=time.monotonic)
    provisioned: bool = False
    channel: Channel | None = None
    watch: asyncio.Future[Any] | None = None

    @property
    def usable(self) -> bool:
        return self.channel is not None and not self.channel.closed

    def watch_actor(self) -> None:
        """Drop the channel once the actor ends, however it ends (Ray says so)."""

        async def closed() -> None:
            with contextlib.suppress(Exception):
                await self.actor.closed.remote()

        def drop(_: asyncio.Future[None]) -> None:
            if self.channel is not None:
                self.channel.close()

        self.watch = asyncio.ensure_future(closed())
        self.watch.add_done_callback(drop)

    def forget(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
        if self.channel is not None:
            self.channel.close()


class ActorPool(EnvironmentLane[Environment, Environment]):
    """A function version's host actors (faasbox.execution.lane): a request is given the
    environment itself."""

    def __init__(self, fn: DeployedFunction, owner: PoolOwner) -> None:
        super().__init__(fn, owner.settings, owner.budget)
        self.owner = owner
        reserved = fn.config.reserved_concurrency
        counted = reserved is not None or bool(fn.config.provisioned_concurrency)
        self.ledger: Any = ledger_for(fn.name) if counted else None

    def _usable(self, env: Environment) -> bool:
        return env.usable  # not once its actor died: its channel drops

    def _warm(self, env: Environment) -> Environment:
        return env

    def _adopted(self, env: Environment) -> None:
        self.release(env)

    def _stop(self, env: Environment) -> None:
        self.owner.stop(env, self)

    def _keeps_warm(self, env: Environment, evicted: int) -> bool:
        return env.provisioned  # claimed as such from the ledger, which counts them

    async def _claim(self, name: str, provisioned: bool, deadline: float) -> None:
        wanted = self.fn.config.provisioned_concurrency if provisioned else None
        loop = asyncio.get_running_loop()
        while not await self.ledger.claim.remote(name, self.fn.config.reserved_concurrency, wanted):
            if provisioned or loop.time() + CLAIM_RETRY_S > deadline:
                raise self.queue.throttled()
            await asyncio.sleep(CLAIM_RETRY_S)

    async def yield_idle(self) -> int:
        """Stop this pool's idle on-demand environments if another gateway waits for one
        (its claim refused at the function's limit): their slots pass to it."""
        if self.ledger is None or not any(not e.provisioned for e in self.idle):
            return 0
        if not await self.ledger.wanted.remote():
            return 0
        return self.evict_idle(older_than=time.monotonic())

    async def _start(self, deadline: float = 0.0, provisioned: bool = False) -> Environment:
        """A new environment, placed and with its code; busy, for the caller. Its ledger
        claim is asked again until `deadline` (the loop's clock) while other gateways'
        environments hold the function's limit."""
        self.starting += 1
        name = f"faasbox-env-{self.fn.name}-{uuid.uuid4().hex[:12]}"
        env: Environment | None = None
        try:
            if self.ledger is not None:
                await self._claim(name, provisioned, deadline)
            secret = new_secret()
            env = Environment(await self.owner.start_actor(self.fn, name, secret), name)
            if self.ledger is not None:
                self.ledger.confirm.remote(name)  # named now: the ledger may prune it once gone
            env.provisioned = provisioned
            async with asyncio.timeout(self.owner.settings.ray_placement_timeout_s):
                info = await env.actor.ready.remote(provisioned)
            env.node, env.address, env.pid = info["node"], info["address"], info["pid"]
            env.channel = await self._connect(info["address"], info["port"], secret)
            env.watch_actor()
        except BaseException as e:
            self.starting -= 1
            self.budget.free(busy=True, lane=self)
            if env is not None:
                self.owner.stop(env, self)
            elif self.ledger is not None:
                self.ledger.release.remote(name)
            if isinstance(e, asyncio.TimeoutError | TimeoutError):
                raise PlacementFailed(
                    f"no Ray node took an environment of {self.fn.name} within "
                    f"{self.owner.settings.ray_placement_timeout_s:g} s; each needs "
                    f"{placement.describe(self.fn.config)}"
                ) from None
            if isinstance(e, ray.exceptions.RayError):  # its actor died while starting
                first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise PlacementFailed(
                    f"an environment of {self.fn.name} failed to start on the cluster: "
                    f"{type(e).__name__}: {first_line}"
                ) from None
            raise
        self.starting -= 1
        self.busy.add(env)
        return env

    async def _connect(self, address: str, port: int, secret: bytes) -> Channel:
        try:
            async with asyncio.timeout(self.owner.settings.ray_placement_timeout_s):
                return await Channel.open(address, port, secret)
        except (OSError, TimeoutError) as e:  # ChannelClosed is an OSError too
            raise PlacementFailed(
                f"an environment of {self.fn.name} started on {address}, but its channel "
                f"(port {port}) did not answer: {e or type(e).__name__}; the gateway must "
                "reach every node's address as Ray reports it"
            ) from None

    def drop_node(self, node: str) -> int:
        """Forget the idle environments on a node that died (their actors are gone)."""
        gone = [e for e in self.idle if e.node == node]
        for env in gone:
            self.idle.remove(env)
            self._discard(env, busy=False)
        return len(gone)

    async def provision(self) -> None:
        """Start environments until `provisioned` of the cluster's are live (the ledger says
        how many other gateways keep already); each waits idle, warm."""
        while sum(
            e.provisioned for e in [*self.idle, *self.busy]
        ) < self.provisioned and self.budget.reserve(self, provisioning=True):
            try:
                env = await self._start(provisioned=True)
            except Exception:  # the ledger's full (other gateways keep them), or no node
                return
            self.release(env)


class PoolOwner:
    """What pools share: settings, the budget, the code in the object store, stopping."""

    def __init__(self, settings: RuntimeSettings, budget: Budget) -> None:
        self.settings = settings
        self.budget = budget
        self.code = CodeShipper()
        self.background: set[asyncio.Future[Any]] = set()

    async def start_actor(self, fn: DeployedFunction, name: str, secret: bytes) -> Any:
        code = await self.code.bundle(fn.code_sha256, fn.code_dir)
        opt = None
        if fn.opt_dir is not None:  # merged layers: a folder named by their versions' hash
            opt = await self.code.bundle(f"opt-{fn.opt_dir.name}", fn.opt_dir)
        options = placement.actor_options(fn.config)
        return HostActor.options(name=name, namespace=NAMESPACE, **options).remote(
            self.settings, fn, code, opt, secret
        )

    def stop(self, env: Environment, pool: ActorPool) -> None:
        """Stop an environment's actor (its worker first), and release its ledger claim."""
        self.keep(self._stop(env, pool.ledger))

    async def _stop(self, env: Environment, ledger: Any) -> None:
        env.forget()
        # Dead already, or stuck: killed below either way.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await env.actor.close.remote()
        ray.kill(env.actor, no_restart=True)
        if ledger is not None:
            # The ledger prunes the names of actors that are gone, should this fail.
            with contextlib.suppress(ray.exceptions.RayError):
                await ledger.release.remote(env.name)

    def keep(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
