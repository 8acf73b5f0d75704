"""Shared test helpers: a real faasbox server in a subprocess on a free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SERVICES = ROOT / "tests" / "services"
SERVING = re.compile(r"serving on (http://\S+)")


class RunningServer:
    """`faasbox serve` as a user runs it, on a port the OS picks."""

    def __init__(self, dirs: list[Path], data_dir: Path, *args: str) -> None:
        self.dirs = dirs
        self.data_dir = data_dir
        self.args = args
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 60) -> RunningServer:
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [
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
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("faasbox serve exited:\n" + "".join(self.output))
            self.output.append(line)
            match = SERVING.search(line)
            if match:
                self.url = match.group(1)
                break
        else:
            raise RuntimeError("faasbox serve did not start:\n" + "".join(self.output))
        # Keep draining its output so the server never blocks on a full pipe.
        import threading

        threading.Thread(target=self._drain, daemon=True).start()
        httpx.get(f"{self.url}/_faasbox/health", timeout=10).raise_for_status()
        return self

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


def lambda_client(url: str):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=60),
    )
