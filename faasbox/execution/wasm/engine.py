"""wasmtime engines, the epoch ticker, and compiled modules cached in memory and on disk.

Two engines share the server: one with epoch interruption (every function), one that also
meters fuel (functions with `wasm.fuel`), since fuel is compiled into the code. One ticker
thread advances both engines' epoch every `TICK_S`, in step with the monotonic clock, so a
store whose deadline is `ceil(timeout / TICK_S) + 1` ticks away traps within a tick of its
timeout.

Instances come from wasmtime's pooling allocator (`_pool`): each engine reserves, once,
address space for as many instances as the server runs at once (`--max-workers`: every
running instance holds a slot of the invoker's budget), and an instance takes a slot and
gives it back when its store is closed. wasmtime resets a slot's linear memory as it gives
it back (zeroed, the module's data segments mapped in again), so an invocation sees nothing
of the one before; but the first `KEEP_RESIDENT` bytes are reset with memset and stay
mapped, so the next instance does not page-fault them in anew, and no memory is mapped or
unmapped per instance (on-demand, each instance mmaps and munmaps its 4 GB reservation and
page-faults its memory in: for classify.wasm's 4 MB about 1,000 faults, ~1.5 ms of CPU).

A module is compiled once per code version and engine: the `Program` (its `InstancePre`,
linked with WASI) stays in memory, and the compiled code is kept in
`<data_dir>/wasm-cache/<sha256>-<wasmtime version>-<engine>.cwasm`, so a restarted server
deserializes it (about a millisecond) instead of compiling it again. Only faasbox writes
that folder: deserializing is as trusted as running native code.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from wasmtime import _ffi as ffi

from faasbox.execution.wasm import nn
from faasbox.execution.wasm import poll as wasm_poll

log = logging.getLogger("faasbox.execution")

TICK_S = 0.005
WASI = "wasi_snapshot_preview1"
TABLE_ELEMENTS_LIMIT = 1 << 20  # per table: 8 MB of entries
MAX_TABLES = 4  # per instance
MEMORY_MAX = 4 << 30  # all a 32-bit memory can address; memorySize is the store's limit
KEEP_RESIDENT = 4 << 20  # per memory slot: all of a small program's linear memory


class InvalidModule(Exception):
    """The function's .wasm file is missing, invalid, or not a WASI command."""


@dataclass(frozen=True)
class Program:
    """A module ready to instantiate: per invocation only a Store and an instance are new."""

    engine: wasmtime.Engine
    pre: wasmtime.InstancePre
    fuel: bool
    load_ms: float  # compile or deserialize time, this server's first use of it
    compiled: bool  # False: deserialized from the disk cache


