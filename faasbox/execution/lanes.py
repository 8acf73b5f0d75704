"""An executor's lanes (faasbox.execution.lane), one per deployed function version: made on
a version's first invocation, retired by a drain or a deleted version, reaped once idle, and
stopped at close. These rules are every executor's alike: a process pool's (worker
processes) and a Ray pool's (host actors).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from faasbox.execution.admission import Budget
from faasbox.execution.lane import EnvironmentLane
from faasbox.registry.models import DeployedFunction

PoolKey = tuple[str, str, str]  # function name, version, revision id

L = TypeVar("L", bound=EnvironmentLane[Any, Any])


def pool_key(fn: DeployedFunction) -> PoolKey:
    return (fn.name, fn.version, fn.revision_id)


def drained_keys(
    keys: Iterable[PoolKey], name: str, keep: DeployedFunction | None
) -> list[PoolKey]:
    """The lanes a drain of `name` retires: all of them when it was removed (`keep` None),
    else those of `keep`'s version but `keep`'s own. Published versions are immutable, so an
    update of $LATEST leaves their warm environments alone."""
    return [
        key
        for key in keys
        if key[0] == name and (keep is None or (key[1] == keep.version and key != pool_key(keep)))
    ]


def version_keys(keys: Iterable[PoolKey], name: str, version: str) -> list[PoolKey]:
    """The lanes of one version of `name` (a deleted published version retires them)."""
    return [key for key in keys if key[:2] == (name, version)]


class Lanes(ABC, Generic[L]):
    """The lanes of one executor by `pool_key`, each a member of `budget`, and the ticker
    that reaps them, which runs while there is any."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.pools: dict[PoolKey, L] = {}
        self._ticker: asyncio.Task[None] | None = None

    @abstractmethod
    def _new_lane(self, fn: DeployedFunction) -> L:
        """An empty lane for `fn`."""

    @abstractmethod
    async def _tick(self) -> None:
        """The executor's periodic work, `reap` among it, for as long as `pools` is not
        empty."""

    def pool_for(self, fn: DeployedFunction) -> L:
        key = pool_key(fn)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = self._new_lane(fn)
            self.budget.join(pool)
            if self._ticker is None or self._ticker.done():
                self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return pool

    def drain(self, name: str, keep: DeployedFunction | None = None) -> None:
        """Retire the lanes `drained_keys` names: idle environments now, busy ones after."""
        for key in drained_keys(list(self.pools), name, keep):
            self._retire(key)

    def retire(self, name: str, version: str) -> None:
        for key in version_keys(list(self.pools), name, version):
            self._retire(key)

    def _retire(self, key: PoolKey) -> None:
        pool = self.pools[key]
        pool.draining = True
        pool.evict_idle()
        if not pool.busy and not pool.starting:
            self._remove(key)

    def _remove(self, key: PoolKey) -> None:
        self.budget.leave(self.pools.pop(key))

    def stop_idle(self, name: str) -> int:
        return sum(pool.evict_idle() for key, pool in self.pools.items() if key[0] == name)

    def reap(self, idle_since: float) -> None:
        """Stop the environments idle since before `idle_since` (but the provisioned ones),
        and forget the lanes left with nothing to do."""
        for key, pool in list(self.pools.items()):
            pool.evict_idle(older_than=idle_since)
            if pool.size == 0 and not pool.queue and not pool.provisioned:
                self._remove(key)

    def _close_lanes(self) -> None:
        """The start of closing: no new environment, the idle ones stopped; the busy ones
        are the executor's to stop."""
        self.budget.closing = True
        for pool in self.pools.values():
            pool.draining = True
            pool.evict_idle()

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
