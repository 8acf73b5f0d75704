"""How the runtime is tuned: pool sizes, queueing, idle reaping. One object, set at startup."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# What the preloaded zygote imports, for functions that use it (faasbox.execution.process.launcher).
DEFAULT_PRELOAD = ("numpy", "PIL.Image", "cv2", "onnxruntime")


# What a live worker is budgeted for, idle or busy: the default caps leave room for this.
WORKER_MEMORY_BUDGET = 256 << 20


def available_memory() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 30


def default_max_workers() -> int:
    """The global cap on environments running at once (busy or starting), from the machine's
    cores and memory."""
    cores = os.cpu_count() or 1
    by_memory = max(1, available_memory() // WORKER_MEMORY_BUDGET)
    return max(2, min(cores * 4, by_memory))


def default_max_live_workers() -> int:
    """The global cap on live environments, idle ones too: as many as memory has room for
    (an idle worker costs memory, not CPU)."""
    return max(2, available_memory() // WORKER_MEMORY_BUDGET)


@dataclass(frozen=True)
class RuntimeSettings:
    data_dir: Path
    # The database of the registry, keys, queue, logs (faasbox.storage): a PostgreSQL URL
    # shared by gateways, or None for the SQLite file in the data dir.
    database: str | None = None
    # Environments running at once, all functions together (and each function's concurrency
    # limit but for reservedConcurrency); and live ones, idle ones too, never fewer than that.
    max_workers: int = field(default_factory=default_max_workers)
    max_live_workers: int = field(default_factory=default_max_live_workers)
    # A request finding every allowed worker busy waits this long, then gets a 429.
    queue_timeout_s: float = 2.0
    queue_limit: int = 100  # waiting requests per function beyond which 429 is immediate
    idle_timeout_s: float = 300.0
    init_timeout_s: float = 10.0  # Lambda's INIT phase limit
    log_records_per_function: int = 1000
    log_bytes_per_function: int = 8 << 20
    # Invocation logs in the registry's database (faasbox.execution.log_db): how much of each
    # function's is kept there, by size and by age; False keeps them in memory only.
    persist_logs: bool = True
    log_retention_bytes: int = 64 << 20
    log_retention_s: float = 7 * 86400.0
    watchdog_interval_s: float = 0.05
    # Enforce memorySize with cgroups where the machine allows; False: the RSS watchdog only.
    memory_cgroups: bool = True
    # Cold starts fork from zygotes; False spawns a fresh interpreter per worker.
    use_zygote: bool = True
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    # Jail every process-based worker (own uid, namespaces, root, limits) where the machine
    # allows; False runs workers as the server does (a private /tmp at most): benches only.
    jail: bool = True
    # The uids (and gids) functions run as: [uid_base, uid_base + uid_count).
    uid_base: int = 100000
    uid_count: int = 1 << 20
    # An async invocation that failed is retried after this, and then twice this (Lambda:
    # about 1 and 2 minutes); tests shorten it (serve --async-retry-delay).
    async_retry_delay_s: float = 60.0
    # serve --ray ADDRESS: the process executor's functions run on that Ray cluster
    # (faasbox.execution.ray), a new environment waiting this long for a node to take it.
    ray_address: str | None = None
    ray_placement_timeout_s: float = 60.0
