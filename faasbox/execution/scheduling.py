"""The CPU scheduling policy of the server and everything it starts.

A warm invocation is a relay of wake-ups: the client wakes the gateway, the gateway wakes the
worker, the worker wakes the gateway, the gateway wakes the client. Under Linux's default
policy (SCHED_OTHER) a woken task may preempt the one that woke it at once, so on a busy core
the sender is switched out in the middle of its `send`, and switched back in later only to
finish the few microseconds left before it sleeps anyway: two extra context switches per
hand-over, each a costly one in a VM. SCHED_BATCH tasks never preempt on wake-up (the woken
task runs when the waker sleeps or its slice ends, or on an idle core), which is exactly the
hand-over this relay wants. Measured on this project's 2-core VM: 20-35% less CPU per warm
hello (docs/performance.md, "Scheduling").

Set once, early in `faasbox serve`, on its main thread: threads and processes started after it
(the log writer, zygotes, workers, the Node and `provided` runtimes) inherit the policy.
Nice values, cgroup weights and limits are unchanged; an unprivileged process may always move
itself from SCHED_OTHER to SCHED_BATCH.
"""

from __future__ import annotations

import contextlib
import os
from typing import Literal

Policy = Literal["batch", "normal"]
POLICIES: tuple[Policy, ...] = ("batch", "normal")


def apply(policy: Policy) -> bool:
    """Put the calling thread (and what it starts from now on) under `policy`; False where the
    platform has no such policy (not Linux) or refuses it."""
    value = {"batch": getattr(os, "SCHED_BATCH", None), "normal": getattr(os, "SCHED_OTHER", None)}
    chosen = value[policy]
    if chosen is None:
        return False
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, chosen, os.sched_param(0))
        return True
    return False


def current() -> Policy | None:
    """The calling thread's policy, if it is one of ours."""
    with contextlib.suppress(OSError, AttributeError):
        kind = os.sched_getscheduler(0)
        if kind == os.SCHED_BATCH:
            return "batch"
        if kind == os.SCHED_OTHER:
            return "normal"
    return None
