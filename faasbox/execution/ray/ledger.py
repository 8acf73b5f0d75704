"""reservedConcurrency and provisionedConcurrency, counted across every gateway.

A named detached actor per function (`faasbox-ledger-<name>`) holds the names of the
environment actors that count against its limits. Gateways consult it when they scale up
(claim, then confirm once the actor is made) and down (release), never per invocation. The
environments are named actors owned by their gateway, so a gateway that dies takes its
environments along; the ledger prunes the names of actors that are gone whenever a claim
would be refused. A claim not yet confirmed has no actor yet (its gateway claims first, then
ships the code and makes the actor): it is kept for `PENDING_S`, else another gateway's
claim in that moment would prune it and both would run past the limit.

A refused claim is remembered for a moment (`wanted`): a gateway whose environments of the
function sit idle gives them up when it sees that (its pool's tick), so an environment idle
on one gateway does not lock the others out of a function at its limit.
"""

from __future__ import annotations

import time
from typing import Any

import ray

NAMESPACE = "faasbox"
# How long a refused claim counts as another gateway waiting: over the claimant's retry
# interval and the holders' tick (faasbox.execution.ray.pool, .executor).
WANTED_S = 2.0
# How long a claim may wait for its actor (the code shipped, the actor named) before it is
# taken for the claim of a gateway that died meanwhile.
PENDING_S = 60.0


class ConcurrencyLedger:
    """One function's environments, as gateways claimed them: name -> provisioned or not."""

    def __init__(self) -> None:
        self.claims: dict[str, bool] = {}
        self.pending: dict[str, float] = {}  # claimed, no actor yet: name -> when claimed
        self.refused_at = float("-inf")  # time.monotonic() of the last on-demand refusal

    def claim(self, env: str, limit: int | None, provisioned: int | None = None) -> bool:
        """Count `env` if the function stays within `limit` environments (None: no limit)
        and, for a provisioned one (`provisioned` given), within that many provisioned."""
        if self._full(limit, provisioned):
            self._prune()
            if self._full(limit, provisioned):
                if provisioned is None:  # someone waits; a provisioned start does not
                    self.refused_at = time.monotonic()
                return False
        self.claims[env] = provisioned is not None
        self.pending[env] = time.monotonic()
        return True

    def confirm(self, env: str) -> None:
        """`env`'s actor is made: from now on its claim lasts as long as the actor."""
        self.pending.pop(env, None)

    def release(self, env: str) -> None:
        self.claims.pop(env, None)
        self.pending.pop(env, None)

    def wanted(self) -> bool:
        """Whether a claim was refused just now: a gateway waits for an environment."""
        return time.monotonic() - self.refused_at < WANTED_S

    def count(self) -> int:
        return len(self.claims)

    def _full(self, limit: int | None, provisioned: int | None) -> bool:
        if limit is not None and len(self.claims) >= limit:
            return True
        kept_warm = sum(self.claims.values())
        return provisioned is not None and kept_warm >= provisioned

    def _prune(self) -> None:
        now = time.monotonic()
        for env in list(self.claims):
            claimed = self.pending.get(env)
            if claimed is not None and now - claimed < PENDING_S:
                continue  # its actor is being made
            try:
                ray.get_actor(env, namespace=NAMESPACE)
            except ValueError:  # gone: its gateway or node died without releasing it
                del self.claims[env]
                self.pending.pop(env, None)


def ledger_for(function: str) -> Any:
    """The function's ledger actor, made by the first gateway that needs it."""
    return (
        ray.remote(ConcurrencyLedger)
        .options(
            name=f"faasbox-ledger-{function}",
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_restarts=-1,  # restarted elsewhere if its node dies: empty, it counts anew
        )
        .remote()
    )
