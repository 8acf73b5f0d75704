"""What layers cost: the cold start of a function with 5 layers against the same function
without (both jailed when the machine can: the layers' /opt is one more bind mount at BOOT,
and two more sys.path entries), and an unchanged redeploy of a service with a 20 MB layer
against its first deploy (the redeploy hashes the layer and publishes nothing)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import Client, faasbox_server, median, percentile
from bench.node import cold_starts
from bench.results import machine, update_section
from faasbox.config import load_service
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service

LAYERS = 5
DEPLOYS = 5


def service(root: Path, big_layer_mb: int = 0) -> Path:
    """A hello twice, `plain` and `layered` (with LAYERS layers of a module each)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text("def hello(event, context):\n    return {'message': 'Hello'}\n")
    layers = "".join(f"  l{i}:\n    path: layers/l{i}\n" for i in range(LAYERS))
    refs = "".join(f"      - Ref: L{i}LambdaLayer\n" for i in range(LAYERS))
    for i in range(LAYERS):
        (root / "layers" / f"l{i}" / "python").mkdir(parents=True, exist_ok=True)
        (root / "layers" / f"l{i}" / "python" / f"mod{i}.py").write_text(f"N = {i}\n")
    if big_layer_mb:
        (root / "layers" / "l0" / "python" / "blob.bin").write_bytes(
            os.urandom(big_layer_mb * 1024 * 1024)
        )
    (root / "serverless.yml").write_text(
        "service: benchlayers\nprovider:\n  name: aws\n  runtime: python3.11\n"
        f"  memorySize: 128\nlayers:\n{layers}functions:\n"
        "  plain:\n    handler: app.hello\n    events:\n      - httpApi: GET /plain\n"
        "  layered:\n    handler: app.hello\n    events:\n      - httpApi: GET /layered\n"
        f"    layers:\n{refs}"
    )
    return root


def ms(times: list[float]) -> str:
    return f"{median(times):.1f} / {percentile(times, 99):.1f}"


def deploy_times(folder: Path, data_dir: Path) -> tuple[float, float]:
    """The first deploy, and the median of DEPLOYS unchanged redeploys, in ms."""
    registry = Registry(data_dir)
    spec = load_service(folder)
    started = time.perf_counter()
    deploy_service(registry, spec)
    first = (time.perf_counter() - started) * 1000
    again: list[float] = []
    for _ in range(DEPLOYS):
        started = time.perf_counter()
        deploy_service(registry, load_service(folder))
        again.append((time.perf_counter() - started) * 1000)
    versions = len(registry.layers.versions("l0"))
    registry.close()
    assert versions == 1, f"an unchanged redeploy published a layer version ({versions})"
    return first, median(again)


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = service(Path(tmp) / "svc")
        server = faasbox_server([folder])
        try:
            client = Client(server.url)
            plain, _ = cold_starts(client, "benchlayers-dev-plain", "/plain")
            layered, _ = cold_starts(client, "benchlayers-dev-layered", "/layered")
        finally:
            server.stop()
        big = service(Path(tmp) / "big", big_layer_mb=20)
        first, again = deploy_times(big, Path(tmp) / "data")
    ratio = median(layered) / median(plain)
    body = f"""
| | without layers | with {LAYERS} layers | ratio |
|---|---|---|---|
| cold start p50 / p99 ms | {ms(plain)} | {ms(layered)} | **{ratio:.2f}x** |

| deploy, service with a 20 MB layer | first | unchanged redeploy (median of {DEPLOYS}) | ratio |
|---|---|---|---|
| ms | {first:.0f} | {again:.0f} | **{again / first:.2f}x** |

Cold start: as bench.jail_cold measures it (the route's `GET` after the function's workers
were stopped, 30 samples, sequential), the same hello with and without {LAYERS} one-module
layers, in one `faasbox serve`. Deploy: `deploy_service` in-process, the layer's folder
hashed again and its newest version reused (nothing published, nothing copied), against the
first deploy that stores it and builds its merged /opt. Load average at the start
{load_before:.1f}, at the end {os.getloadavg()[0]:.1f}.
{machine()}
Command: `.venv/bin/python -m bench.layers`
"""
    update_section("Layers", body)
    print(body)


if __name__ == "__main__":
    main()
