"""Real worker processes, driven through the Invoker as the gateway drives them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from faasbox.config import load_service
from faasbox.errors import TooManyRequests
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.process import pool as pool_module
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service
from tests.support import (
    EXAMPLES,
    JAILED,
    ROOT,
    SERVICES,
    clean_env,
    process_pools,
    run_with_invoker,
    wait_until_async,
)

T = TypeVar("T")


class Harness:
    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.registry = Registry(data_dir)
        for service in (
            SERVICES / "probe",
            SERVICES / "broken",
            EXAMPLES / "limits",
            EXAMPLES / "hello",
        ):
            deploy_service(self.registry, load_service(service))
        self.settings = RuntimeSettings(data_dir=data_dir, **settings)

    def run(self, scenario: Callable[[Invoker], Awaitable[T]]) -> T:
        return run_with_invoker(self.settings, scenario)

    async def call(self, invoker: Invoker, name: str, event: Any = None) -> InvocationResult:
        payload = json.dumps(event if event is not None else {}).encode()
        return await invoker.invoke(self.registry.get(name), payload)


@pytest.fixture
def harness(data_dir: Path) -> Harness:
    return Harness(data_dir)


def body(result: InvocationResult) -> Any:
    return json.loads(result.payload)


def test_warm_worker_serves_many_invocations_after_one_init(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await harness.call(invoker, "probe-dev-counter") for _ in range(3)]

    results = harness.run(scenario)
    assert [body(r)["calls"] for r in results] == [1, 2, 3]
    assert len({body(r)["instance"] for r in results}) == 1
    assert [r.cold for r in results] == [True, False, False]
    assert results[0].init_ms is not None and results[1].init_ms is None
    assert "Init Duration:" in results[0].log and "Init Duration:" not in results[1].log


def test_context_environment_cwd_and_tmp(harness: Harness) -> None:
    result = harness.run(lambda inv: harness.call(inv, "probe-dev-inspect"))
    assert result.status == "success", result.payload
    seen = body(result)
    fn = harness.registry.get("probe-dev-inspect")
    ctx = seen["context"]
    assert ctx["function_name"] == "probe-dev-inspect"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:000000000000:function:probe-dev-inspect"
    )
    assert ctx["memory_limit_in_mb"] == "256"
    assert ctx["aws_request_id"] == result.request_id
    assert ctx["log_group_name"] == "/aws/lambda/probe-dev-inspect"
    assert "[$LATEST]" in ctx["log_stream_name"]
    assert 0 < ctx["remaining"] <= 5000
    env = seen["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "probe-dev-inspect"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/probe-dev-inspect"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == ctx["log_stream_name"]
    assert env["AWS_REGION"] == "us-east-1"
    # Jailed (as root), the code is at /var/task and /tmp is the worker's own, as on Lambda.
    task_root, tmp = ("/var/task", "/tmp") if JAILED else (str(fn.code_dir), env["TMPDIR"])
    assert env["LAMBDA_TASK_ROOT"] == task_root
    assert env["_HANDLER"] == "probe.inspect"
    assert env["TZ"] == ":UTC"
    assert env["OWN_SETTING"] == "own-value" and env["SHARED"] == "from-provider"
    # Lambda's library path: the code's, then the layers' (/opt/lib, or where it stands in).
    assert env["LD_LIBRARY_PATH"].startswith(f"{task_root}:{task_root}/lib:")
    # Nothing of the server's own environment leaks in.
    for key in os.environ:
        if key not in ("PATH", "LANG", "TZ", "TMPDIR", "LD_LIBRARY_PATH"):
            assert key not in env, key
    assert env["LD_LIBRARY_PATH"] != os.environ.get("LD_LIBRARY_PATH")
    assert seen["cwd"] == task_root
    assert seen["tmpdir"] == env["TMPDIR"] == tmp
    assert seen["init_pid"] == seen["pid"]


def test_spawned_workers_get_the_same_environment(data_dir: Path) -> None:
    harness = Harness(data_dir, use_zygote=False)  # `serve --no-zygote`: a fresh interpreter
    result = harness.run(lambda inv: harness.call(inv, "probe-dev-inspect"))
    assert result.status == "success", result.log
    seen = body(result)
    if JAILED:
        assert (seen["cwd"], seen["tmpdir"]) == ("/var/task", "/tmp")
    assert seen["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "probe-dev-inspect"


def under_tmp(path: str | Path) -> bool:
    return os.path.realpath(path).startswith("/tmp/")


@pytest.mark.skipif(os.geteuid() != 0, reason="a private /tmp needs root; these tests are not")
def test_each_worker_sees_its_own_tmp(data_dir: Path) -> None:
    if under_tmp(ROOT) or under_tmp(sys.prefix):
        # A private /tmp would hide this checkout (or its virtualenv) from the worker, which
        # then keeps the host's /tmp: check it from a copy placed elsewhere.
        check_private_tmp_from_a_copy()
        return
    harness = Harness(data_dir)
    marker = Path("/tmp") / f"faasbox-host-marker-{os.getpid()}"
    marker.write_text("host")
    try:
        result = harness.run(lambda inv: harness.call(inv, "probe-dev-inspect"))
    finally:
        marker.unlink()
    seen = body(result)
    assert marker.name not in seen["tmp_listing"]
    # Only what this worker wrote; and the server's installation, should it lie under /tmp
    # (a virtualenv borrowed from there): bound read-only again over the worker's own /tmp.
    installed = {Path(os.path.realpath(p)).parts[2] for p in sys.path if p and under_tmp(p)}
    assert "probe.txt" in seen["tmp_listing"]
    assert set(seen["tmp_listing"]) - {"probe.txt"} <= installed, seen["tmp_listing"]


def check_private_tmp_from_a_copy() -> None:
    """Run the test above from a copy of the code and a virtualenv outside /tmp."""
    outside = next(p for p in (Path("/var/tmp"), Path.home()) if p.is_dir() and not under_tmp(p))
    run_from_a_copy(outside, "tests/functional/test_runtime.py::test_each_worker_sees_its_own_tmp")


NODE_TEST = "tests/functional/test_node_runtime.py::test_the_worker_sees_lambdas_node_environment"


@pytest.mark.skipif(not JAILED, reason="jailing workers needs root and namespaces")
def test_jailed_workers_of_a_checkout_under_tmp_see_its_code_and_packages() -> None:
    # A CI job may clone under /tmp: BOOT's fresh /tmp must not hide the virtualenv, the
    # packages it borrows through a .pth file (numpy), or faasbox's files (node's runtime).
    run_from_a_copy(
        Path("/tmp"),
        "tests/functional/test_zygote.py::test_workers_fork_from_zygotes_with_their_own_world",
        "tests/functional/test_runtime.py::test_context_environment_cwd_and_tmp",
        *([NODE_TEST] if shutil.which("node") else []),
    )


def run_from_a_copy(where: Path, *tests: str) -> None:
    """Run `tests` in a copy of the code under `where`, with a virtualenv there too that
    borrows this one's packages through a .pth file; all must pass."""
    with tempfile.TemporaryDirectory(dir=where, prefix="faasbox-copy-") as scratch:
        copy = Path(scratch) / "checkout"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
        for part in ("faasbox", "tests", "examples/hello", "examples/limits"):
            shutil.copytree(ROOT / part, copy / part, ignore=ignore)
        shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
        venv = Path(scratch) / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
        )
        (site_dir,) = (venv / "lib").glob("python3*/site-packages")
        (site_dir / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=copy, env=clean_env(), capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(tests)} passed in" in done.stdout, done.stdout


