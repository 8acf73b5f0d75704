"""The gateways (`faasbox serve` processes) that share one database, and which are gone.

Each gateway leases the queue's messages it runs under its own instance id (a fresh one per
process), so no gateway releases another live one's leases: a message runs on one gateway at a
time. A gateway's row says where it runs (host and boot, pid and the pid's start time); a
gateway on this machine whose process is no longer there is gone for sure, and its leased
messages run again at once. One on another machine cannot be checked from here: its messages
run again when their leases end (timeout + a margin), at least once, as Lambda promises.
"""

from __future__ import annotations

import functools
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started TEXT NOT NULL,
    started_at REAL NOT NULL
);
"""


class Connection(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


@dataclass(frozen=True)
class Instance:
    id: str
    host: str  # hostname and boot id: a reboot ends every process of the machine
    pid: int
    pid_started: str  # the process's start time (ticks since boot): a reused pid differs


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _host() -> str:
    return f"{socket.gethostname()}/{_read('/proc/sys/kernel/random/boot_id')}"


def _pid_started(pid: int) -> str:
    """Field 22 of /proc/PID/stat ('' when there is no such process)."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


@functools.cache
def this_instance() -> Instance:
    pid = os.getpid()
    return Instance(str(uuid.uuid4()), _host(), pid, _pid_started(pid))


def register(db: Connection, instance: Instance) -> None:
    db.execute(
        "INSERT INTO gateways (id, host, pid, pid_started, started_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (instance.id, instance.host, instance.pid, instance.pid_started, time.time()),
    )


def gone(db: Connection, owners: Iterable[str]) -> list[str]:
    """Of these instance ids, those known to be gone: on this machine, without their
    process. An id without a row is not judged (its leases end on their own)."""
    here = _host()
    found = []
    for owner in owners:
        row = db.execute(
            "SELECT host, pid, pid_started FROM gateways WHERE id = ?", (owner,)
        ).fetchone()
        if row is not None and row[0] == here and _pid_started(int(row[1])) != row[2]:
            found.append(owner)
    return found


def forget(db: Connection, owner: str) -> None:
    db.execute("DELETE FROM gateways WHERE id = ?", (owner,))
