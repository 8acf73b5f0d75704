"""Workers forked from the zygotes: their own environment, limits, cwd and modules."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from faasbox.config import load_service
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service
from tests.support import (
    EXAMPLES,
    JAILED,
    SERVICES,
    process_pools,
    run_with_invoker,
    stop_idle_workers,
    wait_until_async,
)

ZYGOTE = SERVICES / "zygote"


def body(result: InvocationResult) -> Any:
    assert result.status == "success", result.payload
    return json.loads(result.payload)


def test_workers_fork_from_zygotes_with_their_own_world(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(ZYGOTE / "plain"))
    deploy_service(registry, load_service(EXAMPLES / "limits"))

    async def scenario(invoker: Invoker) -> dict[str, Any]:
        fn = registry.get("zyg-dev-heavy")
        first = await invoker.invoke(fn, b"{}")
        first_by = next(iter(process_pools(invoker).workers)).started_by
        await stop_idle_workers(invoker)
        second = await invoker.invoke(fn, b"{}")
        second_worker = next(w for w in process_pools(invoker).workers)
        second_by = second_worker.started_by
        # The process the server watches: the worker, or in a jail the worker's init.
        stat = Path(f"/proc/{second_worker.pid}/stat").read_text()
        watched_parent = int(stat.rpartition(")")[2].split()[1])
        hog = await invoker.invoke(registry.get("limits-dev-hungry"), b"{}")
        hog_by = [w.started_by for w in process_pools(invoker).workers]
        return {
            "first": (first, first_by),
            "second": (second, second_by),
            "hog": hog,
            "hog_by": hog_by,
            "watched_parent": watched_parent,
        }

    out = run(data_dir, scenario)
    first, first_by = out["first"]
    second, second_by = out["second"]
    # The first cold start comes from the small zygote; INIT shows numpy is wanted, so the
    # next one forks from the zygote that preloaded it.
    assert first_by == "base"
    assert second_by == "preloaded"
    assert second.init_ms is not None and first.init_ms is not None
    seen = body(second)
    assert seen["name"] == "zyg-dev-heavy"
    assert seen["cwd"] == ("/var/task" if JAILED else str(registry.get("zyg-dev-heavy").code_dir))
    assert out["watched_parent"] == os.getpid(), "the server adopts forked workers"
    # A jailed worker's parent is its namespace's init (pid 1), which the server adopts.
    assert seen["ppid"] == (1 if JAILED else os.getpid())
    assert seen["os_threads"] == 1, "a forked worker must not inherit dead thread pools"
    assert out["hog"].status == "crash"  # the memory limit holds for forked workers too


def test_random_state_differs_between_forked_workers(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(ZYGOTE / "plain"))

    async def scenario(invoker: Invoker) -> list[Any]:
        fn = registry.get("zyg-dev-seeds")
        results = []
        for _ in range(3):
            results.append(body(await invoker.invoke(fn, b"{}")))
            await stop_idle_workers(invoker)
        return results

    seen = run(data_dir, scenario)
    assert len({s["instance"] for s in seen}) == 3
    assert len({s["random"] for s in seen}) == 3
    assert len({s["numpy"] for s in seen}) == 3


def test_vendored_package_is_never_the_preloaded_one(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(ZYGOTE / "vendored"))

    async def scenario(invoker: Invoker) -> list[tuple[Any, str]]:
        await process_pools(invoker).launcher.preloaded.ready()
        fn = registry.get("vendored-dev-which")
        results = []
        for _ in range(3):
            result = await invoker.invoke(fn, b"{}")
            results.append((body(result), next(iter(process_pools(invoker).workers)).started_by))
            await stop_idle_workers(invoker)
        return results

    for seen, started_by in run(data_dir, scenario):
        assert seen["version"] == "0.0.vendored"
        assert started_by != "preloaded"


def _ships_numpy(tmp: Path, version: str) -> Path:
    """The vendored service, its numpy installed as pip would: with a .dist-info naming
    `version`."""
    service = tmp / "vendored"
    shutil.copytree(ZYGOTE / "vendored", service)
    info = service / f"numpy-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: numpy\nVersion: {version}\n")
    (info / "top_level.txt").write_text("numpy\n")
    return service


def _started_by_each_cold_start(data_dir: Path, service: Path) -> list[tuple[Any, str]]:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(service))

    async def scenario(invoker: Invoker) -> list[tuple[Any, str]]:
        await process_pools(invoker).launcher.preloaded.ready()
        fn = registry.get("vendored-dev-which")
        results = []
        for _ in range(3):
            result = await invoker.invoke(fn, b"{}")
            results.append((body(result), next(iter(process_pools(invoker).workers)).started_by))
            await stop_idle_workers(invoker)
        return results

    return run(data_dir, scenario)


def test_a_package_of_the_preloaded_version_forks_from_the_preloaded_zygote(
    data_dir: Path, tmp_path: Path
) -> None:
    import numpy

    seen = _started_by_each_cold_start(data_dir, _ships_numpy(tmp_path, numpy.__version__))
    # The first INIT (base zygote) shows that it imports numpy; the same version as the
    # preloaded one, so later cold starts fork with numpy imported already.
    assert [started_by for _, started_by in seen[1:]] == ["preloaded", "preloaded"]
    assert seen[-1][0]["version"] == numpy.__version__


def test_a_package_of_another_version_never_forks_from_the_preloaded_zygote(
    data_dir: Path, tmp_path: Path
) -> None:
    for seen, started_by in _started_by_each_cold_start(data_dir, _ships_numpy(tmp_path, "0.0.1")):
        assert seen["version"] == "0.0.vendored"  # its own copy won
        assert started_by != "preloaded"


def test_server_survives_its_zygote_dying(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(EXAMPLES / "hello"))

    async def scenario(invoker: Invoker) -> list[str]:
        fn = registry.get("hello-dev-hello")
        first = await invoker.invoke(fn, b"{}")
        await stop_idle_workers(invoker)
        launcher = process_pools(invoker).launcher
        for spare in launcher._spares["base"]:
            spare.discard()
        launcher._spares["base"].clear()
        os.kill(launcher.base.pid, signal.SIGKILL)
        second = await invoker.invoke(fn, b"{}")
        await stop_idle_workers(invoker)
        third = await invoker.invoke(fn, b"{}")
        return [first.status, second.status, third.status]

    assert run(data_dir, scenario) == ["success", "success", "success"]


def test_provisioned_workers_are_warm_from_deploy(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(ZYGOTE / "plain"))

    async def scenario(invoker: Invoker) -> tuple[int, bool, int]:
        fn = registry.get("zyg-dev-warm")
        invoker.provision(fn)
        pool = process_pools(invoker).pool_for(fn)
        await wait_until_async(lambda: len(pool.idle) == 2, 60, "two provisioned workers")
        result = await invoker.invoke(fn, b"{}")
        process_pools(invoker).reap(idle_since=float("inf"))  # reaping keeps the provisioned ones
        return (
            len(process_pools(invoker).pool_for(fn).idle),
            result.cold,
            len(process_pools(invoker).workers),
        )

    idle, cold, live = run(data_dir, scenario)
    assert cold is False
    assert idle == 2 and live == 2


def test_redeploy_under_load_fails_no_invocation(data_dir: Path, tmp_path: Path) -> None:
    service = tmp_path / "svc"
    shutil.copytree(ZYGOTE / "plain", service)
    registry = Registry(data_dir)
    deploy_service(registry, load_service(service))

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        registry.on_change(
            lambda change: [invoker.drain(n, registry.get(n)) for n in change.changed]
        )

        async def call() -> InvocationResult:
            return await invoker.invoke(registry.get("zyg-dev-slow"), b'{"seconds": 0.4}')

        v1 = process_pools(invoker).pool_for(registry.get("zyg-dev-slow"))
        first_wave = [asyncio.create_task(call()) for _ in range(4)]
        # Each of the first wave has its worker of v1 (starting, busy or done) before the deploy.
        await wait_until_async(lambda: v1.size == 4, 60, "four workers of v1")
        app = service / "app.py"
        app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
        await asyncio.to_thread(deploy_service, registry, load_service(service))
        second_wave = [asyncio.create_task(call()) for _ in range(4)]
        return list(await asyncio.gather(*first_wave, *second_wave))

    results = run(data_dir, scenario, max_workers=8)
    assert [r.status for r in results] == ["success"] * 8
    assert [json.loads(r.payload) for r in results] == ["v1"] * 4 + ["v2"] * 4


def run(data_dir: Path, scenario: Any, **settings: Any) -> Any:
    return run_with_invoker(RuntimeSettings(data_dir=data_dir, **settings), scenario)
