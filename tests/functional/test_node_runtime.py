"""Node.js workers through the Invoker: spares started ahead of need, per memory size, with
V8 sized for the function (without the jail; in one, node is exec'd by a forked spare)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from faasbox.config import load_service
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.process.launcher import Launcher
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry import Registry
from faasbox.registry.models import DeployedFunction
from faasbox.registry.services import deploy_service
from tests.support import JAILED, SERVICES, process_pools, run_with_invoker, wait_until_async

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def body(result: InvocationResult) -> Any:
    assert result.status == "success", result.payload
    return json.loads(result.payload)


async def spare_of(launcher: Launcher, fn: DeployedFunction) -> int:
    """The pid of the spare started for `fn`, once it is there."""
    spares = await wait_until_async(lambda: launcher.spares_for(fn), 60, "a spare to start")
    return spares[0]


def test_cold_starts_take_the_spare_started_for_their_memory_size(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "node"))
    small, big = registry.get("node-probe-dev-heap"), registry.get("node-probe-dev-big-heap")

    async def scenario(invoker: Invoker) -> dict[str, Any]:
        invoker.start([small, big])  # as the server starts: each gets its spare
        launcher = process_pools(invoker).launcher
        small_spare, big_spare = await spare_of(launcher, small), await spare_of(launcher, big)
        assert small_spare != big_spare
        first = await invoker.invoke(small, b"{}")
        warm = await invoker.invoke(small, b"{}")
        next_spare = await spare_of(launcher, small)  # refilled for the next cold start
        for pool in process_pools(invoker).pools.values():
            pool.evict_idle()
        second = await invoker.invoke(small, b"{}")
        large = await invoker.invoke(big, b"{}")
        return {
            "spares": (small_spare, next_spare, big_spare),
            "results": (first, warm, second, large),
        }

    # Spawned spares are the unjailed start (a jail forks node's workers, then execs node).
    out = run_with_invoker(RuntimeSettings(data_dir=data_dir, jail=False), scenario)
    small_spare, next_spare, big_spare = out["spares"]
    first, warm, second, large = out["results"]
    assert first.cold and body(first)["pid"] == small_spare
    assert not warm.cold and body(warm)["pid"] == small_spare
    assert second.cold and body(second)["pid"] == next_spare != small_spare
    assert large.cold and body(large)["pid"] == big_spare
    # V8's heap is the function's (90% of its memory for the old space, as on Lambda), not
    # whatever the spare's start left it; global.gc is there, as on Lambda.
    assert 200 <= body(first)["heapLimitMb"] <= 320
    assert 850 <= body(large)["heapLimitMb"] <= 1200
    assert body(first)["gc"] == "function"


def test_the_worker_sees_lambdas_node_environment(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "node"))
    fn = registry.get("node-probe-dev-inspect")
    result = run_with_invoker(
        RuntimeSettings(data_dir=data_dir), lambda invoker: invoker.invoke(fn, b"{}")
    )
    seen = body(result)
    env = seen["env"]
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    # Jailed (as root), the code is at /var/task and /tmp is the worker's own, as on Lambda.
    task_root, tmp = ("/var/task", "/tmp") if JAILED else (str(fn.code_dir), env["TMPDIR"])
    assert env["LAMBDA_TASK_ROOT"] == task_root == seen["cwd"]
    assert Path(env["LAMBDA_RUNTIME_DIR"], "bootstrap.js").is_file()
    node_dir = str(Path(shutil.which("node") or "").parent)
    assert env["PATH"].split(":")[0] == node_dir
    assert env["NODE_PATH"].split(":")[-1] == task_root
    assert env["TMPDIR"] == tmp
    assert seen["context"]["functionName"] == "node-probe-dev-inspect"
    assert seen["context"]["memoryLimitInMB"] == "256"
    assert seen["tmpdir"] == env["TMPDIR"]


def test_after_an_uncaught_exception_the_next_invocation_gets_a_new_environment(
    data_dir: Path,
) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "node"))
    fn = registry.get("node-probe-dev-uncaught")

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        first = await invoker.invoke(fn, b"{}")
        failed = await invoker.invoke(fn, b'{"throwInTimer": true}')
        after = await invoker.invoke(fn, b"{}")  # at once: the dying worker is not reused
        return [first, failed, after]

    first, failed, after = run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario)
    assert failed.status == "error"
    error = json.loads(failed.payload)
    assert (error["errorType"], error["errorMessage"]) == ("Error", "thrown from a timer")
    assert "Uncaught Exception" in failed.log
    assert after.status == "success" and after.cold
    assert body(after)["environment"] != body(first)["environment"]


def test_a_streaming_handler_is_a_buffered_invocation(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "node"))
    fn = registry.get("node-probe-dev-stream")
    result = run_with_invoker(
        RuntimeSettings(data_dir=data_dir), lambda invoker: invoker.invoke(fn, b'{"name": "x"}')
    )
    assert result.status == "success"
    assert result.payload == b"hello x"  # the bytes written, not JSON


def test_spares_are_kept_for_the_most_recently_used_memory_sizes(
    data_dir: Path, tmp_path: Path
) -> None:
    sizes = [128, 192, 256, 320, 384]  # one more than the launcher keeps spares for
    shutil.copy(SERVICES / "node" / "handlers.js", tmp_path / "handlers.js")
    functions = "".join(
        f"  m{mb}:\n    handler: handlers.heap\n    memorySize: {mb}\n" for mb in sizes
    )
    (tmp_path / "serverless.yml").write_text(
        f"service: sizes\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n{functions}"
    )
    registry = Registry(data_dir)
    deploy_service(registry, load_service(tmp_path))
    fns = [registry.get(f"sizes-dev-m{mb}") for mb in sizes]

    async def scenario(invoker: Invoker) -> tuple[list[int], list[int]]:
        invoker.start(fns)
        launcher = process_pools(invoker).launcher
        kept = [await spare_of(launcher, fn) for fn in fns[1:]]
        return launcher.spares_for(fns[0]), kept

    oldest, kept = run_with_invoker(RuntimeSettings(data_dir=data_dir, jail=False), scenario)
    assert oldest == []  # its spare was stopped (or never kept) for the newer sizes'
    assert len(set(kept)) == 4


def test_the_functions_node_options_apply(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "node"))
    fn = registry.get("node-probe-dev-options")
    seen = body(
        run_with_invoker(
            RuntimeSettings(data_dir=data_dir), lambda invoker: invoker.invoke(fn, b"{}")
        )
    )
    assert "--enable-source-maps" in seen["execArgv"] and seen["sourceMaps"] is True
    assert "--max-http-header-size=16384" in seen["execArgv"]
    assert seen["nodeOptions"] == "--enable-source-maps --max-http-header-size=16384"