def test_output_from_print_logging_and_c_is_captured_in_order(harness: Harness) -> None:
    result = harness.run(lambda inv: harness.call(inv, "probe-dev-output"))
    lines = result.log.splitlines()
    assert lines[0] == f"START RequestId: {result.request_id} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {result.request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {result.request_id}\tDuration: ")
    middle = "\n".join(lines[1:-2])
    for text in ("from print", "from stderr", "from fd 1", "from C puts"):
        assert text in middle
    assert "[WARNING]\t" in middle and f"\t{result.request_id}\tfrom logging" in middle
    report = lines[-1]
    assert "Billed Duration: " in report and "Memory Size: 256 MB" in report
    assert "Max Memory Used: " in report


def test_output_read_before_the_result_is_in_its_own_invocations_log(harness: Harness) -> None:
    """Output the server's reader took from the pipe while the handler still ran (the pipe
    empty when the result is sent: the server does not read it again) is all in the log of
    its invocation, and none of it in the next one's."""

    async def scenario(invoker: Invoker) -> tuple[InvocationResult, InvocationResult]:
        paused = await harness.call(invoker, "probe-dev-output", {"pause": 0.3})
        return paused, await harness.call(invoker, "probe-dev-output")

    paused, after = harness.run(scenario)
    assert not after.cold  # the same worker, the same pipe
    for result in (paused, after):
        for text in ("from print", "from stderr", "from fd 1", "from C puts", "from logging"):
            assert result.log.count(text) == 1, result.log
        end = result.log.index(f"END RequestId: {result.request_id}")
        assert result.log.index("from C puts") < end


