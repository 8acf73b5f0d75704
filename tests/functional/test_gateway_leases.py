"""The durable queue's leases with several gateways on one database (faasbox.events.store,
faasbox.events.gateways): a gateway never releases a live one's leases; the leases of one
whose process is gone run again at once; one stopping gives back its own."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faasbox.events import gateways
from faasbox.events.store import EventStore, function_queue

QUEUE = function_queue("f")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[EventStore, EventStore]]:
    path = tmp_path / "registry.sqlite3"
    pair = (EventStore(path), EventStore(path))
    yield pair
    for store in pair:
        store.close()


def a_gone_instance() -> gateways.Instance:
    """The identity of a process that ran on this machine and has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)  # fmt: skip
    started = gateways._pid_started(proc.pid)
    assert started
    proc.communicate(b"")
    return dataclasses.replace(gateways.this_instance(), id="gone", pid=proc.pid,
                               pid_started=started)  # fmt: skip


def put(store: EventStore, *ids: str) -> None:
    for message_id in ids:
        store.put(message_id, QUEUE, b"{}", source="lambda-api")


def test_a_live_gateways_leases_are_never_released_by_another(
    stores: tuple[EventStore, EventStore],
) -> None:
    a, b = stores
    live = gateways.this_instance()
    a.register(live)
    put(a, "m1", "m2")
    taken = a.take(QUEUE, 10, 300, time.time(), live.id)
    assert [m.id for m in taken] == ["m1", "m2"]
    # B starts (and reclaims, as at each RECLAIM_S): nothing of the live A's comes back.
    assert b.release_gone("function:", unowned=True) == 0
    assert b.take(QUEUE, 10, 300, time.time(), "b") == []


def test_a_gone_gateways_leases_run_again_at_once(stores: tuple[EventStore, EventStore]) -> None:
    a, b = stores
    gone = a_gone_instance()
    a.register(gone)
    put(a, "m1", "m2", "m3")
    assert len(a.take(QUEUE, 2, 300, time.time(), gone.id)) == 2
    assert b.release_gone("function:") == 2
    again = b.take(QUEUE, 10, 300, time.time(), "b")
    assert sorted(m.id for m in again) == ["m1", "m2", "m3"]
    assert {m.id: m.receive_count for m in again} == {"m1": 2, "m2": 2, "m3": 1}
    # Its row is forgotten with its leases.
    assert b.release_gone("function:") == 0


def test_a_stopping_gateway_gives_back_only_its_own(stores: tuple[EventStore, EventStore]) -> None:
    a, b = stores
    mine, other = gateways.this_instance(), dataclasses.replace(gateways.this_instance(), id="o")
    put(a, "m1", "m2")
    a.take(QUEUE, 1, 300, time.time(), mine.id)
    b.take(QUEUE, 1, 300, time.time(), other.id)
    assert a.release_owned("function:", mine) == 1
    assert [m.id for m in b.take(QUEUE, 10, 300, time.time(), other.id)] == ["m1"]
