"""`RevisionFollower`: keeps a gateway's in-memory state in step with the other gateways on
the same database.

A thread (off the request path) reads the deploy revision (faasbox.registry.revision) every
POLL_S; when it moved, each reloader runs: the registry's snapshot (which tells its
listeners what changed, as for a deploy made here), the API keys, the event invoke configs.
One indexed row read per poll, so a deploy through one gateway is served by the others within
about POLL_S (docs/scale-out.md). A failed read (a busy or unreachable database) is logged and
tried again at the next poll; the gateway keeps serving what it holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from faasbox.registry import revision
from faasbox.storage import Database, connect

log = logging.getLogger("faasbox.registry")

POLL_S = 0.25


class RevisionFollower:
    def __init__(
        self,
        database: Database,
        reloaders: Sequence[Callable[[], object]],
        poll_s: float = POLL_S,
    ) -> None:
        self._reloaders = list(reloaders)
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db = connect(database, "deploy_revision")
        revision.ensure(self._db)
        self.seen = -1  # the first check reloads: what changed since the stores were read

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="faasbox-revision", daemon=True)
        self._thread.start()

    def check(self) -> bool:
        """Reload if the revision moved since the last check; whether it had."""
        now = revision.current(self._db)
        if now == self.seen:
            return False
        for reload in self._reloaders:
            reload()
        self.seen = now  # after the reloads: a failed one is tried again
        return True

    def _follow(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.check()
            except Exception:
                log.exception("could not follow the deploy revision")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._db.close()
