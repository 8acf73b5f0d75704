"""Warm pools: the workers of each deployed function version.

A pool (an `EnvironmentLane` of worker processes, faasbox.execution.lane, as a Ray pool is
one of host actors) hands out an idle warm worker when it has one, starts a new one (a cold
start) while the function is under its concurrency limit (while another start is under way,
only after a request has waited `SCALE_UP_AFTER_S` for a worker to free) and the invoker's
global budget has a slot (faasbox.execution.admission: fewer than its concurrency running,
and a live slot, which at the live cap the least recently used idle worker of another
function, or environment of another executor, gives up), and otherwise queues the request
for a short time before answering 429, as Lambda throttles.
Idle workers are reaped after `idle_timeout_s`; a redeploy drains the old version's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from faasbox.execution.admission import Budget
from faasbox.execution.api import WorkerInfo
from faasbox.execution.lane import EnvironmentLane
from faasbox.execution.lanes import Lanes
from faasbox.execution.process import jail
from faasbox.execution.process.launcher import Jail, Launcher
from faasbox.execution.process.limits import MemoryLimiter, clean_stale_groups
from faasbox.execution.process.worker_process import InitOutcome, WorkerProcess
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import DeployedFunction

log = logging.getLogger("faasbox.execution")


@dataclass
class Lease:
    worker: WorkerProcess
    cold: bool
    init: InitOutcome | None = None  # set on a cold start


# How long a request that finds every worker busy, and a start already under way, waits for
# a worker to free before it starts one more. Starting on every busy arrival while a start was
# under way grew the pool to about twice the concurrency it served (each start, raced and
# lost to a busy worker, joined anyway); a warm hello frees in about a millisecond, a start
# costs 5-10 ms of CPU on a quiet machine. The first busy arrival still starts at once (so
# concurrency grows with demand), and a burst of long invocations starts the rest this late.
SCALE_UP_AFTER_S = 0.005


class FunctionPool(EnvironmentLane[WorkerProcess, Lease]):
    """A function version's worker processes (faasbox.execution.lane): a request is given a
    `Lease`, cold with the INIT outcome when its worker started for it."""

    def __init__(self, fn: DeployedFunction, manager: PoolManager) -> None:
        super().__init__(fn, manager.settings, manager.budget, SCALE_UP_AFTER_S)
        self.manager = manager

    def _usable(self, worker: WorkerProcess) -> bool:
        return worker.alive

    def _warm(self, worker: WorkerProcess) -> Lease:
        return Lease(worker, cold=False)

    async def _start(self, deadline: float = 0.0) -> Lease:
        """A new worker, INIT run (failed INIT too: the outcome says); a cold start waits no
        turn, so `deadline` is no matter."""
        self.starting += 1
        worker = WorkerProcess(self.fn, self.manager.run_dir, self.manager.launcher)
        try:
            outcome = await worker.start(self.manager.settings.init_timeout_s)
        except BaseException:
            self.starting -= 1
            worker.kill()
            worker.cleanup()
            self.budget.free(busy=True, lane=self)
            raise
        self.starting -= 1
        self.busy.add(worker)
        self.manager.workers.add(worker)
        return Lease(worker, cold=True, init=outcome)

    def _adopted(self, lease: Lease) -> None:
        """Its INIT outcome goes to the invocation it first serves (cold, with its Init
        Duration); a worker whose INIT failed is not kept."""
        lease.worker.fresh_init = lease.init
        failed = lease.init is not None and lease.init.error is not None
        self.release(lease.worker, healthy=not failed)

    def _stop(self, worker: WorkerProcess) -> None:
        self.manager.workers.discard(worker)
        self.manager.retire_worker(worker)

    def _keeps_warm(self, worker: WorkerProcess, evicted: int) -> bool:
        # No worker is marked provisioned: the oldest idle ones stop while more stay live.
        return evicted >= len(self.idle) + len(self.busy) - self.provisioned

    async def provision(self) -> None:
        """Start workers until `provisioned` are live; each runs INIT and waits idle."""
        while self.size < self.provisioned and self.budget.reserve(self, provisioning=True):
            lease = await self._start()
            if lease.init is not None and lease.init.error is not None:
                self.release(lease.worker, healthy=False)
                return  # a function that cannot INIT is not kept warm
            self.release(lease.worker)


def clean_run_dir(run_dir: Path) -> None:
    """Remove what a crashed server left in the run dir: unjailed workers' temp folders and
    the mount points of servers that are gone."""
    for entry in run_dir.iterdir():
        owner = entry.name.removeprefix("root-").partition("-")[0]
        if entry.name.startswith("tmp-"):
            shutil.rmtree(entry, ignore_errors=True)
        elif owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):
                entry.rmdir()


class PoolManager(Lanes[FunctionPool]):
    """All pools, the idle reaper and the memory watchdog; the pools share `budget`, the
    invoker's global one."""

    def __init__(self, settings: RuntimeSettings, budget: Budget) -> None:
        super().__init__(budget)
        self.settings = settings
        self.workers: set[WorkerProcess] = set()
        self.run_dir = settings.data_dir / "run"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.limiter = MemoryLimiter(
            f"faasbox-{os.getpid()}-{id(self):x}", use_cgroups=settings.memory_cgroups
        )
        clean_stale_groups(self.limiter.bases())
        clean_run_dir(self.run_dir)
        # What is missing to jail workers here (empty: they are jailed).
        self.jail_missing = jail.missing() if settings.jail else ["jail turned off"]
        self.launcher = Launcher(
            self.limiter,
            settings.use_zygote,
            settings.preload,
            jail=self._jail() if not self.jail_missing else None,
        )
        self._background: set[asyncio.Task[None]] = set()

    def _jail(self) -> Jail:
        root = self.run_dir / f"root-{os.getpid()}-{id(self):x}"
        root.mkdir(mode=0o755, exist_ok=True)
        return Jail(
            root,
            self.settings.data_dir,
            self.settings.uid_base,
            self.settings.uid_count,
            pids_cgroup=self.limiter.pids_base is not None,
        )

    def _new_lane(self, fn: DeployedFunction) -> FunctionPool:
        return FunctionPool(fn, self)

    def retire_worker(self, worker: WorkerProcess) -> None:
        task = asyncio.get_running_loop().create_task(worker.stop())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def describe(self, name: str | None = None) -> list[WorkerInfo]:
        now = time.monotonic()
        return [
            WorkerInfo(
                kind="process",
                function=key[0],
                version=key[1],
                busy=worker in pool.busy,
                pid=worker.pid,
                started_by=worker.started_by,
                invocations=worker.invocations,
                idle_seconds=now - worker.last_used,
            )
            for key, pool in self.pools.items()
            if name is None or key[0] == name
            for worker in [*pool.idle, *pool.busy]
        ]

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
                if self.launcher.jail is None:
                    self.launcher.reap_strays({w.pid for w in self.workers})

    def provision(self, fn: DeployedFunction) -> None:
        """Keep `provisionedConcurrency` workers of `fn` warm, starting them now."""
        if not fn.config.provisioned_concurrency:
            return
        pool = self.pool_for(fn)
        task = asyncio.get_running_loop().create_task(pool.provision())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        self._close_lanes()
        for worker in list(self.workers):
            worker.kill()
        for worker in list(self.workers):
            await worker.exited
            worker.cleanup()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._stop_ticker()
        self.launcher.close()
        self.limiter.close()  # after the spares: their cgroups are in the server's
        if self.launcher.jail is not None:
            with contextlib.suppress(OSError):
                self.launcher.jail.root.rmdir()
