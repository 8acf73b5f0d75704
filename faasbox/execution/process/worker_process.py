"""The server's handle on one worker process: start it, send it invocations, capture its logs.

A worker gets a control socket (frames, faasbox.execution.process.protocol) and a log pipe on
its fd 1 and 2. The server reads the log pipe continuously, so a chatty function never blocks
on a full pipe, and drains it when a result arrives: every write the worker made before sending
its result is in the pipe by then, so the log of an invocation is complete."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faasbox import fastjson
from faasbox.execution import runtimes
from faasbox.execution.api import StreamSink
from faasbox.execution.logs import LOG_CAP
from faasbox.execution.platform_env import platform_environment
from faasbox.execution.process import exec_worker, protocol
from faasbox.execution.process.launcher import Launcher
from faasbox.execution.process.limits import MemoryLimit
from faasbox.execution.process.python import search_path
from faasbox.lambda_ import faults, log_format
from faasbox.registry.models import DeployedFunction

READ_CHUNK = 1 << 16
EXIT_GRACE_S = 1.0  # how long a worker that closed its socket has to exit by itself


class Channel(asyncio.Protocol):
    """The server's end of a worker's control socket: whole frames, one waiter at a time.

    A plain Protocol rather than asyncio streams: a warm invocation is one write and one
    callback, which matters when the whole round trip is a few tens of microseconds.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, dict[str, Any], bytes]] | None = None
        self._lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def send_parts(self, parts: tuple[bytes, bytes]) -> None:
        """One frame in two pieces (protocol.encode_parts): one vectored write, no copy of
        the large second piece."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.writelines(parts)

    def data_received(self, data: bytes) -> None:
        if self._buffer:
            self._buffer += data
            self._deliver()
            return
        # A whole frame in one read (a warm result usually is): taken from `data` itself,
        # not copied into the buffer and out of it again (a 100 KB image's body).
        used = self._take(data)
        if used < len(data):
            self._buffer += data[used:] if used else data

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("the worker closed its socket")
        self.fail(self._lost)

    def fail(self, error: BaseException) -> None:
        """The frame awaited now will not come: its waiter raises `error`."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    def _deliver(self) -> None:
        used = self._take(self._buffer)
        if used:
            del self._buffer[:used]

    def _take(self, buffer: bytes | bytearray) -> int:
        """Hand the waiter the frame at the start of `buffer`, if it is whole; the bytes of
        it used (0: none yet)."""
        waiter = self._waiter
        if waiter is None or waiter.done() or len(buffer) < protocol.PREFIX.size:
            return 0
        try:
            kind, head_len, body_len = protocol.decode_header(buffer)
        except protocol.ProtocolError as e:
            waiter.set_exception(e)
            return 0
        start = protocol.PREFIX.size
        end = start + head_len + body_len
        if len(buffer) < end:
            return 0
        with memoryview(buffer) as view:  # one copy of each part, none of the whole
            head = bytes(view[start : start + head_len])
            body = bytes(view[start + head_len : end])
        try:
            # Decoded here: json.loads of bytes would first guess their encoding (UTF-8,
            # always, in frames).
            header = fastjson.loads(head.decode()) if head_len else {}
        except ValueError as e:
            waiter.set_exception(e)
            return end
        waiter.set_result((kind, header, body))
        return end

    async def next_frame(self) -> tuple[int, dict[str, Any], bytes]:
        self._waiter = asyncio.get_running_loop().create_future()
        self._deliver()
        if self._lost is not None and not self._waiter.done():
            raise self._lost
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class WorkerDied(Exception):
    def __init__(self, returncode: int) -> None:
        super().__init__(f"worker exited with {returncode}")
        self.returncode = returncode


@dataclass
class InitOutcome:
    init_ms: float
    error: dict[str, Any] | None  # the INIT error object, when the handler could not load


TASK_ROOT = "/var/task"  # where a jailed worker sees its code, as on Lambda
OPT = "/opt"  # where a jailed worker sees its layers, as on Lambda


