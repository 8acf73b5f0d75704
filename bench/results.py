"""bench/RESULTS.md: one `## section` per bench, each rewritten whole by its bench."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = """# Benchmark results

Every figure is a ratio against a bare baseline measured side by side in the same run, on the
same machine. Reproduce all of them with `make bench` (or one with `.venv/bin/python -m
bench.<name>`). Timings are not tests: the test suite asserts behaviour only.
"""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        wrk = wrk.split(" Copyright")[0].strip() or "wrk"
    except OSError:
        wrk = "wrk not installed"
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"Linux {platform.release()}, load generator {wrk}"
    )


def update_section(title: str, body: str) -> None:
    """Replace (or add) `## title` in RESULTS.md with `body`."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    text = re.sub(r"\n+(?=^## )", "\n\n", text, flags=re.M)  # one blank line before each
    RESULTS.write_text(text.rstrip() + "\n")
