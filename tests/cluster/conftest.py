"""A 2-node Ray cluster for the Ray executor's tests, started once per session.

Ray binds to the machine's primary network address whatever it is told, and no test traffic
may go anywhere but loopback: these tests run only in a network namespace of their own with
nothing but loopback (`make test-cluster`: `unshare --net`, as root). Anywhere else they are
skipped, saying so.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

NODE_A = {"node_a": 10.0, "slot": 2.0}
NODE_B = {"node_b": 10.0, "slot": 1.0}
# A dead raylet is noticed within ~1.5 s (Ray's default is 15 s and more).
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
}


def only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "the Ray cluster tests need root (a network namespace: make test-cluster)"
    elif not only_loopback():
        reason = (
            "the Ray cluster tests run only in a network namespace with nothing but loopback "
            "(Ray binds to the primary address): make test-cluster"
        )
    if reason is not None:
        for item in items:
            if "tests/cluster" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    started = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "resources": NODE_A,
            "include_dashboard": False,
            "object_store_memory": 100 << 20,
            "_system_config": FAST_HEALTH_CHECKS,
        },
    )
    started.add_node(num_cpus=2, resources=NODE_B, object_store_memory=100 << 20)
    started.wait_for_nodes()
    try:
        yield started
    finally:
        started.shutdown()


def live_worker_node(cluster: Any) -> None:
    """A live second node: tests/cluster/test_ray_executor.py kills the first one's raylet,
    so a module that runs after it replaces it with one of the same resources."""
    alive = set(cluster.global_state._live_node_ids())
    dead = [node for node in cluster.worker_nodes if node.node_id not in alive]
    for node in dead:
        cluster.remove_node(node, allow_graceful=False)
    if dead or not cluster.worker_nodes:
        cluster.add_node(num_cpus=2, resources=NODE_B, object_store_memory=100 << 20)
    cluster.wait_for_nodes()
