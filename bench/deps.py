"""Redeploys with unchanged requirements install nothing: `faasbox deploy` of a service with a
requirements.txt (tests/services/requirements: tabulate, humanize, pydantic 1.10) to a real
server, first into an empty bundle cache (pip installs, from pip's own wheel cache once
warm), then SAMPLES times again with the same requirements, each timed at the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import faasbox_server, median
from bench.results import machine, update_section
from faasbox.config import load_service
from faasbox.dependencies import dependency_files

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "tests" / "services" / "requirements"
SAMPLES = 5


def deploy(url: str, cache: Path) -> tuple[float, str]:
    env = {**os.environ, "FAASBOX_URL": url, "FAASBOX_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "faasbox", "deploy", str(SERVICE)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return (time.perf_counter() - started) * 1000, done.stdout


def dependency_step(cache: Path) -> tuple[float, list[float]]:
    """The dependency step of a deploy alone, in-process: the install, then cache hits."""
    spec = load_service(SERVICE)
    started = time.perf_counter()
    dependency_files(spec, cache, lambda line: None)
    install = (time.perf_counter() - started) * 1000
    hits = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        dependency_files(spec, cache, lambda line: None)
        hits.append((time.perf_counter() - started) * 1000)
    return install, hits


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="faasbox-bench-cache-") as tmp:
        install, hits = dependency_step(Path(tmp))
    server = faasbox_server([ROOT / "examples" / "hello"])
    try:
        with tempfile.TemporaryDirectory(prefix="faasbox-bench-cache-") as tmp:
            warm_pip = Path(tmp) / "warm-pip"
            deploy(server.url, warm_pip)  # fills pip's wheel cache: the next install is local
            first, first_out = deploy(server.url, Path(tmp) / "cache")
            assert "Successfully installed" in first_out, first_out
            again = []
            for _ in range(SAMPLES):
                ms, out = deploy(server.url, Path(tmp) / "cache")
                assert "nothing to install" in out and "pip install" not in out, out
                again.append(ms)
    finally:
        server.stop()
    load_after = os.getloadavg()[0]
    body = f"""Target: a redeploy with unchanged requirements installs nothing.

| tests/services/requirements ({SAMPLES} samples again) | ms |
|---|---|
| the dependency step alone: pip installs 3 requirements into an empty cache | {install:.0f} |
| the dependency step alone, again: the cached bundle (median) | {median(hits):.1f} |
| `faasbox deploy`, first: the install, the zip, the upload | {first:.0f} |
| `faasbox deploy` again, same requirements (median) | {median(again):.0f} |

With unchanged requirements the dependency step is **{install / median(hits):.0f}x** faster
(it finds the bundle and lists its files: no pip). A whole redeploy takes
{median(again) / first:.2f}x the first deploy's time: the rest of a deploy (the CLI's own
start, deflating the zip of about 10 MB of installed files, pydantic 1.10's compiled modules
most of it, the upload, the server's unzip) costs about as much as a cached install saves,
and on a loaded machine varies by more. pip's wheel cache was warm for every install
(nothing downloaded), so the ratios are install against no install. The machine's other
load: average {load_before:.1f} at the start, {load_after:.1f} at the end. Machine:
{machine()}.
Command: `.venv/bin/python -m bench.deps`"""
    update_section("Dependencies: redeploy with unchanged requirements", body)
    print(body)


if __name__ == "__main__":
    main()