class Engines:
    """The server's engines, linkers, epoch ticker and module cache."""

    def __init__(
        self, cache_dir: Path, instances: int, on_tick: Callable[[], None] | None = None
    ) -> None:
        """`instances`: the most that run at once (the invoker's budget), which each
        engine's pool has room for."""
        self.cache_dir = cache_dir
        self._on_tick = on_tick
        self.version = importlib.metadata.version("wasmtime")
        self._engines = {fuel: new_engine(fuel, instances) for fuel in (False, True)}
        self._linkers = {fuel: _linker(engine) for fuel, engine in self._engines.items()}
        self._programs: dict[tuple[str, bool], Program] = {}
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, bool], threading.Lock] = {}
        self._stop = threading.Event()
        self._origin = time.monotonic()
        self._epoch = 0
        self._ticker = threading.Thread(target=self._tick, name="faasbox-wasm-epoch", daemon=True)
        self._ticker.start()

    # -- epochs --------------------------------------------------------------------------

    def deadline_ticks(self, timeout_s: float) -> int:
        """Ticks from now after which a store set now must trap. The engines' epoch may lag
        the clock (the ticker thread waits for the GIL on a busy server) and then catch up at
        once, so the lag is added: a deadline never falls before the timeout."""
        lag = max(0, int((time.monotonic() - self._origin) / TICK_S) - self._epoch)
        return lag + math.ceil(timeout_s / TICK_S) + 1

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            target = int((time.monotonic() - self._origin) / TICK_S)
            while self._epoch < target:
                self._epoch += 1
                for engine in self._engines.values():
                    engine.increment_epoch()
            if self._on_tick is not None:
                try:
                    self._on_tick()
                except Exception:  # the ticker must never die: every deadline depends on it
                    log.exception("wasm tick callback failed")

    def interrupt_all(self, ticks: int) -> None:
        """Advance the epoch by `ticks` at once: every store set less than that far ahead
        traps at its next check (used when the server stops)."""
        self._origin -= ticks * TICK_S

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()

    # -- modules -------------------------------------------------------------------------

    def program(self, path: Path, fuel: bool, entry: str = "_start") -> tuple[Program, bool]:
        """The linked module at `path`, and whether this call loaded it (compiled it, or
        deserialized it from the disk cache); it must export `entry` (a command's `_start`,
        a reactor's `_initialize`). Blocking: call it off the event loop."""
        key = (str(path), fuel)
        program = self._programs.get(key)
        if program is not None:
            return program, False
        with self._lock:
            lock = self._loading.setdefault(key, threading.Lock())
        try:
            with lock:  # one load per module; other modules load meanwhile
                program = self._programs.get(key)
                if program is not None:
                    return program, False
                program = self._programs[key] = self._load(path, fuel, entry)
                return program, True
        finally:
            with self._lock:
                self._loading.pop(key, None)

    def loaded(self, path: Path, fuel: bool) -> bool:
        """Whether the module at `path` is compiled and linked already (in memory)."""
        return (str(path), fuel) in self._programs

    def forget(self, path: Path) -> None:
        for fuel in (False, True):
            self._programs.pop((str(path), fuel), None)

    def _load(self, path: Path, fuel: bool, entry: str) -> Program:
        try:
            wasm = path.read_bytes()
        except FileNotFoundError:
            raise InvalidModule(f"{path.name} not found in the function's code") from None
        except OSError as e:
            raise InvalidModule(f"cannot read {path.name}: {e.strerror}") from None
        engine = self._engines[fuel]
        started = time.perf_counter()
        cached = self.cache_dir / (
            f"{hashlib.sha256(wasm).hexdigest()}-{self.version}-{_engine_tag(fuel)}.cwasm"
        )
        module = None
        if cached.is_file():
            with contextlib.suppress(wasmtime.WasmtimeError):
                module = wasmtime.Module.deserialize_file(engine, str(cached))
        compiled = module is None
        if module is None:
            try:
                module = wasmtime.Module(engine, wasm)
            except wasmtime.WasmtimeError as e:
                raise InvalidModule(f"{path.name} is not a valid WebAssembly module: {e}") from None
            self._store(cached, module)
        if not any(e.name == entry for e in module.exports):
            raise InvalidModule(
                f"{path.name} exports no _start: build it as a WASI command (a program with "
                "main), not a library or reactor"
            )
        try:
            pre = self._linkers[fuel].instantiate_pre(module)
        except wasmtime.WasmtimeError as e:
            raise InvalidModule(
                f"{path.name} imports what faasbox does not provide (only WASI preview1, "
                f"{WASI}, and wasi-nn, {nn.MODULE}): {_first_line(e)}"
            ) from None
        load_ms = (time.perf_counter() - started) * 1000
        return Program(engine, pre, fuel, load_ms, compiled)

    def _store(self, target: Path, module: wasmtime.Module) -> None:
        """Write the compiled module atomically; a cache that cannot be written is skipped."""
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-", suffix=".cwasm")
            with os.fdopen(fd, "wb") as f:
                f.write(module.serialize())
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)


def _engine_tag(fuel: bool) -> str:
    """What of the engine configuration a serialized module depends on."""
    return "epoch-fuel" if fuel else "epoch"


def new_engine(fuel: bool, instances: int) -> wasmtime.Engine:
    """An engine as the executor's: epoch interruption, fuel metering if `fuel`, and a
    pool of `instances` instance slots."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    _pool(config, instances)
    return wasmtime.Engine(config)


def _pool(config: wasmtime.Config, instances: int) -> None:
    """wasmtime's pooling allocator, set through its C API (wasmtime-py's Config does not
    wrap it): `instances` slots, each one memory of up to 4 GB (address space reserved, not
    memory committed: 4 GB and a guard region per slot) and up to MAX_TABLES tables."""
    instances = max(1, instances)
    pool = ffi.wasmtime_pooling_allocation_config_new()
    try:
        ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, instances)
        ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, instances)
        ffi.wasmtime_pooling_allocation_config_max_memories_per_module_set(pool, 1)
        ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pool, MEMORY_MAX)
        ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, instances * MAX_TABLES)
        ffi.wasmtime_pooling_allocation_config_max_tables_per_module_set(pool, MAX_TABLES)
        ffi.wasmtime_pooling_allocation_config_table_elements_set(pool, TABLE_ELEMENTS_LIMIT)
        ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, KEEP_RESIDENT)
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(pool)


def _linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.allow_shadowing = True
    i32 = wasmtime.ValType.i32()
    linker.define_func(
        WASI,
        "poll_oneoff",
        wasmtime.FuncType([i32, i32, i32, i32], [i32]),
        wasm_poll.poll_oneoff,
        access_caller=True,
    )
    nn.define(linker)
    return linker


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
