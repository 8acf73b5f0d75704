"""Two gateways on one data dir: how soon a deploy through one is served by the other.

For each round, new code for one function through gateway A (UpdateFunctionCode); then the
time until an invoke returns the new code's answer, through A itself (the baseline: the
deploying gateway serves it at once) and through B (which follows the deploy revision,
faasbox.registry.follower, every 0.25 s). Target (issue 19): within 1 s."""

from __future__ import annotations

import io
import json
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench.common import FUNCTIONS, median, percentile
from bench.results import machine, update_section
from tests.support import RunningServer, lambda_client

ROUNDS = 20
NAME = "follow-hello"


def _zip(answer: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", f"def run(event, context):\n    return {answer}\n")
    return buffer.getvalue()


def _until_served(aws: Any, answer: int, deployed_at: float) -> float:
    """Seconds from `deployed_at` until an invoke through `aws` returns `answer`."""
    while True:
        try:
            response = aws.invoke(FunctionName=NAME, Payload=b"{}")
            if json.loads(response["Payload"].read()) == answer:
                return time.perf_counter() - deployed_at
        except aws.exceptions.ResourceNotFoundException:
            pass
        time.sleep(0.005)


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="faasbox-bench-"))
    # Both serve the bench's hello service (as gateways of one deployment start alike).
    a = RunningServer([FUNCTIONS / "hello"], data, "--no-auth").start()
    b = RunningServer([FUNCTIONS / "hello"], data, "--no-auth").start()
    own: list[float] = []
    other: list[float] = []
    try:
        through_a, through_b = lambda_client(a.url, None), lambda_client(b.url, None)
        through_a.create_function(
            FunctionName=NAME, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/x",
            Handler="handler.run", Code={"ZipFile": _zip(0)},
        )  # fmt: skip
        _until_served(through_b, 0, time.perf_counter())
        for answer in range(1, ROUNDS + 1):
            through_a.update_function_code(FunctionName=NAME, ZipFile=_zip(answer))
            deployed_at = time.perf_counter()
            own.append(_until_served(through_a, answer, deployed_at))
            other.append(_until_served(through_b, answer, deployed_at))
    finally:
        a.stop()
        b.stop()

    def row(what: str, xs: list[float], bold: str = "") -> str:
        p50, p90, top = (f"{v * 1000:.0f}" for v in (median(xs), percentile(xs, 90), max(xs)))
        return f"| {what} | {bold}{p50}{bold} | {p90} | {bold}{top}{bold} |"

    body = f"""Target: a deploy through one gateway is served by the others within 1 s (issue 19).

| served through | p50 ms | p90 ms | max ms |
|---|---|---|---|
{row("A, the gateway deployed through (baseline)", own)}
{row("B, another gateway on the same data dir", other, "**")}

{ROUNDS} rounds of UpdateFunctionCode through A (boto3), then invokes every 5 ms until the new
code answers, through A and then through B; times from A's reply to the deploy. B follows
the deploy revision every 0.25 s and then drains its warm worker, so its time includes a cold
start of the new code; A's includes that cold start too. Two `faasbox serve --no-auth` on
one machine, one data dir.
Machine: {machine()}.
Command: `.venv/bin/python -m bench.gateways`
"""
    update_section("Gateways: a deploy followed by another gateway", body)
    print(body)


if __name__ == "__main__":
    main()
