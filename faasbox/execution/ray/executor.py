"""The Ray executor (faasbox.execution.api.Executor): invocations run in environments that
are actors on a Ray cluster's nodes, each hosting the local process executor there.

The runtime registry swaps it in for the process executor when `faasbox serve --ray
ADDRESS` is given: every function whose runtime the process executor runs (Python, Node.js,
`provided`) then runs on the cluster. A warm invocation is one round trip over the
environment's own channel to its host actor (faasbox.execution.ray.channel; Ray places and
stops the actor, and watches it): the event goes over, the local executor's Outcome comes
back as its node made it (logs, REPORT figures, Init Duration, timeouts, errors). An actor or
node that dies fails only the invocation it was running, with Runtime.ExitError (its channel
drops), and the pool starts its replacement where Ray places it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from typing import Any

import ray

from faasbox.execution.admission import Budget
from faasbox.execution.api import Invocation, Outcome, WorkerInfo
from faasbox.execution.lanes import Lanes
from faasbox.execution.ray.channel import ChannelClosed
from faasbox.execution.ray.ledger import NAMESPACE
from faasbox.execution.ray.pool import ActorPool, Environment, PlacementFailed, PoolOwner
from faasbox.execution.settings import RuntimeSettings
from faasbox.lambda_ import faults
from faasbox.registry.models import DeployedFunction

log = logging.getLogger("faasbox.execution")

# How long past its function's timeout a hop may take before the gateway gives up on the
# actor (a node cut off from the network answers nothing, not even an error).
HOP_GRACE_S = 30.0
KILLED_BY_NODE = -9  # what the invocation is told: as a local worker killed by SIGKILL


def connect(address: str) -> None:
    """Join the cluster as a driver (the gateway places and calls actors from it); a
    HOST:PORT where nothing listens is a ConnectionError at once (ray.init would retry for
    minutes)."""
    if not ray.is_initialized():
        reachable(address)
        ray.init(
            address=address,
            namespace=NAMESPACE,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=False,
        )


def reachable(address: str, timeout_s: float = 5.0) -> None:
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not port.isdigit():
        return  # "auto", or another form ray.init resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout_s).close()
    except OSError as e:
        raise ConnectionError(
            f"nothing answers at {host}:{port} ({e.strerror or e}); start the head node with "
            "`ray start --head` and give its address (HOST:6379)"
        ) from None


class RayExecutor(Lanes[ActorPool]):
    kind = "ray"

    def __init__(self, settings: RuntimeSettings, budget: Budget) -> None:
        assert settings.ray_address is not None, "the runtime registry chose this for --ray"
        connect(settings.ray_address)
        super().__init__(budget)
        self.owner = PoolOwner(settings, budget)
        self._isolation_missing: list[str] = []

    def start(self) -> None:
        pass  # environments start on their first invocation, or at provisioning

    async def invoke(self, invocation: Invocation) -> Outcome:
        fn = invocation.fn
        pool = self.pool_for(fn)
        env = pool.take_idle()  # the warm path: no await before the actor has the event
        if env is None:
            try:
                env = await pool.acquire()  # raises TooManyRequests
            except PlacementFailed as e:
                return _failure(faults.EXIT_ERROR, str(e), invocation.request_id)
        assert env.channel is not None, "an environment is ready, its channel open"
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(fn.config.timeout + HOP_GRACE_S):
                outcome = await env.channel.call(invocation)
        except (ChannelClosed, TimeoutError) as e:
            log.warning("environment %s of %s is gone: %s", env.name, fn.name, e)
            pool.release(env, healthy=False)
            return _died(invocation.request_id, (time.perf_counter() - t0) * 1000)
        except BaseException:
            pool.release(env, healthy=False)  # cancelled mid-invocation: its state is unknown
            raise
        env.invocations += 1
        # Cold or warm, Init Duration: the host's Outcome says, as its node's executor saw it
        # (a worker that timed out is replaced inside its actor: the next call there is cold).
        pool.release(env)
        return outcome

    def _new_lane(self, fn: DeployedFunction) -> ActorPool:
        return ActorPool(fn, self.owner)

    def provision(self, fn: DeployedFunction) -> None:
        if fn.config.provisioned_concurrency:
            self.owner.keep(self.pool_for(fn).provision())

    def workers(self, name: str | None = None) -> list[WorkerInfo]:
        now = time.monotonic()
        return [
            WorkerInfo(
                kind=self.kind,
                function=key[0],
                version=key[1],
                busy=env in pool.busy,
                pid=env.pid,
                started_by="ray",
                invocations=env.invocations,
                idle_seconds=now - env.last_used,
                node=env.node,
            )
            for key, pool in self.pools.items()
            if name is None or key[0] == name
            for env in [*pool.idle, *pool.busy]
        ]

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's live nodes, and this gateway's environments on each."""
        on_node: dict[str, int] = {}
        for env in self._environments():
            on_node[env.node] = on_node.get(env.node, 0) + 1
        return [
            {
                "id": n["NodeID"],
                "address": n["NodeManagerAddress"],
                "workers": on_node.get(n["NodeID"], 0),
            }
            for n in ray.nodes()  # type: ignore[no-untyped-call]
            if n.get("Alive")
        ]

    def stats(self) -> dict[str, Any]:
        pools = self.pools.values()
        return {
            "workers": sum(len(p.idle) + len(p.busy) for p in pools),
            "busy": sum(len(p.busy) for p in pools),
            "starting": sum(p.starting for p in pools),
            "waiting": sum(len(p.queue) for p in pools),
        }

    def isolation_missing(self) -> list[str]:
        return []  # each node's own: its environments' executors jail as the node allows

    async def close(self) -> None:
        self._close_lanes()
        for env, pool in [(e, p) for p in self.pools.values() for e in p.busy]:
            self.owner.stop(env, pool)
        if self.owner.background:
            await asyncio.gather(*self.owner.background, return_exceptions=True)
        self._stop_ticker()

    def _environments(self) -> list[Environment]:
        return [e for p in self.pools.values() for e in [*p.idle, *p.busy]]

    async def _tick(self) -> None:
        """Once a second: stop environments idle too long, or wanted by another gateway at
        their function's limit; forget those of dead nodes."""
        while self.pools:
            await asyncio.sleep(1.0)
            self.reap(time.monotonic() - self.owner.settings.idle_timeout_s)
            # Each pool asks its ledger on its own; one unanswered ledger delays none.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    pools = list(self.pools.values())
                    await asyncio.gather(*(p.yield_idle() for p in pools), return_exceptions=True)
            if any(p.idle for p in self.pools.values()):
                nodes = await asyncio.to_thread(ray.nodes)
                dead = {n["NodeID"] for n in nodes if not n.get("Alive")}
                for pool in self.pools.values():
                    for node in dead:
                        pool.drop_node(node)


def _died(request_id: str, duration_ms: float) -> Outcome:
    """The actor or its node died mid-invocation: as a local worker that was killed."""
    error = faults.exit_error(KILLED_BY_NODE, request_id)
    output = f"{error['errorMessage']}\n{error['errorType']}\n"
    return Outcome("crash", json.dumps(error).encode(), output, duration_ms, 0)


def _failure(error_type: str, message: str, request_id: str) -> Outcome:
    error = {"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {message}"}
    return Outcome("crash", json.dumps(error).encode(), f"{message}\n", 0.0, 0)
