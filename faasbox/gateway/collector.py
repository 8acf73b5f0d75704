"""The gateway's garbage collector, kept off the objects that live as long as the server.

A full (generation 2) collection scans every container object the process tracks: the
gateway's modules, uvicorn, the registry's snapshot, the compiled routes: ~70,000 objects
once a server has started, a pause of 25-130 ms of the one event-loop thread on this VM
(docs/performance.md, "The tail at c=8"), with every request in flight stopped behind it.
Those objects never become garbage, so once startup is done they are moved into the
permanent generation (`gc.freeze`), which no collection scans; collections then only look at
what requests and later deploys allocated.
"""

from __future__ import annotations

import gc


def freeze_what_startup_made() -> None:
    """Collect startup's garbage first (a frozen cycle would never be freed), then freeze the
    rest. Called once, when the server has started, before it serves."""
    gc.collect()
    gc.freeze()
