"""Warm pools: the workers of each deployed function version, and the global cap on workers.

A pool hands out an idle warm worker when it has one, starts a new one (a cold start) while
the function is under its concurrency limit and the machine under its global cap, and
otherwise queues the request for a short time before answering 429, as Lambda throttles.
Idle workers are reaped after `idle_timeout_s`; a redeploy drains the old version's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from dataclasses import dataclass

from faasbox.errors import TooManyRequests
from faasbox.execution.process.launcher import Launcher
from faasbox.execution.process.limits import MemoryLimiter
from faasbox.execution.process.worker_process import InitOutcome, WorkerProcess
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import DeployedFunction


@dataclass
class Lease:
    worker: WorkerProcess
    cold: bool
    init: InitOutcome | None = None  # set on a cold start


PoolKey = tuple[str, str, str]


def pool_key(fn: DeployedFunction) -> PoolKey:
    return (fn.name, fn.version, fn.revision_id)


class FunctionPool:
    def __init__(self, fn: DeployedFunction, manager: PoolManager) -> None:
        self.fn = fn
        self.manager = manager
        self.idle: list[WorkerProcess] = []
        self.busy: set[WorkerProcess] = set()
        self.starting = 0
        self.waiters: deque[asyncio.Future[WorkerProcess | None]] = deque()
        self.draining = False
        reserved = fn.config.reserved_concurrency
        self.limit = manager.settings.max_workers if reserved is None else reserved

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.busy) + self.starting

    def _pop_idle(self) -> WorkerProcess | None:
        while self.idle:
            worker = self.idle.pop()  # the most recently used: its caches are warmest
            if worker.alive:
                self.busy.add(worker)
                return worker
            self._discard(worker)
        return None

    async def acquire(self) -> Lease:
        loop = asyncio.get_running_loop()
        settings = self.manager.settings
        deadline = loop.time() + settings.queue_timeout_s
        while True:
            worker = self._pop_idle()
            if worker is not None:
                return Lease(worker, cold=False)
            if self.size < self.limit and self.manager.reserve_slot(self):
                return await self._start_worker()
            remaining = deadline - loop.time()
            if self.limit == 0 or len(self.waiters) >= settings.queue_limit or remaining <= 0:
                raise self._throttled()
            waiter: asyncio.Future[WorkerProcess | None] = loop.create_future()
            self.waiters.append(waiter)
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            except asyncio.CancelledError:
                if waiter.done() and (handed := waiter.result()) is not None:
                    self.release(handed)
                waiter.cancel()
                raise
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
                raise self._throttled()
            handed = waiter.result()
            if handed is not None:
                return Lease(handed, cold=False)
            # None: a slot was freed somewhere; go round and try to take it.

    def _throttled(self) -> TooManyRequests:
        if self.fn.config.reserved_concurrency is not None:
            return TooManyRequests(
                "Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        return TooManyRequests("Rate Exceeded.")

    async def _start_worker(self) -> Lease:
        self.starting += 1
        worker = WorkerProcess(self.fn, self.manager.run_dir, self.manager.launcher)
        try:
            outcome = await worker.start(self.manager.settings.init_timeout_s)
        except BaseException:
            self.starting -= 1
            worker.kill()
            worker.cleanup()
            self.manager.free_slot()
            raise
        self.starting -= 1
        self.busy.add(worker)
        self.manager.workers.add(worker)
        return Lease(worker, cold=True, init=outcome)

    def release(self, worker: WorkerProcess, healthy: bool = True) -> None:
        """Give a worker back after an invocation; an unhealthy one is killed, not reused."""
        self.busy.discard(worker)
        if not healthy or not worker.alive or self.draining:
            self._discard(worker)
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.busy.add(worker)
                waiter.set_result(worker)
                return
        worker.last_used = time.monotonic()
        self.idle.append(worker)

    def wake_one(self) -> bool:
        """Tell one waiting request that a slot is free; False if none is waiting."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    def _discard(self, worker: WorkerProcess) -> None:
        self.manager.workers.discard(worker)
        self.manager.retire_worker(worker)
        self.manager.free_slot()

    @property
    def provisioned(self) -> int:
        """Workers kept warm whatever the traffic (provisionedConcurrency), unless draining."""
        if self.draining:
            return 0
        return min(self.fn.config.provisioned_concurrency or 0, self.limit)

    async def provision(self) -> None:
        """Start workers until `provisioned` are live; each runs INIT and waits idle."""
        while self.size < self.provisioned and self.manager.reserve_slot(self):
            lease = await self._start_worker()
            if lease.init is not None and lease.init.error is not None:
                self.release(lease.worker, healthy=False)
                return  # a function that cannot INIT is not kept warm
            self.release(lease.worker)

    def evict_idle(self, older_than: float | None = None) -> int:
        """Stop idle workers (all, or those idle since before `older_than`), keeping the
        provisioned ones when only reaping."""
        keep: list[WorkerProcess] = []
        evicted = 0
        spare = len(self.idle) + len(self.busy) - self.provisioned
        for worker in sorted(self.idle, key=lambda w: w.last_used):
            if older_than is None or (worker.last_used < older_than and evicted < spare):
                self._discard(worker)
                evicted += 1
            else:
                keep.append(worker)
        self.idle = keep
        return evicted


