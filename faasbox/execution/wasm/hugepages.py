"""Backing a fresh instance's linear memory with transparent huge pages (Linux).

Each invocation is a new instance, so its linear memory is new, zero pages mapped lazily:
a program that touches 3 MB takes about 750 page faults of 4 KB, each a trip into the
kernel that zeroes one page (about 15 % of examples/wasm-classify's CPU). With 2 MB pages
the same memory is 2 faults, or none.

After instantiation, and before the program runs:

- `MADV_HUGEPAGE` over the memory's reservation, up to the store's memory limit: wasmtime
  reserves a 32-bit memory's whole address range up front on 64-bit hosts and grows it in
  place, so the advice stays with the memory as it grows; a fault in an aligned 2 MB range
  that is wholly accessible then takes a huge page (the machine's THP mode is `madvise`:
  without the advice, never).
- `MADV_COLLAPSE` over the memory the module declares as its initial size (whole 2 MB
  ranges of it, at most `COLLAPSE_MAX`): those ranges already hold 4 KB pages (the data
  segments, written at instantiation), which a fault can no longer turn into a huge page;
  collapsing them puts them in huge pages at once, for the cost of zeroing the rest of the
  range. A module's initial memory is what it says it needs (wasm-ld's `--initial-memory`);
  the cap bounds the zeroing for a module that declares much more than it touches.

The data segments must be written into the memory's own anonymous pages for this: the
engines are made with `memory_init_cow` off (a copy-on-write mapping of the module's
image would split the first range; copying the segments costs QuickJS about 0.04 ms).

Advice only: a kernel without THP, or with no huge page free, refuses or ignores it, and
the memory is what it was, 4 KB pages. Nothing is shared between instances: the pages are
the instance's own and go with its store.
"""

from __future__ import annotations

import ctypes
import sys

import wasmtime

HUGE_PAGE = 2 << 20
COLLAPSE_MAX = 8 << 20
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25  # Linux 6.1
MEMORY32_MAX = 4 << 30  # the most a 32-bit memory can grow to, inside its reservation

_libc: ctypes.CDLL | None = None
if sys.platform == "linux":
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    _libc.madvise.restype = ctypes.c_int


def advise(instance: wasmtime.Instance, store: wasmtime.Store, limit: int) -> None:
    """Huge pages for `instance`'s exported memory, `limit` its store's memory limit."""
    if _libc is None:
        return
    memory = instance.exports(store).get("memory")
    if not isinstance(memory, wasmtime.Memory) or memory.type(store).is_64:
        return
    base = ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value
    if not base:
        return
    _libc.madvise(base, min(limit, MEMORY32_MAX), MADV_HUGEPAGE)
    start = -(-base // HUGE_PAGE) * HUGE_PAGE  # whole 2 MB ranges only
    end = (base + min(memory.data_len(store), COLLAPSE_MAX)) // HUGE_PAGE * HUGE_PAGE
    if end > start:
        _libc.madvise(start, end - start, MADV_COLLAPSE)
