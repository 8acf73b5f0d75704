"""Running WebAssembly functions, in the server process, on threads: `runtime: wasm` (WASI
preview1 commands) and `runtime: quickjs` (JavaScript on QuickJS-NG compiled to WASI). What
differs between them is a `Guest` (faasbox.execution.wasm.guest), which the runtime registry
names; everything here is the same for both.

Where and how: each invocation is a new wasmtime Store and instance of the function's module,
compiled once per code version (`faasbox.execution.wasm.engine`), run on a thread of the
function's own thread pool. wasmtime releases the GIL while WebAssembly runs, so instances
run in parallel on the machine's cores while the event loop keeps serving. Never in a zygote
or any forked process: wasmtime's WASI runs on tokio threads, and a process forked after a
WASI call hangs at its first stdio operation.

The program's world is what its configuration gives it and nothing else: stdin (the payload,
or the HTTP request body), stdout and stderr (captured, `faasbox.execution.wasm.output`), argv
and environment variables, and the preopened folders of `wasm.dirs`. No network, no other
file, none of the server's environment. Besides WASI, the program may import wasi-nn
(`faasbox.execution.wasm.nn`): inference on the host, on the models of `wasm.models`.

Limits: `memorySize` caps linear memory (memory.grow fails past it); `timeout` is enforced
by epoch interruption (the store traps within a tick, 5 ms, of its deadline; a sleeping
program is woken at the deadline, `faasbox.execution.wasm.poll`); `wasm.fuel` adds an
instruction budget. A trap, an exit or a limit ends only its own store.

Concurrency is as for process functions: `reservedConcurrency`, else the global cap
(`max_workers`), instances at once per function, then a bounded wait and 429; and each running
instance holds a slot of the invoker's global budget, shared with the worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import _ffi as wasmtime_ffi

from faasbox.execution import runtimes
from faasbox.execution.admission import Budget
from faasbox.execution.api import Invocation, Outcome, WorkerInfo
from faasbox.execution.logs import LOG_CAP
from faasbox.execution.settings import RuntimeSettings
from faasbox.execution.wasm import nn
from faasbox.execution.wasm import poll as wasm_poll
from faasbox.execution.wasm.engine import TABLE_ELEMENTS_LIMIT, Engines, InvalidModule, Program
from faasbox.execution.wasm.guest import Guest, InvalidGuest
from faasbox.execution.wasm.options import WasmConfigError, WasmOptions, inside
from faasbox.execution.wasm.outcome import MIB, Run, fault, frames, reason, timed_out
from faasbox.execution.wasm.output import Capture
from faasbox.execution.wasm.slots import Slots
from faasbox.lambda_.limits import MAX_TIMEOUT_S, SYNC_PAYLOAD_LIMIT
from faasbox.registry.models import DeployedFunction

log = logging.getLogger("faasbox.execution")

CLOSE_TIMEOUT_S = 5.0  # at shutdown, for interrupted instances to return
COMPILE_GRACE_S = 120.0  # more waiting for an invocation whose module is not compiled yet


class WasmExecutor:
    kind = "wasm"

    def __init__(self, settings: RuntimeSettings, budget: Budget) -> None:
        self.settings = settings
        self.budget = budget
        self.run_dir = settings.data_dir / "run"
        self.dirs_root = settings.data_dir / "wasm-dirs"
        self._slots: dict[tuple[str, str], Slots] = {}
        self._retired: list[Slots] = []
        self._running: set[Capture] = set()
        self._closing = threading.Event()
        self._rw_lock = threading.Lock()
        self._rw_ready: set[Path] = set()
        self._guests: dict[str, Guest] = {}
        self.models = nn.Models()
        self._model_paths: dict[tuple[Path, str], Path] = {}
        # Last: its ticker thread starts at once and calls _check_outputs.
        self.engines = Engines(
            settings.data_dir / "wasm-cache", settings.max_workers, on_tick=self._check_outputs
        )

    # -- the invoker's side ----------------------------------------------------------------

    def start(self) -> None:
        return  # modules compile on first use (or load from the on-disk cache)

    async def invoke(self, invocation: Invocation) -> Outcome:
        fn, payload, request_id = invocation.fn, invocation.payload, invocation.request_id
        http_event = invocation.http_event
        slots = self._slots_for(fn)
        await slots.acquire()  # raises TooManyRequests
        try:
            job = asyncio.get_running_loop().run_in_executor(
                slots.threads, self._invoke_blocking, fn, payload, request_id, http_event
            )
        except BaseException:
            slots.release()
            raise
        # The slot is the thread's until it returns, even if this caller stops waiting.
        job.add_done_callback(lambda _: slots.release())
        # The thread ends within a tick of the deadline; the grace covers a busy machine, and
        # a module's first compilation (QuickJS's engine takes seconds, more on a busy one).
        grace = fn.config.timeout + 5.0 + self.settings.init_timeout_s
        if not self._compiled(fn):
            grace += COMPILE_GRACE_S
        try:
            async with asyncio.timeout(grace):  # not wait_for: on 3.11 it can eat a cancel
                return await asyncio.shield(job)
        except TimeoutError:
            return timed_out(fn, request_id, grace * 1000, "")
        except Exception as e:  # a fault of faasbox's, not of the function: still a result
            log.exception("wasm invocation %s of %s failed", request_id, fn.name)
            return fault(request_id, "Runtime.Unknown", f"{type(e).__name__}: {e}")

    def _slots_for(self, fn: DeployedFunction) -> Slots:
        key = (fn.name, fn.version)
        slots = self._slots.get(key)
        if slots is not None and slots.fn.revision_id == fn.revision_id:
            return slots
        if slots is not None:  # redeployed: the old version's threads end after their work
            self._retire(slots)
        slots = self._slots[key] = Slots(fn, self.settings, self.budget)
        self._reap()
        return slots

    def provision(self, fn: DeployedFunction) -> None:
        return  # an instance is made per request: nothing to keep warm

    def drain(self, name: str, keep: DeployedFunction | None = None) -> None:
        for (fn_name, version), slots in list(self._slots.items()):
            if fn_name != name:
                continue
            if keep is None or (
                version == keep.version and slots.fn.revision_id != keep.revision_id
            ):
                del self._slots[(fn_name, version)]
                self._retire(slots)

    def retire(self, name: str, version: str) -> None:
        slots = self._slots.pop((name, version), None)
        if slots is not None:
            self._retire(slots)

    def stop_idle(self, name: str) -> int:
        return 0  # nothing idle: instances end with their invocation

    def workers(self, name: str | None = None) -> list[WorkerInfo]:
        """A running instance is a busy worker without a process of its own."""
        return [
            WorkerInfo(
                kind=self.kind,
                function=slots.fn.name,
                version=slots.fn.version,
                busy=True,
                pid=None,
                started_by="wasm",
                invocations=1,
                idle_seconds=0.0,
            )
            for slots in (*self._slots.values(), *self._retired)
            if name is None or slots.fn.name == name
            for _ in range(slots.active)
        ]

    def isolation_missing(self) -> list[str]:
        return []  # each instance is wasmtime's sandbox, in this process, on any machine

    def stats(self) -> dict[str, Any]:
        running = sum(s.active for s in (*self._slots.values(), *self._retired))
        return {
            "workers": running,
            "busy": running,
            "waiting": sum(len(s.queue) for s in self._slots.values()),
            "functions": len(self._slots),
        }

    def _reap(self) -> None:
        idle_since = time.monotonic() - self.settings.idle_timeout_s
        for key, slots in list(self._slots.items()):
            if slots.active == 0 and not slots.queue and slots.last_used < idle_since:
                del self._slots[key]
                self._retire(slots)

    def _retire(self, slots: Slots) -> None:
        slots.retire()
        self._retired = [s for s in self._retired if s.active] + [slots]
        live = {s.fn.code_dir for s in self._slots.values() if s is not slots}
        if slots.fn.code_dir not in live:
            with contextlib.suppress(InvalidGuest):
                module = self._guest(slots.fn).module(slots.fn)
                if module.is_relative_to(slots.fn.code_dir.resolve()):  # not a runtime's own
                    self.engines.forget(module)
            self.models.forget(slots.fn.code_dir)

    async def close(self) -> None:
        """Stop every running instance (they trap at once) and the engines' ticker."""
        self._closing.set()
        self.engines.interrupt_all(self.engines.deadline_ticks(MAX_TIMEOUT_S) + 1)
        pools = [s.threads for s in (*self._slots.values(), *self._retired)]
        self._slots.clear()

        def join() -> None:
            for pool in pools:
                pool.shutdown(wait=True)

        joined = threading.Thread(target=join, name="faasbox-wasm-close", daemon=True)
        joined.start()
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while joined.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if joined.is_alive():
            log.warning("wasm instances still running after %.0f s at shutdown", CLOSE_TIMEOUT_S)
        self.engines.close()

    # -- one invocation, on a thread ---------------------------------------------------------

    def _invoke_blocking(
        self, fn: DeployedFunction, payload: bytes, request_id: str, http_event: bool
    ) -> Outcome:
        try:
            guest = self._guest(fn)
            options = WasmOptions.of(fn.config)
            program, loaded = self.engines.program(
                guest.module(fn), options.fuel is not None, guest.entry
            )
            preopens = self._preopens(fn, options)
            named, models_ms = self._models_of(fn, options)
        except (WasmConfigError, nn.ModelError) as e:
            return fault(request_id, "Runtime.WasmConfigError", str(e))
        except (InvalidModule, InvalidGuest) as e:
            return fault(request_id, "Runtime.InvalidEntrypoint", str(e))
        # INIT: compiling (or deserializing) the module and loading its models, when done.
        init_ms: float | None = (program.load_ms if loaded else 0.0) + models_ms
        if not loaded and not models_ms:
            init_ms = None

        given = guest.input(fn, payload, http_event)
        env = [
            ("AWS_LAMBDA_FUNCTION_NAME", fn.name),
            ("AWS_LAMBDA_FUNCTION_VERSION", fn.version),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(fn.config.memory_size)),
            ("AWS_REGION", fn.config.region),
            ("AWS_REQUEST_ID", request_id),
            *fn.config.environment.items(),
            *options.env,
            *given.env,
        ]
        # Later definitions win (a program's getenv() would find the first of duplicates).
        session = nn.Session(named=named, threads=nn.threads_for(self._concurrency(fn)))
        run = self._run(
            program,
            fn,
            guest,
            options,
            given.stdin,
            list(dict(env).items()),
            [*given.preopens, *preopens],
            session,
        )
        return guest.outcome(fn, request_id, options, run, http_event, init_ms)

    def _compiled(self, fn: DeployedFunction) -> bool:
        try:
            module = self._guest(fn).module(fn)
        except InvalidGuest:
            return True  # nothing to compile: the invocation fails at once
        return self.engines.loaded(module, WasmOptions.fuel_of(fn.config))

    def _guest(self, fn: DeployedFunction) -> Guest:
        """The runtime's guest (a WASI command, or QuickJS for JavaScript), made once."""
        where = runtimes.of(fn.config.runtime).wasm_guest
        guest = self._guests.get(where)
        if guest is None:
            module, _, name = where.partition(":")
            guest = self._guests[where] = getattr(importlib.import_module(module), name)()
        return guest

    def _run(
        self,
        program: Program,
        fn: DeployedFunction,
        guest: Guest,
        options: WasmOptions,
        stdin: bytes,
        env: list[tuple[str, str]],
        preopens: list[tuple[Path, str, bool]],
        session: nn.Session,
    ) -> Run:
        """Instantiate and run `_start`; the timeout counts from here (loading the module is
        the INIT phase, reported as Init Duration)."""
        run = Run()
        stdout = Capture("stdout", SYNC_PAYLOAD_LIMIT, self.run_dir)
        stderr = Capture("stderr", LOG_CAP, self.run_dir)
        store = wasmtime.Store(program.engine)
        instance: wasmtime.Instance | None = None
        try:
            store.set_limits(
                memory_size=fn.config.memory_size * MIB,
                table_elements=TABLE_ELEMENTS_LIMIT,
                memories=1,
            )
            if options.fuel is not None:
                store.set_fuel(options.fuel)
            wasi = wasmtime.WasiConfig()
            wasi.argv = guest.argv(fn, options)
            wasi.env = [(k, v) for k, v in env if "\0" not in k + v]
            stdin_vec = wasmtime_ffi.bytes_to_capi(stdin)  # owned by the config from here
            wasmtime_ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(stdin_vec))
            wasi.stdout_file = stdout.path
            wasi.stderr_file = stderr.path
            for host, seen_as, writable in preopens:
                wasi.preopen_dir(str(host), seen_as, writable)
            store.set_wasi(wasi)
            self._running.update((stdout, stderr))
            t0 = time.perf_counter()
            deadline = time.monotonic() + fn.config.timeout
            wasm_poll.current.at = deadline
            wasm_poll.current.wake = self._closing
            session.deadline = deadline
            nn.bind(session)
            store.set_epoch_deadline(self.engines.deadline_ticks(fn.config.timeout))
            try:
                instance = program.pre.instantiate(store)
                guest.start(instance, store)
                run.exit_code = 0
            except wasmtime.ExitTrap as e:
                run.exit_code = e.code
            except wasmtime.Trap as e:
                code = e.trap_code
                run.timed_out = code == wasmtime.TrapCode.INTERRUPT
                run.out_of_fuel = code == wasmtime.TrapCode.OUT_OF_FUEL
                run.trap = reason(e.message)
                run.trap_frames = tuple(frames(e))
            except wasmtime.WasmtimeError as e:
                if instance is None:
                    run.instantiate_error = str(e).strip()
                else:
                    run.trap = reason(str(e))
            run.duration_ms = (time.perf_counter() - t0) * 1000
            if time.monotonic() > deadline and run.exit_code is not None:
                run.timed_out = True  # finished after a sleep cut at the deadline
            if instance is not None:
                memory = instance.exports(store).get("memory")
                if isinstance(memory, wasmtime.Memory):
                    run.memory_bytes = memory.data_len(store)
        finally:
            wasm_poll.current.at = float("inf")
            nn.unbind()
            self._running.difference_update((stdout, stderr))
            store.close()  # closes wasmtime's descriptors of the captures
            try:
                run.stdout, run.stdout_over = stdout.read(), stdout.truncated
                run.stderr, run.stderr_over = stderr.read(), stderr.truncated
                if session.notes:  # wasi-nn's reasons for the errnos it returned
                    run.stderr += "".join(f"{n}\n" for n in session.notes).encode()
            finally:
                stdout.close()
                stderr.close()
        return run

    def _check_outputs(self) -> None:
        for capture in list(self._running):
            with contextlib.suppress(OSError):
                capture.check()
        nn.check_deadlines()

    def _models_of(
        self, fn: DeployedFunction, options: WasmOptions
    ) -> tuple[dict[str, nn.Graph], float]:
        """The `wasm.models` of `fn`, loaded (once per code version) before the instance
        starts, so load_by_name costs nothing; the first load is part of INIT."""
        concurrency = self._concurrency(fn)
        named: dict[str, nn.Graph] = {}
        loading_ms = 0.0
        for name, rel in options.models:
            path = self._model_paths.get((fn.code_dir, rel))
            if path is None:
                try:
                    path = inside(fn.code_dir, rel)
                except WasmConfigError:
                    raise WasmConfigError(
                        f"wasm.models: {name}: {rel!r} leads outside the function's code"
                    ) from None
                if not path.is_file():
                    raise WasmConfigError(f"wasm.models: {name}: {rel!r} is not a file of the code")
                self._model_paths[(fn.code_dir, rel)] = path
            named[name], ms = self.models.get(name, path, concurrency)
            loading_ms += ms
        return named, loading_ms

    def _concurrency(self, fn: DeployedFunction) -> int:
        slots = self._slots.get((fn.name, fn.version))
        return slots.limit if slots is not None and slots.limit > 0 else 1

    def _preopens(self, fn: DeployedFunction, options: WasmOptions) -> list[tuple[Path, str, bool]]:
        found = []
        for entry in options.dirs:
            host = inside(fn.code_dir, entry.path)
            if entry.writable:
                host = self._writable_copy(fn, entry.path, host)
            elif not host.is_dir():
                raise WasmConfigError(f"wasm.dirs: {entry.path!r} is not a folder of the code")
            found.append((host, entry.guest, entry.writable))
        return found

    def _writable_copy(self, fn: DeployedFunction, rel: str, source: Path) -> Path:
        """A `mode: rw` folder: the function's own copy, per code version, made on first use
        (empty when the code has no such folder); the stored code is never written."""
        target = self.dirs_root / fn.name / fn.code_sha256[:16] / rel
        with self._rw_lock:
            if target not in self._rw_ready:
                if not target.is_dir():
                    if source.is_dir():
                        shutil.copytree(source, target, symlinks=False, dirs_exist_ok=True)
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                self._rw_ready.add(target)
        return target