def test_handler_exception_is_lambda_shaped_and_worker_stays_warm(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> tuple[InvocationResult, InvocationResult]:
        failed = await harness.call(invoker, "limits-dev-raising")
        fine = await harness.call(invoker, "limits-dev-raising", {"behave": True})
        return failed, fine

    failed, fine = harness.run(scenario)
    error = body(failed)
    assert failed.function_error == "Unhandled"
    assert error["errorType"] == "OddError"
    assert error["errorMessage"] == "something odd happened"
    assert error["requestId"] == failed.request_id
    assert any("raise OddError" in frame for frame in error["stackTrace"])
    assert "[ERROR] OddError: something odd happened" in failed.log
    assert body(fine) == "calm" and fine.cold is False


@pytest.mark.parametrize(
    ("name", "error_type", "message"),
    [
        (
            "broken-dev-missing-module",
            "Runtime.ImportModuleError",
            "Unable to import module 'nowhere': No module named 'nowhere'",
        ),
        (
            "broken-dev-missing-handler",
            "Runtime.HandlerNotFound",
            "Handler 'not_there' missing on module 'good'",
        ),
        ("broken-dev-syntax", "Runtime.UserCodeSyntaxError", "Syntax error in module 'bad_syntax'"),
        ("broken-dev-raises-at-import", "RuntimeError", "cannot start: missing configuration"),
    ],
)
def test_init_failures_have_aws_fault_names(
    harness: Harness, name: str, error_type: str, message: str
) -> None:
    result = harness.run(lambda inv: harness.call(inv, name))
    error = body(result)
    assert result.function_error == "Unhandled"
    assert error["errorType"] == error_type
    assert error["errorMessage"].startswith(message)
    assert f"[ERROR] {error_type}" in result.log


def test_result_that_is_not_json_is_a_marshal_error(harness: Harness) -> None:
    result = harness.run(lambda inv: harness.call(inv, "probe-dev-unserializable"))
    error = body(result)
    assert error["errorType"] == "Runtime.MarshalError"
    assert error["errorMessage"] == (
        "Unable to marshal response: Object of type set is not JSON serializable"
    )


def test_timeout_kills_the_worker_and_the_next_call_succeeds(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> tuple[InvocationResult, InvocationResult]:
        slow = await harness.call(invoker, "limits-dev-sleepy")
        after = await harness.call(invoker, "limits-dev-sleepy", {"behave": True})
        return slow, after

    slow, after = harness.run(scenario)
    error = body(slow)
    assert slow.status == "timeout"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"] == (
        f"RequestId: {slow.request_id} Error: Task timed out after 1.00 seconds"
    )
    assert "going to sleep" in slow.log and "Task timed out after 1.00 seconds" in slow.log
    assert 1000 <= slow.duration_ms < 3000  # never early; late only by a loaded machine's lag
    assert body(after) == "awake" and after.cold is True


def test_a_warm_workers_timeout_counts_from_its_own_invocation(harness: Harness) -> None:
    """A worker's deadline timer is armed once and moved, not made per invocation: after warm
    calls spread over half a second (the timer set at the first is due before the slow call's
    deadline), the slow call still runs its full second before it is timed out."""

    async def scenario(invoker: Invoker) -> tuple[list[InvocationResult], InvocationResult]:
        warm = [await harness.call(invoker, "limits-dev-sleepy", {"behave": True})]
        first = time.monotonic()
        while time.monotonic() - first < 0.5:
            warm.append(await harness.call(invoker, "limits-dev-sleepy", {"behave": True}))
        slow = await harness.call(invoker, "limits-dev-sleepy")
        return warm, slow

    warm, slow = harness.run(scenario)
    assert all(body(w) == "awake" and w.status == "success" for w in warm)
    assert slow.status == "timeout" and not slow.cold
    assert 1000 <= slow.duration_ms < 3000


def test_memory_hog_is_killed_and_report_shows_memory(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> tuple[InvocationResult, InvocationResult]:
        hog = await harness.call(invoker, "limits-dev-hungry")
        after = await harness.call(invoker, "limits-dev-hungry", {"behave": True})
        return hog, after

    hog, after = harness.run(scenario)
    assert hog.status == "crash"
    assert body(hog) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {hog.request_id} Error: Runtime exited with error: "
        "signal: killed",
    }
    assert "Memory Size: 128 MB" in hog.log
    assert hog.max_memory_mb >= 100, hog.log  # it got close to its limit before the kill
    assert f"Max Memory Used: {hog.max_memory_mb} MB" in hog.log
    assert body(after) == "fed"


def test_a_warm_worker_keeps_the_heap_its_invocations_needed(harness: Harness) -> None:
    # glibc left to itself gives the 4 MB back after every invocation (its trim threshold
    # stays below what many sub-threshold blocks add up to), so each one faults it in again.
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await harness.call(invoker, "probe-dev-heap") for _ in range(4)]

    # Relative to the first invocation's faults, which map the 4 MB: a page each with 4 KB
    # pages (~1,000), far fewer where transparent huge pages back the heap.
    faults = [body(r) for r in harness.run(scenario)]
    assert faults[0] > 0, faults
    assert all(f * 10 < faults[0] for f in faults[1:]), faults  # the warm ones reuse them


