"""WASI's `poll_oneoff` (sleep), bounded by the invocation's deadline.

Epoch interruption stops WebAssembly code, but not a host call: a guest in wasmtime's own
`poll_oneoff` (what `sleep()`, `nanosleep()` and Rust's `thread::sleep` become) would hold
its thread for as long as it asked. faasbox replaces that one import. In its sandbox nothing
can make a guest wait but a clock (stdin is in memory, stdout and stderr are files, preopened
directories hold regular files, there are no sockets), so:

- a subscription to a file descriptor is ready at once (the event reports no error and
  `nbytes` 0, as for any regular file at its end);
- clock subscriptions sleep until the earliest one fires, but never past the invocation's
  deadline: the sleep is cut there and the guest is interrupted by the epoch as soon as it
  runs again (the executor also reports a timeout when the run ends after its deadline).

Relative timeouts on any clock and absolute ones on the realtime clock are supported; an
absolute monotonic timeout (whose origin only wasmtime knows) gets ENOTSUP.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime

# wasi_snapshot_preview1: errno, event types, clocks and flags.
ERRNO_SUCCESS = 0
ERRNO_FAULT = 21
ERRNO_INVAL = 28
ERRNO_NOTSUP = 58
EVENTTYPE_CLOCK = 0
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
SUBSCRIPTION_CLOCK_ABSTIME = 1
SUBSCRIPTION_SIZE = 48
EVENT_SIZE = 32
MAX_SUBSCRIPTIONS = 4096

_SUBSCRIPTION = struct.Struct(
    "<QB7xIxxxxQQH6x"
)  # userdata, tag, clock id, timeout, precision, flags
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, error, type, nbytes, flags

assert _SUBSCRIPTION.size == SUBSCRIPTION_SIZE and _EVENT.size == EVENT_SIZE


class Deadline(threading.local):
    """The running invocation's deadline on this thread (time.monotonic), and what wakes a
    sleeping guest early (the executor closing)."""

    at: float = float("inf")
    wake: threading.Event | None = None


current = Deadline()


def poll_oneoff(
    caller: wasmtime.Caller, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int
) -> int:
    memory = caller.get("memory")
    if memory is None or not hasattr(memory, "read"):
        return ERRNO_FAULT
    mem: wasmtime.Memory = memory  # type: ignore[assignment]
    if count == 0 or count > MAX_SUBSCRIPTIONS:
        return ERRNO_INVAL
    size = mem.data_len(caller)
    end_in = in_ptr + count * SUBSCRIPTION_SIZE
    end_out = out_ptr + count * EVENT_SIZE
    if in_ptr < 0 or out_ptr < 0 or end_in > size or end_out > size or nevents_ptr + 4 > size:
        return ERRNO_FAULT
    raw = bytes(mem.read(caller, in_ptr, end_in))
    subscriptions = [_SUBSCRIPTION.unpack_from(raw, i * SUBSCRIPTION_SIZE) for i in range(count)]

    ready: list[bytes] = []
    fires: list[tuple[float, int]] = []  # (monotonic time it fires, userdata)
    now_mono = time.monotonic()
    for userdata, tag, clock_id, timeout, _precision, flags in subscriptions:
        if tag != EVENTTYPE_CLOCK:  # fd_read / fd_write: always ready here
            ready.append(_EVENT.pack(userdata, ERRNO_SUCCESS, tag, 0, 0))
            continue
        if flags & SUBSCRIPTION_CLOCK_ABSTIME:
            if clock_id != CLOCK_REALTIME:
                return ERRNO_NOTSUP
            wait_s = (timeout - time.time_ns()) / 1e9
        else:
            wait_s = timeout / 1e9
        fires.append((now_mono + max(0.0, wait_s), userdata))

    if not ready and fires:
        first = min(at for at, _ in fires)
        until = min(first, current.at)
        remaining = until - time.monotonic()
        if remaining > 0:
            if current.wake is not None:
                current.wake.wait(remaining)
            else:
                time.sleep(remaining)
        now_mono = time.monotonic()
        ready = [
            _EVENT.pack(userdata, ERRNO_SUCCESS, EVENTTYPE_CLOCK, 0, 0)
            for at, userdata in fires
            if at <= now_mono
        ]
        if not ready:  # cut short by the deadline: the guest is interrupted when it resumes
            ready = [_EVENT.pack(fires[0][1], ERRNO_SUCCESS, EVENTTYPE_CLOCK, 0, 0)]
    else:
        ready += [
            _EVENT.pack(userdata, ERRNO_SUCCESS, EVENTTYPE_CLOCK, 0, 0)
            for at, userdata in fires
            if at <= now_mono
        ]
    mem.write(caller, b"".join(ready), out_ptr)
    mem.write(caller, struct.pack("<I", len(ready)), nevents_ptr)
    return ERRNO_SUCCESS
