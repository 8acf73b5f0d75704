"""Shared test helpers: a real faasbox server in a subprocess on a free port, and clients
that sign their requests (SigV4, with botocore's own signer) with the server's credentials."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from faasbox.execution.invoker import Invoker
from faasbox.execution.process import jail
from faasbox.execution.process.executor import ProcessExecutor
from faasbox.execution.process.pool import PoolManager
from faasbox.execution.runtimes import PROCESS
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry.access_keys import Credentials, read_credentials_file

T = TypeVar("T")

# The pause between two checks of a condition in wait_until: the only sleep the tests use to
# wait for the system, and only ever between checks of the condition waited for.
POLL_INTERVAL_S = 0.02

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SERVICES = ROOT / "tests" / "services"
SERVING = re.compile(r"serving on (http://\S+)")
# Whether this machine jails workers (root, namespaces): what a worker sees depends on it.
JAILED = not jail.missing()
# Variables of the person running the tests that would change what a server or client uses.
PERSONAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "FAASBOX_HOME",
    "FAASBOX_URL",
    "FAASBOX_MASTER_KEY",
    "FAASBOX_DATABASE",
)


def processes_of(uid: int) -> list[int]:
    """The host's processes running as `uid` (a jailed function's workers, and what they
    started: each function has a uid of its own)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        uids = next((line.split()[1:] for line in lines if line.startswith("Uid:")), [])
        if uids and int(uids[0]) == uid:
            found.append(int(status.parent.name))
    return found


def zombie_children(pid: int) -> list[int]:
    """The children of `pid` that have exited and are not reaped yet."""
    zombies = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            zombies.append(int(stat.parent.name))
    return zombies


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the tester's own credentials and faasbox settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in PERSONAL_ENV}
    env.update({"COLUMNS": "200", "NO_COLOR": "1"}, **extra)
    return env


