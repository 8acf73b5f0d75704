"""What one execution environment asks of a Ray node, from its function's config.

memory: memorySize (the environment's cgroup limit on the node, so Ray never places more
than a node holds). CPU: the function's `faasbox.resources.CPU`, else Lambda's share (one
vCPU per 1,769 MB of memorySize: a 128 MB function takes 0.07 of a core). GPU and custom
resources: as `faasbox.resources` names them (faasbox.config.placement). Environments are
spread over the nodes that can take them: a node that dies takes fewer of them along.
"""

from __future__ import annotations

from typing import Any

from faasbox.registry.models import FunctionConfig

MB_PER_VCPU = 1769  # Lambda: a full vCPU at 1,769 MB


def actor_options(config: FunctionConfig) -> dict[str, Any]:
    wanted = dict(config.resources)
    cpus = wanted.pop("CPU", round(config.memory_size / MB_PER_VCPU, 4))
    gpus = wanted.pop("GPU", 0.0)
    options: dict[str, Any] = {
        "num_cpus": cpus,
        "memory": config.memory_size << 20,
        "scheduling_strategy": "SPREAD",
        "max_restarts": 0,  # a dead environment is replaced by the pool, not restarted
        "max_task_retries": 0,  # an invocation is never run twice
    }
    if gpus:
        options["num_gpus"] = gpus
    if wanted:
        options["resources"] = wanted
    return options


def describe(config: FunctionConfig) -> str:
    """The resources of one environment, for error messages."""
    options = actor_options(config)
    parts = [f"CPU {options['num_cpus']}", f"memory {config.memory_size} MB"]
    if "num_gpus" in options:
        parts.append(f"GPU {options['num_gpus']}")
    parts += [f"{k} {v}" for k, v in options.get("resources", {}).items()]
    return ", ".join(parts)
