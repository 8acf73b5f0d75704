"""`faasbox serve --watch`: redeploy a service when a file in its folder changes.

A change becomes an ordinary deploy (new content-addressed code, one transaction), so the
running server drains the old workers and new invocations get the edited code, without a
process per request. watchfiles (the watcher uvicorn's --reload uses) batches bursts of
events, so saving several files at once is one redeploy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import watchfiles

log = logging.getLogger("faasbox.watch")
ARM_CHECK_MS = 250  # how often the watcher thread wakes when nothing changes
ARM_WAIT_S = 10.0


def owning_root(path: Path, roots: Sequence[Path]) -> Path | None:
    """The deepest service folder that contains `path`."""
    found = [r for r in roots if path == r or r in path.parents]
    return max(found, key=lambda r: len(r.parts)) if found else None


def watch_services(
    roots: Sequence[Path], redeploy: Callable[[Path], None], stop: threading.Event
) -> threading.Thread:
    """Watch the service folders in a daemon thread; call `redeploy(root)` after edits.
    Returns once the folders are watched.

    `redeploy` reports the errors it expects (a bad serverless.yml); anything else it raises
    is logged in one line and the thread goes on watching: one bad file must never stop every
    later redeploy."""
    resolved = [r.resolve() for r in roots]
    armed = threading.Event()

    def run() -> None:
        # The first yield (changes, or none after rust_timeout) comes once the OS watches are
        # in place: from then on no edit is missed.
        for changes in watchfiles.watch(
            *resolved,
            stop_event=stop,
            debounce=300,
            step=50,
            rust_timeout=ARM_CHECK_MS,
            yield_on_timeout=True,
        ):
            armed.set()
            touched = {owning_root(Path(p), resolved) for _, p in changes}
            for root in sorted(r for r in touched if r is not None):
                try:
                    redeploy(root)
                except Exception as e:
                    log.error("Not redeployed %s: %s: %s", root, type(e).__name__, e)

    thread = threading.Thread(target=run, name="faasbox-watch", daemon=True)
    thread.start()
    armed.wait(ARM_WAIT_S)  # so that "Watching ..." is printed when it is true
    return thread
