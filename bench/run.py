"""`make bench`: every benchmark, one after the other, each rewriting its RESULTS.md section."""

from __future__ import annotations

import importlib
import sys

BENCHES = [
    "warm", "cold", "density", "image", "wasm", "wasm_classify", "node", "runtime_api", "layers",
    "deps", "console_stats", "dapr_state", "peers",
]  # fmt: skip


def main() -> None:
    only = sys.argv[1:] or BENCHES
    for name in only:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            print(f"(bench.{name} is not there yet; skipped)")
            continue
        print(f"== bench.{name}", flush=True)
        module.main()


if __name__ == "__main__":
    main()