def test_a_functions_own_malloc_variables_apply_to_its_worker(harness: Harness) -> None:
    # MALLOC_TRIM_THRESHOLD_=0 in its environment: glibc gives the heap back after each one,
    # as it would in a process started with that variable.
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await harness.call(invoker, "probe-dev-heap-given-back") for _ in range(3)]

    faults = [body(r) for r in harness.run(scenario)]
    assert faults[0] > 0 and all(f * 2 > faults[0] for f in faults[1:]), faults


@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("limits-dev-suicidal", "signal: killed"),
        ("probe-dev-segfault", "signal: segmentation fault"),
        ("probe-dev-exits", "exit status 3"),
    ],
)
def test_crash_fails_only_its_own_invocation(harness: Harness, name: str, description: str) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        other = asyncio.create_task(harness.call(invoker, "probe-dev-slow", {"seconds": 0.5}))
        crashed = await harness.call(invoker, name)
        after = await harness.call(invoker, name, {"behave": True})
        return [crashed, after, await other]

    crashed, after, other = harness.run(scenario)
    assert body(crashed)["errorType"] == "Runtime.ExitError"
    assert body(crashed)["errorMessage"].endswith(f"Runtime exited with error: {description}")
    assert after.status == "success"
    assert other.status == "success"


def test_worker_killed_from_outside_fails_its_invocation_only(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> tuple[InvocationResult, InvocationResult]:
        warm = await harness.call(invoker, "probe-dev-slow", {"seconds": 0})
        assert warm.status == "success"
        # The pid the server knows (a jailed worker's own pid is that of its namespace).
        (worker,) = process_pools(invoker).workers
        pid = worker.pid
        task = asyncio.create_task(harness.call(invoker, "probe-dev-slow", {"seconds": 30}))
        # The second invocation has been sent to the worker: kill it from outside now.
        await wait_until_async(lambda: worker.invocations == 2, 30, "the second invocation")
        os.kill(pid, signal.SIGKILL)
        killed = await task
        return killed, await harness.call(invoker, "probe-dev-slow", {"seconds": 0})

    killed, after = harness.run(scenario)
    assert body(killed)["errorMessage"].endswith("signal: killed")
    assert after.status == "success" and after.cold


def test_concurrency_limit_queues_then_throttles(data_dir: Path) -> None:
    harness = Harness(data_dir, queue_timeout_s=0.3)

    async def scenario(invoker: Invoker) -> list[Any]:
        # probe-dev-slow has reservedConcurrency: 1.
        calls = [
            asyncio.create_task(harness.call(invoker, "probe-dev-slow", {"seconds": 1}))
            for _ in range(3)
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = harness.run(scenario)
    throttled = [o for o in outcomes if isinstance(o, TooManyRequests)]
    served = [o for o in outcomes if isinstance(o, InvocationResult)]
    assert len(served) == 1 and len(throttled) == 2
    assert throttled[0].reason == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_queued_request_gets_the_worker_when_it_frees(data_dir: Path) -> None:
    harness = Harness(data_dir, queue_timeout_s=5)

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        calls = [
            asyncio.create_task(harness.call(invoker, "probe-dev-slow", {"seconds": 0.3}))
            for _ in range(3)
        ]
        return list(await asyncio.gather(*calls))

    results = harness.run(scenario)
    assert all(r.status == "success" for r in results)
    assert len({body(r) for r in results}) == 1  # one worker served all three in turn


def test_parallel_invocations_use_several_workers(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        calls = [harness.call(invoker, "probe-dev-counter") for _ in range(4)]
        results = list(await asyncio.gather(*calls))
        assert len(process_pools(invoker).workers) >= 2
        return results

    results = harness.run(scenario)
    assert len({body(r)["instance"] for r in results}) >= 2


SLOW_INIT_CODE = """
import time
import uuid

INSTANCE = uuid.uuid4().hex
time.sleep(3)  # INIT: far longer than the busy worker's invocation


def handler(event, context):
    time.sleep(event.get("seconds", 0))
    return INSTANCE
"""


def test_scaling_up_does_not_hold_a_request_that_a_busy_worker_frees_first(
    data_dir: Path, tmp_path: Path
) -> None:
    service = tmp_path / "slowinit"
    service.mkdir()
    (service / "serverless.yml").write_text(
        "service: slowinit\nprovider:\n  name: aws\n  runtime: python3.11\n  timeout: 30\n"
        "functions:\n  f:\n    handler: h.handler\n"
    )
    (service / "h.py").write_text(SLOW_INIT_CODE)
    registry = Registry(data_dir)
    deploy_service(registry, load_service(service))
    fn = registry.get("slowinit-dev-f")

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        first = await invoker.invoke(fn, b"{}")  # a cold start: the 3 s INIT
        busy = asyncio.create_task(invoker.invoke(fn, b'{"seconds": 0.3}'))
        pools = process_pools(invoker)
        await wait_until_async(
            lambda: any(p.busy for p in pools.pools.values()), 10, "the worker to be busy"
        )
        # No idle worker: a second one starts, but the busy one, free after 0.3 s, serves
        # this request long before the new one's INIT is done.
        second = await invoker.invoke(fn, b"{}")
        await busy
        # Joined and idle: a started worker is counted a loop turn before it is given back.
        await wait_until_async(
            lambda: len(pools.workers) == 2 and not any(p.busy for p in pools.pools.values()),
            30,
            "the new worker to join, idle",
        )
        third = await invoker.invoke(fn, b"{}")  # the most recently idle: the new worker
        return [first, second, third]

    first, second, third = run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario)
    assert first.cold and not second.cold
    assert body(second) == body(first)
    # The new worker reports its cold start with the first invocation it serves.
    assert body(third) != body(first)
    assert third.cold and third.init_ms is not None and "Init Duration:" in third.log


SLEEPER_CODE = """
import time
import uuid

INSTANCE = uuid.uuid4().hex


def handler(event, context):
    time.sleep(event.get("seconds", 0))
    return INSTANCE
"""


def deploy_sleeper(data_dir: Path, tmp_path: Path) -> Any:
    service = tmp_path / "sleeper"
    service.mkdir()
    (service / "serverless.yml").write_text(
        "service: sleeper\nprovider:\n  name: aws\n  runtime: python3.11\n  timeout: 30\n"
        "functions:\n  f:\n    handler: h.handler\n"
    )
    (service / "h.py").write_text(SLEEPER_CODE)
    registry = Registry(data_dir)
    deploy_service(registry, load_service(service))
    return registry.get("sleeper-dev-f")


def test_a_burst_of_long_invocations_onto_a_warm_worker_still_scales_up(
    data_dir: Path, tmp_path: Path
) -> None:
    """Requests that wait in vain for the busy worker start their own, all of them."""
    fn = deploy_sleeper(data_dir, tmp_path)

    async def scenario(invoker: Invoker) -> tuple[list[InvocationResult], int]:
        await invoker.invoke(fn, b"{}")  # one warm worker
        burst = [invoker.invoke(fn, b'{"seconds": 2}') for _ in range(8)]
        results = list(await asyncio.gather(*burst))
        pools = process_pools(invoker)
        await wait_until_async(
            lambda: not any(p.starting for p in pools.pools.values()), 30, "the starts to end"
        )
        return results, len(pools.workers)

    results, workers = run_with_invoker(RuntimeSettings(data_dir=data_dir, max_workers=8), scenario)
    assert all(r.status == "success" for r in results)
    assert workers == 8  # the warm one and one started per request that found it busy


def test_requests_at_concurrency_two_do_not_grow_the_pool_past_it(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clients calling a quick function one call after another: the pool grows to two
    workers (the second client finds the first busy and starts one), but a request that
    finds a start under way waits for a worker to free rather than starting one more."""
    # The wait made longer than any quick call on a loaded machine: the policy is checked,
    # not whether this machine answers a call within the default 5 ms.
    monkeypatch.setattr(pool_module, "SCALE_UP_AFTER_S", 1.0)
    fn = deploy_sleeper(data_dir, tmp_path)

    async def client(invoker: Invoker) -> None:
        for _ in range(40):
            result = await invoker.invoke(fn, b"{}")
            assert result.status == "success"

    async def scenario(invoker: Invoker) -> int:
        await invoker.invoke(fn, b"{}")
        await asyncio.gather(client(invoker), client(invoker))
        pools = process_pools(invoker)
        await wait_until_async(
            lambda: not any(p.starting for p in pools.pools.values()), 30, "the starts to end"
        )
        return len(pools.workers)

    workers = run_with_invoker(RuntimeSettings(data_dir=data_dir, max_workers=8), scenario)
    assert 2 <= workers <= 3


def test_idle_workers_are_reaped(data_dir: Path) -> None:
    """The reaper (it runs once a second) stops a worker idle for over idle_timeout_s."""
    harness = Harness(data_dir, idle_timeout_s=0.5)

    async def scenario(invoker: Invoker) -> tuple[int, InvocationResult, InvocationResult]:
        first = await harness.call(invoker, "probe-dev-counter")
        live = len(process_pools(invoker).workers)
        (worker,) = process_pools(invoker).workers
        await wait_until_async(
            lambda: not process_pools(invoker).workers, 30, "the idle worker's reaping"
        )
        await asyncio.wait_for(worker.exited, 30)  # its process is gone too
        second = await harness.call(invoker, "probe-dev-counter")
        return live, first, second

    live_before, first, second = harness.run(scenario)
    assert live_before == 1
    assert second.cold and body(second)["instance"] != body(first)["instance"]
    assert body(second)["calls"] == 1  # a fresh process: the count starts again


def test_reaping_stops_only_workers_idle_since_before_the_cutoff(harness: Harness) -> None:
    async def scenario(invoker: Invoker) -> tuple[int, int]:
        cutoff = time.monotonic()
        await harness.call(invoker, "probe-dev-counter")  # used after the cutoff
        process_pools(invoker).reap(idle_since=cutoff)
        kept = len(process_pools(invoker).workers)
        process_pools(invoker).reap(idle_since=time.monotonic())  # idle since before now
        return kept, len(process_pools(invoker).workers)

    assert harness.run(scenario) == (1, 0)


def test_redeploy_serves_new_code_to_new_invocations(data_dir: Path, tmp_path: Path) -> None:
    service = tmp_path / "svc"
    service.mkdir()
    (service / "serverless.yml").write_text(
        "service: svc\nprovider:\n  name: aws\nfunctions:\n  f:\n    handler: h.handler\n"
    )
    (service / "h.py").write_text("def handler(e, c):\n    return 'v1'\n")
    registry = Registry(data_dir)
    deploy_service(registry, load_service(service))

    async def scenario(invoker: Invoker) -> list[str]:
        registry.on_change(
            lambda change: [invoker.drain(n, registry.get(n)) for n in change.changed]
        )
        first = await invoker.invoke(registry.get("svc-dev-f"), b"{}")
        (service / "h.py").write_text("def handler(e, c):\n    return 'v2'\n")
        deploy_service(registry, load_service(service))
        second = await invoker.invoke(registry.get("svc-dev-f"), b"{}")
        return [json.loads(first.payload), json.loads(second.payload)]

    assert run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario) == ["v1", "v2"]
    # Unchanged code is stored once: two versions of the code, no more.
    assert len([p for p in (data_dir / "code").iterdir() if not p.name.startswith(".")]) == 2


def test_rss_watchdog_kills_a_memory_hog_where_there_are_no_cgroups(data_dir: Path) -> None:
    harness = Harness(data_dir, memory_cgroups=False)

    async def scenario(invoker: Invoker) -> tuple[str, InvocationResult, InvocationResult]:
        hog = await harness.call(invoker, "limits-dev-hungry")
        after = await harness.call(invoker, "limits-dev-hungry", {"behave": True})
        return process_pools(invoker).limiter.kind, hog, after

    kind, hog, after = harness.run(scenario)
    assert kind == "watchdog"
    assert hog.status == "crash"
    assert body(hog)["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert 128 <= hog.max_memory_mb < 512, hog.log
    assert body(after) == "fed"


SPANS_CODE = """
import os
import time


def handler(event, context):
    if event.get("crash"):
        os._exit(3)
    started = time.time()
    time.sleep(event["seconds"])
    return [started, time.time()]
"""


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, step in edges:  # an end before a start at the same instant
        running += step
        most = max(most, running)
    return most


def test_functions_in_turn_and_together_keep_to_both_caps_and_give_every_slot_back(
    data_dir: Path, tmp_path: Path
) -> None:
    """Three functions, bursts of each and of all together, some invocations crashing their
    worker, on a budget of 2 running and 4 live: no more than 2 handlers ever run at once,
    no more than 4 workers live, every invocation but the crashes succeeds, and once all is
    done the budget counts exactly the live workers, none of them busy."""
    service = tmp_path / "spans"
    service.mkdir()
    functions = "".join(f"  f{i}:\n    handler: h.handler\n" for i in range(3))
    (service / "serverless.yml").write_text(
        "service: spans\nprovider:\n  name: aws\n  runtime: python3.11\n  timeout: 30\n"
        f"functions:\n{functions}"
    )
    (service / "h.py").write_text(SPANS_CODE)
    registry = Registry(data_dir)
    deploy_service(registry, load_service(service))
    fns = [registry.get(f"spans-dev-f{i}") for i in range(3)]
    live_seen: list[int] = []

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        pools = process_pools(invoker)

        async def call(i: int, crash: bool = False) -> InvocationResult:
            event = {"crash": True} if crash else {"seconds": 0.05}
            result = await invoker.invoke(fns[i], json.dumps(event).encode())
            live_seen.append(len(pools.workers))
            return result

        results: list[InvocationResult] = []
        for i in [0, 1, 2, 0, 1, 2]:  # each function alone, in turn
            results += await asyncio.gather(*(call(i) for _ in range(3)))
        mixed = [call(i % 3, crash=i % 7 == 3) for i in range(24)]  # all together
        results += await asyncio.gather(*mixed)
        budget = invoker.budget
        await wait_until_async(
            lambda: budget.busy == 0 and budget.live == len(pools.workers), 30, "slots back"
        )
        assert budget.live == sum(p.size for p in pools.pools.values())
        return results

    settings = RuntimeSettings(
        data_dir=data_dir, max_workers=2, max_live_workers=4, queue_timeout_s=60.0
    )
    results = run_with_invoker(settings, scenario)
    crashed = [r for r in results if r.status != "success"]
    assert len(crashed) == 3 and all("exited" in r.payload.decode() for r in crashed)
    spans = [tuple(json.loads(r.payload)) for r in results if r.status == "success"]
    assert len(spans) == 18 + 21
    assert most_at_once(spans) <= 2
    assert max(live_seen) <= 4
