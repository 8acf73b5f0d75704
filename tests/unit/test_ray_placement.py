"""What an environment asks of a Ray node, from its function's config (no Ray needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from faasbox.execution.ray.placement import actor_options, describe
from faasbox.registry.models import FunctionConfig


def test_memory_and_lambdas_cpu_share_by_default() -> None:
    options = actor_options(FunctionConfig(name="f", handler="h.h", memory_size=1769))
    assert options["num_cpus"] == 1.0 and options["memory"] == 1769 << 20
    assert "num_gpus" not in options and "resources" not in options
    assert options["max_restarts"] == 0 and options["max_task_retries"] == 0


def test_resources_named_by_the_function() -> None:
    config = FunctionConfig(
        name="f", handler="h.h", resources={"CPU": 2.0, "GPU": 1.0, "camera": 1.0}
    )
    options = actor_options(config)
    assert (options["num_cpus"], options["num_gpus"]) == (2.0, 1.0)
    assert options["resources"] == {"camera": 1.0}
    assert describe(config) == "CPU 2.0, memory 128 MB, GPU 1.0, camera 1.0"
