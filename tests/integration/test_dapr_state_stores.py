"""The state store contract, modelled on Dapr's state conformance tests, run against both
stores faasbox ships: SQLite (the embedded default) and a real PostgreSQL server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from faasbox.dapr.errors import ETagInvalid, ETagMismatch
from faasbox.dapr.postgres_store import PostgresStateStore
from faasbox.dapr.sqlite_store import SqliteStateStore
from faasbox.dapr.state import DeleteRequest, SetRequest, StateStore
from faasbox.dapr.state_api import StateApi
from faasbox.storage import Database
from tests.postgres import PostgresServer
from tests.support import wait_until


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made: StateStore
    if request.param == "sqlite":
        made = SqliteStateStore("statestore", tmp_path / "state.sqlite3")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        made = PostgresStateStore("statestore", server.database("state_contract"))
    yield made
    made.close()


def put(store: StateStore, key: str, value: bytes, **options: object) -> str:
    store.transact([SetRequest(key, value, **options)])  # type: ignore[arg-type]
    item = store.get(key)
    assert item is not None
    return item.etag


def test_set_get_delete(store: StateStore) -> None:
    assert store.get("missing") is None
    put(store, "k", b'{"n": 1}')
    item = store.get("k")
    assert item is not None and item.value == b'{"n": 1}'
    put(store, "k", b"\x00binary\xff")
    assert store.get("k").value == b"\x00binary\xff"  # type: ignore[union-attr]
    store.transact([DeleteRequest("k")])
    assert store.get("k") is None
    store.transact([DeleteRequest("never-there")])  # deleting nothing is no error


def test_bulk_set_and_get(store: StateStore) -> None:
    store.transact([SetRequest(f"b{i}", str(i).encode()) for i in range(20)])
    found = store.bulk_get([f"b{i}" for i in range(25)])
    assert sorted(found) == sorted(f"b{i}" for i in range(20))
    assert found["b7"].value == b"7"
    store.transact([DeleteRequest(f"b{i}") for i in range(10)])
    assert sorted(store.bulk_get([f"b{i}" for i in range(20)])) == sorted(
        f"b{i}" for i in range(10, 20)
    )


def test_every_write_gives_a_new_etag_and_stale_ones_fail(store: StateStore) -> None:
    first = put(store, "e", b"1")
    second = put(store, "e", b"2", etag=first)
    assert second != first
    with pytest.raises(ETagMismatch):
        store.transact([SetRequest("e", b"3", etag=first)])  # stale
    with pytest.raises(ETagMismatch):
        store.transact([DeleteRequest("e", etag=first)])
    with pytest.raises(ETagMismatch):  # an etag for a key that does not exist
        store.transact([SetRequest("nobody", b"x", etag=str(uuid.uuid4()))])
    with pytest.raises(ETagInvalid):
        store.transact([SetRequest("e", b"3", etag="not-an-etag")])
    with pytest.raises(ETagInvalid):
        store.transact([DeleteRequest("e", etag="not-an-etag")])
    assert store.get("e").value == b"2"  # type: ignore[union-attr]
    store.transact([DeleteRequest("e", etag=second)])
    assert store.get("e") is None


def test_first_write_only_creates(store: StateStore) -> None:
    etag = put(store, "fw", b"1", first_write=True)
    with pytest.raises(ETagMismatch):
        store.transact([SetRequest("fw", b"2", first_write=True)])
    # With the current etag, a first-write updates.
    put(store, "fw", b"3", first_write=True, etag=etag)
    assert store.get("fw").value == b"3"  # type: ignore[union-attr]
    with pytest.raises(ETagMismatch):
        store.transact([SetRequest("fw", b"4", first_write=True, etag=etag)])


def test_ttl_expires_and_minus_one_clears(store: StateStore) -> None:
    put(store, "t", b"soon", ttl_s=1)
    put(store, "keep", b"kept", ttl_s=1)
    item = store.get("t")
    assert item is not None and item.expires_at is not None
    assert item.expires_at <= time.time() + 1.5
    put(store, "keep", b"kept", ttl_s=-1)  # -1: the expiry is cleared
    assert store.get("keep").expires_at is None  # type: ignore[union-attr]
    wait_until(lambda: store.get("t") is None, 10, "the 1 s TTL to expire the item")
    assert store.get("keep") is not None
    # An expired key is free again for a first-write.
    put(store, "t", b"again", first_write=True)


def test_transaction_is_all_or_nothing(store: StateStore) -> None:
    etag = put(store, "a", b"1")
    put(store, "gone", b"x")
    with pytest.raises(ETagMismatch):
        store.transact(
            [
                SetRequest("a", b"2", etag=etag),
                DeleteRequest("gone"),
                SetRequest("new", b"n"),
                SetRequest("a", b"3", etag=etag),  # stale by now: the whole lot fails
            ]
        )
    assert store.get("a").value == b"1"  # type: ignore[union-attr]
    assert store.get("gone") is not None
    assert store.get("new") is None
    store.transact(
        [SetRequest("a", b"2", etag=etag), DeleteRequest("gone"), SetRequest("new", b"n")]
    )
    assert store.get("a").value == b"2"  # type: ignore[union-attr]
    assert store.get("gone") is None
    assert store.get("new").value == b"n"  # type: ignore[union-attr]


def test_concurrent_etag_writers_lose_no_update(store: StateStore) -> None:
    """8 clients each add 1 to a counter 25 times by read-modify-write with etags, retrying
    when their etag has gone stale: the counter ends at exactly 200."""
    put(store, "counter", b"0")
    writers, increments = 8, 25
    conflicts = [0] * writers
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for _ in range(increments):
                while True:
                    item = store.get("counter")
                    assert item is not None
                    try:
                        store.transact(
                            [
                                SetRequest(
                                    "counter", str(int(item.value) + 1).encode(), etag=item.etag
                                )
                            ]
                        )
                        break
                    except ETagMismatch:
                        conflicts[index] += 1
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not failures
    assert int(store.get("counter").value) == writers * increments  # type: ignore[union-attr]


def test_the_default_store_is_the_servers_postgresql_database(
    tmp_path: Path, database: Database
) -> None:
    """`statestore` without a component file: in `serve --database postgresql://...`'s
    database, so two gateways (data dirs of their own) see one state; else SQLite."""
    first = StateApi("app", [], tmp_path / "a", database)
    second = StateApi("app", [], tmp_path / "b", database)
    try:
        kind = "state.postgresql" if database.shared else "state.sqlite"
        assert first.stores["statestore"].kind == kind
        put(first.stores["statestore"], "app||order", b"42")
        seen = second.stores["statestore"].get("app||order")
        if database.shared:
            assert seen is not None and seen.value == b"42"
        else:  # each data dir has its own file
            assert seen is None
    finally:
        first.close()
        second.close()
