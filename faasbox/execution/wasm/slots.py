"""Admission of one wasm function version: at most its concurrency running, then a bounded
wait, then 429, as for Python functions' pools; and the thread pool its instances run on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from faasbox.errors import TooManyRequests
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.models import DeployedFunction


class Slots:
    """One function version's admission: at most `limit` running, a bounded queue, 429."""

    def __init__(self, fn: DeployedFunction, settings: RuntimeSettings) -> None:
        self.fn = fn
        self.settings = settings
        reserved = fn.config.reserved_concurrency
        self.limit = settings.max_workers if reserved is None else reserved
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.threads = ThreadPoolExecutor(
            max_workers=max(1, self.limit), thread_name_prefix=f"wasm-{fn.name}"
        )
        self.last_used = time.monotonic()
        self.retired = False

    async def acquire(self) -> None:
        if self.active < self.limit:
            self.active += 1
            return
        if self.limit == 0 or len(self.waiters) >= self.settings.queue_limit:
            raise self._throttled()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.settings.queue_timeout_s)
        except TimeoutError:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
            if waiter.done():  # handed a slot just as the wait ended
                self.release()
            raise self._throttled() from None
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled():
                self.release()
            raise

    def release(self) -> None:
        self.last_used = time.monotonic()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: `active` is unchanged
                return
        self.active -= 1
        if self.retired and self.active == 0:
            self.threads.shutdown(wait=False)

    def retire(self) -> None:
        """No new callers (a redeploy replaced this version): the threads stop once the
        invocations running or queued here are done."""
        self.retired = True
        if self.active == 0 and not self.waiters:
            self.threads.shutdown(wait=False)

    def _throttled(self) -> TooManyRequests:
        if self.fn.config.reserved_concurrency is not None:
            return TooManyRequests(
                "Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        return TooManyRequests("Rate Exceeded.")
