"""Ray's control plane and object store as the Ray executor uses them: the figures behind
docs/scale-out.md's "A plan for 100 nodes".

    sudo .venv/bin/python -m bench.ray_control   # rewrites RESULTS.md's section

In a network namespace with only loopback (as bench.ray_executor), a 2-node Ray cluster
(ray.cluster_utils) on this machine, and a driver shaped as the gateway (asyncio):
- actor starts: one at a time (the latency of a cold environment's placement, before any
  faasbox code runs) and 32 at once (the rate the GCS and raylets place them here);
- code distribution: a 20 MB object put by the driver, fetched by an actor on the other node
  (the first environment there), then by a second actor on that node (node-local copy);
- the call floor: bench.ray_executor's bare actor call, 200 bytes each way.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from typing import Any

from bench.ray_executor import ROOT, bare_actor_call, in_own_namespace
from bench.results import machine, update_section

SEQUENTIAL = 10
AT_ONCE = 32
CODE_MB = 20


class Probe:
    def ready(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def rss_mb(self) -> float:
        """This actor's process, resident (shared libraries counted in full)."""
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    async def fetch(self, box: list[Any]) -> float:
        t0 = time.perf_counter()
        data = await box[0]
        assert len(data) == CODE_MB << 20
        return time.perf_counter() - t0


def rerun_in_namespace() -> None:
    import subprocess

    if os.geteuid() != 0:
        raise SystemExit("bench.ray_control needs root (a network namespace of its own)")
    command = f"ip link set lo up && exec {sys.executable} -m bench.ray_control"
    sys.exit(subprocess.call(["unshare", "--net", "sh", "-c", command], cwd=ROOT))


async def measure(remote_node: str) -> dict[str, float]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(Probe)
    found: dict[str, float] = {}
    # Warm the node's worker pool the way a running cluster has it.
    first = probe.options(num_cpus=0).remote()
    await first.ready.remote()
    ray.kill(first)

    one_by_one = []
    for _ in range(SEQUENTIAL):
        t0 = time.perf_counter()
        actor = probe.options(num_cpus=0).remote()
        await actor.ready.remote()
        one_by_one.append(time.perf_counter() - t0)
        ray.kill(actor)
    found["actor start, one at a time: p50 ms"] = statistics.median(one_by_one) * 1000

    t0 = time.perf_counter()
    many = [
        probe.options(num_cpus=0, scheduling_strategy="SPREAD").remote() for _ in range(AT_ONCE)
    ]
    await asyncio.gather(*(a.ready.remote() for a in many))
    found[f"actor starts/s, {AT_ONCE} at once"] = AT_ONCE / (time.perf_counter() - t0)
    sizes = await asyncio.gather(*(a.rss_mb.remote() for a in many))
    found["an idle actor's process: RSS MB (median)"] = statistics.median(sizes)
    for actor in many:
        ray.kill(actor)

    code = ray.put(os.urandom(CODE_MB << 20))
    on_remote = NodeAffinitySchedulingStrategy(remote_node, soft=False)
    readers = [probe.options(num_cpus=0, scheduling_strategy=on_remote).remote() for _ in range(2)]
    await asyncio.gather(*(r.ready.remote() for r in readers))
    first_fetch = await readers[0].fetch.remote([code])
    second_fetch = await readers[1].fetch.remote([code])
    found[f"{CODE_MB} MB code to a new node: ms"] = first_fetch * 1000
    found[f"{CODE_MB} MB code, again on that node: ms"] = second_fetch * 1000
    found["object transfer to a new node: MB/s"] = CODE_MB / first_fetch
    return found


def main() -> None:
    if not in_own_namespace():
        rerun_in_namespace()
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    remote = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            found = asyncio.run(measure(remote.node_id))
        finally:
            ray.shutdown()
        floor = bare_actor_call(cluster.address)
    finally:
        cluster.shutdown()
    found["actor call floor, p50 ms"], found["actor call floor, p99 ms"] = floor
    rows = [f"| {what} | {value:,.2f} |" for what, value in found.items()]
    body = f"""Ray's control plane and object store as the Ray executor uses them (no faasbox
code in the actors: a bare probe), on a 2-node cluster on this machine.

| what | figure |
|---|---|
{chr(10).join(rows)}

Actor starts: a `num_cpus=0` actor created and its first method answered, {SEQUENTIAL}
one after another (median), then {AT_ONCE} at once (SPREAD): each actor is a Ray worker
process of its own (its RSS counts shared libraries in full); a faasbox environment adds its
own ready() (code unpacked, process executor made) on top. Code: a {CODE_MB} MB object
`ray.put` by the driver, awaited by an actor on the other node, then by a second actor on
that node. Call floor: bench.ray_executor's bare async actor call (2,000 calls, 200 bytes
each way). Both nodes share this machine's cores and loopback, so transfers are memory
copies, not a network.
Machine: {machine()}.
Command: `.venv/bin/python -m bench.ray_control` (as root)"""
    update_section("Ray control plane", body)
    print(body)


if __name__ == "__main__":
    main()