class RunningServer:
    """`faasbox serve` as a user runs it, on a port the OS picks."""

    def __init__(
        self, dirs: list[Path], data_dir: Path, *args: str, wrapper: Sequence[str] = ()
    ) -> None:
        self.dirs = dirs
        self.data_dir = data_dir
        self.args = args
        self.wrapper = list(wrapper)  # a command the server runs under (setpriv, ...)
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        # The admin key `faasbox serve` wrote to <data-dir>/credentials (None with --no-auth).
        self.credentials: Credentials | None = None

    def start(self, timeout: float = 60, env: Mapping[str, str] | None = None) -> RunningServer:
        env = clean_env(**(env or {}))
        self.proc = subprocess.Popen(
            [
                *self.wrapper,
                sys.executable,
                "-m",
                "faasbox",
                "serve",
                *map(str, self.dirs),
                "--port",
                "0",
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            self._wait_serving(timeout)
            # Keep draining its output so the server never blocks on a full pipe.
            threading.Thread(target=self._drain, daemon=True).start()
            httpx.get(f"{self.url}/_faasbox/health", timeout=10).raise_for_status()
        except BaseException:
            self.proc.kill()  # a server that failed to start must not outlive the test
            self.proc.wait()
            raise
        self.credentials = read_credentials_file(self.data_dir / "credentials", "faasbox")
        return self

    def _wait_serving(self, timeout: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("faasbox serve exited:\n" + "".join(self.output))
            self.output.append(line)
            match = SERVING.search(line)
            if match:
                self.url = match.group(1)
                return
        raise RuntimeError("faasbox serve did not start:\n" + "".join(self.output))

    def client_env(self, **extra: str) -> dict[str, str]:
        """The environment of a CLI subprocess that talks to this server, as its user would:
        FAASBOX_URL, and FAASBOX_HOME for the server's credentials file."""
        return clean_env(FAASBOX_URL=self.url, FAASBOX_HOME=str(self.data_dir), **extra)

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        """Wait until the server has printed `text`."""
        wait_until(lambda: text in "".join(self.output), timeout, f"the server to print {text!r}")


def lambda_client(url: str, credentials: Credentials | None) -> Any:
    """boto3's Lambda client for a server, signing with `credentials` (None: made-up ones, for
    a --no-auth server)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key_id if credentials else "test",
        aws_secret_access_key=credentials.secret_access_key if credentials else "test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
    )


def signed_request(
    method: str,
    url: str,
    credentials: Credentials | None,
    *,
    content: bytes = b"",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float = 30.0,
    region: str = "us-east-1",
) -> httpx.Response:
    """An httpx request signed as boto3 signs a Lambda request (botocore's SigV4Auth), so the
    tests check the server against the real client's signer, not against our own."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials
    from botocore.utils import percent_encode_sequence

    if params:
        url += ("&" if "?" in url else "?") + percent_encode_sequence(dict(params))
    request = AWSRequest(method=method, url=url, data=content, headers=dict(headers or {}))
    if credentials is not None:
        signer = SigV4Auth(
            BotoCredentials(credentials.access_key_id, credentials.secret_access_key),
            "lambda",
            region,
        )
        signer.add_auth(request)
    return httpx.request(
        method, url, content=content, headers=dict(request.headers.items()), timeout=timeout
    )


def run_with_invoker(settings: RuntimeSettings, scenario: Callable[[Invoker], Awaitable[T]]) -> T:
    """Run `scenario` against a fresh Invoker (real workers) and stop every worker after."""

    async def main() -> T:
        invoker = Invoker(settings)
        try:
            return await scenario(invoker)
        finally:
            await invoker.close()

    return asyncio.run(main())


def process_pools(invoker: Invoker) -> PoolManager:
    """The process executor's pools, for the functional tests of worker processes."""
    executor = invoker.executor(PROCESS)
    assert isinstance(executor, ProcessExecutor)
    return executor.pools


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Check `predicate` until it returns something true, and return that; fail, naming
    `what`, after `timeout` seconds (a bound for a loaded machine, not an expected time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(POLL_INTERVAL_S)


async def wait_until_async(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """wait_until inside an event loop: the loop keeps running between checks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        await asyncio.sleep(POLL_INTERVAL_S)


async def stops_after_a_wake_up(
    wake: Callable[[], None], stop: Callable[[], Awaitable[None]], turns: int
) -> bool:
    """Wake a running loop (a task of the code under test), let the event loop turn `turns`
    times, then stop it: True if `stop` returned within 10 s. A cancel that the loop's
    wait swallows leaves `stop` waiting forever."""
    wake()
    for _ in range(turns):
        await asyncio.sleep(0)
    try:
        async with asyncio.timeout(10):
            await stop()
    except TimeoutError:
        return False
    return True


async def stop_idle_workers(invoker: Invoker) -> int:
    """Stop every idle worker, as `DELETE /_faasbox/functions/{name}/workers` does, and wait
    until their processes have exited; the next invocation is a cold start."""
    pools = process_pools(invoker).pools.values()
    idle = [w for pool in pools for w in pool.idle]
    for pool in pools:
        pool.evict_idle()
    await asyncio.gather(*(w.exited for w in idle))
    return len(idle)


def aws_cli_path() -> str:
    """The AWS CLI the dev extra installs (`make test` does): `aws` next to this Python."""
    path = Path(sys.executable).parent / "aws"
    if not path.exists():
        raise AssertionError(f"no AWS CLI at {path}: pip install -e '.[dev]' installs it")
    return str(path)


def faasbox_cli(
    server: RunningServer, *args: str, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The faasbox CLI as its user runs it against `server` (its URL and credentials)."""
    return subprocess.run(
        [sys.executable, "-m", "faasbox", *args],
        capture_output=True,
        text=True,
        env=server.client_env(),
        cwd=cwd,
        timeout=timeout,
    )


def aws_lambda_cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`aws lambda ...` as a user runs it against faasbox, with the server's admin key."""
    assert server.credentials is not None
    env = clean_env(
        AWS_ACCESS_KEY_ID=server.credentials.access_key_id,
        AWS_SECRET_ACCESS_KEY=server.credentials.secret_access_key,
        AWS_DEFAULT_REGION="us-east-1",
    )
    return subprocess.run(
        [aws_cli_path(), "--endpoint-url", server.url, "--output", "json", "lambda", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


class LineReader:
    """Collects a subprocess's output lines in a thread, so a test can wait for one."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)