def lambda_environment(
    fn: DeployedFunction, log_stream: str, tmp_dir: Path, task_root: str, opt: str = OPT
) -> dict[str, str]:
    """The variables Lambda sets, then the function's own; nothing of the server's."""
    cfg = fn.config
    start = runtimes.of(cfg.runtime).worker
    bin_dir = (start.bin_dir() if start and start.bin_dir else None) or Path(sys.executable).parent
    runtime_dir = (start.runtime_dir if start else None) or Path(__file__).parent
    env = {**platform_environment(), **cfg.environment}
    env.update(
        {
            # Lambda's, its layers' programs last.
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:{opt}/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "TMPDIR": str(tmp_dir),
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": str(runtime_dir),
            "_HANDLER": cfg.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{cfg.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": cfg.name,
            "AWS_LAMBDA_FUNCTION_VERSION": fn.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": cfg.region,
            "AWS_DEFAULT_REGION": cfg.region,
            **log_format.runtime_env(cfg.logging_config),
        }
    )
    # Lambda's library path ends with the code's lib/ and the layers' (unless the function
    # sets its own); read by programs the function starts and by a spawned runtime.
    env.setdefault("LD_LIBRARY_PATH", f"{task_root}:{task_root}/lib:{opt}/lib")
    return env


class WorkerProcess:
    def __init__(self, fn: DeployedFunction, run_dir: Path, launcher: Launcher) -> None:
        self.fn = fn
        self.id = secrets.token_hex(8)
        self.log_stream = (
            time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{fn.version}]{secrets.token_hex(16)}"
        )
        self._run_dir = run_dir
        self.tmp_dir = run_dir / f"tmp-{self.id}"
        self._launcher = launcher
        self.started_by = ""  # "base" / "preloaded" (zygote forks) or "spawn"
        self.memory: MemoryLimit | None = None
        self.killed_for_memory = False
        self.reported_memory_kb = 0  # the worker's own peak RSS, from its last result
        self.ready_info: dict[str, Any] = {}  # what INIT cost inside the worker
        # INIT's outcome until the invocation it is reported with (a worker started while a
        # warm one served its request waits in the pool with it: EnvironmentLane._scale_up).
        self.fresh_init: InitOutcome | None = None
        self.last_used = time.monotonic()
        self.invocations = 0
        self._pid = -1
        self._channel: Channel | None = None
        self._log_fd = -1
        self._status_fd = -1
        self._log = bytearray()
        self._log_dropped = 0
        self._pidfd = -1
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = self._loop.create_future()
        # The running invocation's deadline (the loop's clock; None between invocations) and
        # the one timer that watches it (see _watch_deadline).
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    async def start(self, init_timeout: float) -> InitOutcome:
        """Spawn the worker and run INIT; the outcome says whether the handler loaded."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            process = await self._launcher.start_process(self.fn)
        except FileNotFoundError as e:  # the runtime's program is not installed here
            self.exited.set_result(-1)
            return InitOutcome(
                (time.perf_counter() - started) * 1000, faults.invalid_entrypoint(str(e))
            )
        self.id = process.worker_id
        jail: dict[str, Any] | None = None
        if process.jailed:
            # Its own tmpfs /tmp, in its own mount namespace: nothing on the host's disk.
            self.tmp_dir = Path("/tmp")
            task_root, opt = TASK_ROOT, OPT
            settings = self._launcher.jail
            assert settings is not None
            uid = self._launcher.identity(self.fn)
            jail = {
                # Absolute and without symlinks: the worker finds it under the host's root.
                "code": os.path.realpath(self.fn.code_dir),
                "opt": os.path.realpath(self.fn.opt_dir) if self.fn.opt_dir else None,
                "uid": uid,
                "gid": uid,
                "tmp_mb": self.fn.config.ephemeral_storage,
                "network": self.fn.config.network,
                "pids_cgroup": settings.pids_cgroup,
            }
        else:
            self.tmp_dir = self._run_dir / f"tmp-{self.id}"
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            task_root = os.path.realpath(self.fn.code_dir)
            # No /opt of its own without a jail: its layers' folder stands in for it.
            opt = os.path.realpath(self.fn.opt_dir) if self.fn.opt_dir else ""
        env = lambda_environment(self.fn, self.log_stream, self.tmp_dir, task_root, opt or OPT)
        start = runtimes.of(self.fn.config.runtime).worker
        self._pid, self.started_by = process.pid, process.started_by
        self._status_fd = process.status_fd
        os.set_blocking(process.status_fd, False)
        self.memory = process.memory
        self.memory.set_limit(self.fn.config.memory_size)
        os.set_blocking(process.log_fd, False)
        self._log_fd = process.log_fd
        loop.add_reader(process.log_fd, self._read_log)
        self._pidfd = os.pidfd_open(self._pid)
        loop.add_reader(self._pidfd, self._on_exit)
        _, self._channel = await loop.create_unix_connection(Channel, sock=process.sock)
        boot: dict[str, Any] = {
            "handler": self.fn.config.handler,
            "task_root": task_root,
            "opt": opt or OPT,
            # The layers' module folders (sys.path, NODE_PATH) after the code, as Lambda's.
            "paths": start.layer_paths(opt) if opt and start and start.layer_paths else [],
            # Lambda's import path, without the server's packages (python.search_path); the
            # worker puts `paths` after its first entry, the task root.
            "sys_path": search_path.function_sys_path(task_root, [], self._launcher.runtime_dirs),
            "env": env,
            "tmp_dir": "" if jail else str(self.tmp_dir),
            "jail": jail,
            "function_name": self.fn.config.name,
            "version": self.fn.version,
            "arn": self.fn.arn,
            "memory_mb": self.fn.config.memory_size,
            "log_group": self.fn.log_group,
            "log_stream": self.log_stream,
        }
        if process.exec:
            # The exec worker reads the first BOOT, enters the jail and execs the runtime's
            # program, which reads the second (faasbox.execution.process.exec_worker).
            boot.update(worker=exec_worker.NAME, exec=list(process.exec))
        elif start is not None and start.module is not None:
            boot["worker"] = start.module  # what a forked spare becomes
        frame = protocol.encode(protocol.BOOT, boot)
        self._channel.send(frame + frame if process.exec else frame)
        try:
            return await self._init(started, init_timeout)
        finally:
            self._launcher.after_init(process)

    async def _init(self, started: float, init_timeout: float) -> InitOutcome:
        """Wait for READY (or INIT's error) after BOOT."""
        try:
            async with asyncio.timeout(init_timeout):
                kind, header, _ = await self._read_frame()
        except TimeoutError:
            self.kill()
            await self.exited
            return InitOutcome(
                (time.perf_counter() - started) * 1000, faults.init_timeout(init_timeout)
            )
        except WorkerDied as died:
            elapsed_ms = (time.perf_counter() - started) * 1000
            return InitOutcome(elapsed_ms, faults.exit_error(died.returncode))
        init_ms = (time.perf_counter() - started) * 1000
        self.reported_memory_kb = int(header.get("max_memory_kb", 0))
        self.ready_info = {k: header.get(k) for k in ("boot_ms", "import_ms")}
        if kind == protocol.READY:
            self._launcher.note_imports(self.fn, header.get("packages", []))
            return InitOutcome(init_ms, None)
        return InitOutcome(init_ms, header.get("error") or {})

    async def invoke(
        self,
        header: dict[str, Any],
        body: bytes,
        stream: StreamSink | None = None,
        beside: bytes = b"",
    ) -> tuple[dict[str, Any], bytes]:
        """Send one invocation; raises WorkerDied if the worker exits before answering.
        With `stream`, a streamed response's RESULT_CHUNKs go to it as they arrive.
        `beside`: more of the frame's body, after `body` (an HTTP event's body beside it)."""
        assert self._channel is not None
        self.invocations += 1
        if beside:
            self._channel.send_parts(protocol.encode_parts(protocol.INVOKE, header, body, beside))
        else:
            self._channel.send(protocol.encode(protocol.INVOKE, header, body))
        kind, result_header, result = await self._read_frame()
        while kind == protocol.RESULT_CHUNK:
            if stream is not None:
                await stream(result)
            kind, result_header, result = await self._read_frame()
        self.last_used = time.monotonic()
        return result_header, result

    async def invoke_within(
        self, header: dict[str, Any], body: bytes, timeout: float, beside: bytes = b""
    ) -> tuple[dict[str, Any], bytes]:
        """`invoke` (no stream), raising TimeoutError once `timeout` seconds have passed,
        as `asyncio.timeout` would, without its objects and timer per invocation: every
        await here is a frame of the channel, which the deadline's timer fails."""
        self._watch_deadline(self._loop.time() + timeout)
        try:
            return await self.invoke(header, body, None, beside)
        finally:
            self._deadline = None

    def _watch_deadline(self, deadline: float) -> None:
        # One timer per worker, re-armed only when it fires early or a sooner deadline
        # comes: a warm worker's invocations set a float, and the timer fires once per
        # timeout at most, finds the deadline moved (or none) and re-arms (or stops).
        self._deadline = deadline
        if self._timer is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self._loop.call_at(deadline, self._on_deadline), deadline

    def _on_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return  # between invocations: the next one arms it again
        if self._loop.time() < deadline:
            self._watch_deadline(deadline)
        elif self._channel is not None:
            self._channel.fail(TimeoutError())

    async def _read_frame(self) -> tuple[int, dict[str, Any], bytes]:
        assert self._channel is not None
        try:
            return await self._channel.next_frame()
        except ConnectionError:
            # The worker closed its socket: it is exiting. Wait a moment for its own status
            # (a jail's init reports it), then make sure.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EXIT_GRACE_S):
                    await asyncio.shield(self.exited)
            self.kill()
            raise WorkerDied(await self.exited) from None
        except (protocol.ProtocolError, ValueError):
            self.kill()  # a worker speaking garbage is as good as dead
            raise WorkerDied(await self.exited) from None

    def _read_log(self) -> None:
        try:
            while True:
                chunk = os.read(self._log_fd, READ_CHUNK)
                if not chunk:
                    asyncio.get_running_loop().remove_reader(self._log_fd)
                    return
                room = LOG_CAP - len(self._log)
                if room > 0:
                    self._log += chunk[:room]
                self._log_dropped += max(0, len(chunk) - max(room, 0))
        except BlockingIOError:
            return
        except OSError:
            return

    def take_log(self, drain: bool = True) -> str:
        """The output since the last call, complete up to the last result received.
        `drain` False: the worker said the pipe held nothing unread when it sent that result
        (`output_pending`), so what the reader took is all of it."""
        if drain and self._log_fd >= 0:
            self._read_log()
        text = self._log.decode("utf-8", "replace")
        if self._log_dropped:
            text += f"\n[faasbox: {self._log_dropped} more bytes of output were dropped]\n"
        self._log = bytearray()
        self._log_dropped = 0
        return text

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        try:
            _, status = os.waitpid(self._pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped elsewhere: the status is lost, not the worker
            returncode = -signal.SIGKILL
        # A jail's init exits 0 after writing the worker's own status; killed (a timeout, a
        # memory kill, a stop) it writes nothing and its own status is the worker's.
        with contextlib.suppress(OSError):
            reported = os.read(self._status_fd, 4)
            if len(reported) == 4:
                returncode = os.waitstatus_to_exitcode(int.from_bytes(reported, "big"))
        if self._log_fd >= 0:
            self._read_log()
        if not self.exited.done():
            self.exited.set_result(returncode)

    def check_memory(self) -> None:
        """Watchdog tick, for machines without a memory cgroup."""
        if self.memory is not None and self.alive and self.memory.check():
            self.killed_for_memory = True

    def peak_memory_mb(self) -> int:
        if self.memory is None:
            return 0
        return -(-self.memory.peak_bytes() // (1 << 20))

    def kill(self) -> None:
        if self.memory is not None and self.alive:
            self.memory.check()  # note the memory in use, for REPORT, before it is gone
        if self._pid > 0 and self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)

    async def stop(self) -> None:
        """SHUTDOWN: close the socket (the worker exits), kill it if it lingers, clean up."""
        if self._channel is not None:
            self._channel.close()
        if self.alive:
            try:
                async with asyncio.timeout(0.5):
                    await asyncio.shield(self.exited)
            except TimeoutError:
                self.kill()
                await self.exited
        self.cleanup()

    def cleanup(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._channel is not None:
            self._channel.close()
        if self._log_fd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._log_fd)
            os.close(self._log_fd)
            self._log_fd = -1
        if self._status_fd >= 0:
            os.close(self._status_fd)
            self._status_fd = -1
        if self.memory is not None:
            self.memory.release()
        if self.tmp_dir != Path("/tmp"):
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