class PoolManager:
    """All pools, the global worker cap, the idle reaper and the memory watchdog."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.pools: dict[PoolKey, FunctionPool] = {}
        self.workers: set[WorkerProcess] = set()
        self.live_slots = 0
        self.run_dir = settings.data_dir / "run"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.limiter = MemoryLimiter(
            f"faasbox-{os.getpid()}-{id(self):x}", use_cgroups=settings.memory_cgroups
        )
        self.launcher = Launcher(self.limiter, settings.use_zygote, settings.preload)
        self._background: set[asyncio.Task[None]] = set()
        self.closing = False
        self._ticker: asyncio.Task[None] | None = None

    def pool_for(self, fn: DeployedFunction) -> FunctionPool:
        key = pool_key(fn)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = FunctionPool(fn, self)
            self._ensure_ticker()
        return pool

    def reserve_slot(self, requester: FunctionPool) -> bool:
        if self.closing:
            return False
        if self.live_slots < self.settings.max_workers:
            self.live_slots += 1
            return True
        # At the cap: take the slot of the least recently used idle worker of another pool.
        candidates = [
            (w.last_used, pool, w)
            for pool in self.pools.values()
            if pool is not requester
            for w in pool.idle
        ]
        if not candidates:
            return False
        _, pool, worker = min(candidates, key=lambda c: c[0])
        pool.idle.remove(worker)
        self.workers.discard(worker)
        self.retire_worker(worker)
        return True  # the evicted worker's slot passes to the requester

    def free_slot(self) -> None:
        self.live_slots -= 1
        for pool in self.pools.values():
            if pool.wake_one():
                return

    def retire_worker(self, worker: WorkerProcess) -> None:
        task = asyncio.get_running_loop().create_task(worker.stop())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def drain(
        self, name: str, keep: DeployedFunction | None = None, version: str | None = None
    ) -> None:
        """Retire the pools of `name` (of `keep`'s version only, but `keep`'s own; or of
        `version` only, a deleted one): idle workers now, busy ones after. Published
        versions are immutable, so an update of $LATEST leaves their warm workers alone."""
        for key, pool in list(self.pools.items()):
            if key[0] != name or (version is not None and key[1] != version):
                continue
            if keep is None or (key[1] == keep.version and key != pool_key(keep)):
                pool.draining = True
                pool.evict_idle()
                if not pool.busy and not pool.starting:
                    del self.pools[key]

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        watchdog = self.limiter.kind == "watchdog"
        interval = self.settings.watchdog_interval_s if watchdog else 1.0
        last_reap = time.monotonic()
        while self.pools:
            await asyncio.sleep(interval)
            if watchdog:
                for worker in list(self.workers):
                    worker.check_memory()
            now = time.monotonic()
            if now - last_reap >= 1.0:
                last_reap = now
                self.reap(now - self.settings.idle_timeout_s)

    def reap(self, idle_since: float) -> None:
        for key, pool in list(self.pools.items()):
            pool.evict_idle(older_than=idle_since)
            if pool.size == 0 and not pool.waiters and not pool.provisioned:
                del self.pools[key]

    def provision(self, fn: DeployedFunction) -> None:
        """Keep `provisionedConcurrency` workers of `fn` warm, starting them now."""
        if not fn.config.provisioned_concurrency or not fn.config.runtime.startswith("python"):
            return  # WebAssembly instances are made per request; nothing to keep warm
        pool = self.pool_for(fn)
        task = asyncio.get_running_loop().create_task(pool.provision())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        self.closing = True
        for pool in self.pools.values():
            pool.draining = True
            pool.evict_idle()
        for worker in list(self.workers):
            worker.kill()
        for worker in list(self.workers):
            await worker.exited
            worker.cleanup()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._ticker is not None:
            self._ticker.cancel()
        self.limiter.close()
        self.launcher.close()
