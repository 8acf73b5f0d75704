"""A function's ``faasbox:`` key: what its execution environments need of a cluster node.

```yaml
functions:
  classify:
    handler: handler.classify
    faasbox:
      resources: {CPU: 2, GPU: 1, camera: 1}
```

``resources`` are Ray's: ``CPU`` and ``GPU`` (numbers of cores and GPUs), and any custom
resource a node was started with (``ray start --resources '{"camera": 1}'``). Memory is not
one of them: it comes from ``memorySize``. Only the Ray executor (``faasbox serve --ray``)
reads them; the local executor runs everything on its one machine.
"""

from __future__ import annotations

import math
from typing import Any

from faasbox.config.fields import Context, mapping, show
from faasbox.config.keypath import KeyPath

KEY = "faasbox"
RESOURCE_NAME_LIMIT = 128
RESERVED = frozenset({"memory", "object_store_memory"})


def resources(ctx: Context, doc: dict[str, Any], path: KeyPath) -> dict[str, float]:
    """The function's ``faasbox.resources``, each a number >= 0 (empty when not set)."""
    if KEY not in doc:
        return {}
    where = (*path, KEY)
    options = mapping(ctx, doc[KEY], where, "a mapping such as {resources: {CPU: 1}}")
    for unknown in [k for k in options if k != "resources"]:
        ctx.warn((*where, unknown), f"faasbox does not support {unknown!r} and ignores it")
    if "resources" not in options:
        return {}
    where = (*where, "resources")
    wanted = mapping(ctx, options["resources"], where, "a mapping such as {CPU: 1, GPU: 1}")
    checked: dict[str, float] = {}
    for name, amount in wanted.items():
        problem = resource_problem(name, amount)
        if problem is not None:
            raise ctx.error((*where, name), problem)
        checked[name] = float(amount)
    return checked


def resource_problem(name: object, amount: object) -> str | None:
    """What is wrong with one resource request, or None (also for the management API)."""
    if not isinstance(name, str) or not name or len(name) > RESOURCE_NAME_LIMIT:
        return f"expected a resource name of 1 to {RESOURCE_NAME_LIMIT} characters"
    if name in RESERVED:
        return f"{name} is not requested here: a function's memory is its memorySize"
    if (
        isinstance(amount, bool)
        or not isinstance(amount, int | float)
        or not math.isfinite(amount)
        or amount < 0
    ):
        return f"expected a number >= 0 of {name}, got {show(amount)}"
    return None
