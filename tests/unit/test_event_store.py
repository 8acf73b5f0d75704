"""The durable queue (faasbox/events/store.py) on SQLite and on PostgreSQL: messages commit,
lease, come back when a lease runs out, move to a dead-letter queue, and two consumers on
their own connections (two gateways) never take the same message."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from faasbox.events.invoke_config import AsyncConfig, InvokeConfigStore
from faasbox.events.sqs import QueueService
from faasbox.events.store import EventStore
from faasbox.storage import Database, connect
from tests.postgres import PostgresServer


@pytest.fixture
def store(database: Database) -> Iterator[EventStore]:
    s = EventStore(database)
    yield s
    s.close()


def test_a_message_is_leased_then_taken_again_when_its_lease_runs_out(store: EventStore) -> None:
    store.put("m1", "sqs:q", b"\x00body\xff", source="sqs", attributes={"a": 1}, now=100.0)
    store.put("m2", "sqs:q", b"second", source="sqs", now=101.0)
    assert store.ready_queues("sqs:", 102.0) == ["sqs:q"]
    first = store.take("sqs:q", 10, lease_s=30.0, now=102.0)
    assert [m.id for m in first] == ["m1", "m2"]
    assert first[0].body == b"\x00body\xff" and first[0].attributes == {"a": 1}
    assert first[0].receive_count == 1 and first[0].receipt and len(first[0].receipt) == 48
    assert store.take("sqs:q", 10, lease_s=30.0, now=110.0) == []  # leased
    assert store.queue_counts("sqs:q", 110.0) == {"visible": 0, "in_flight": 2, "delayed": 0}
    assert store.next_visible("sqs:") == 132.0

    again = store.take("sqs:q", 1, lease_s=30.0, now=133.0)  # the lease ran out: oldest first
    assert [m.id for m in again] == ["m1"] and again[0].receive_count == 2
    assert again[0].receipt != first[0].receipt
    assert store.delete_received("sqs:q", [first[0].receipt or "", again[0].receipt or ""]) == [
        False,
        True,
    ]
    assert store.get("m1") is None and store.get("m2") is not None


def test_redrive_retry_finish_and_prune(store: EventStore) -> None:
    store.put("r1", "sqs:src", b"x", source="sqs", now=10.0)
    store.take("sqs:src", 1, lease_s=1.0, now=10.0)
    assert store.redrive("sqs:src", "sqs:dlq", max_receives=1, now=20.0) == 1
    assert [m.id for m in store.take("sqs:dlq", 5, lease_s=1.0, now=20.0)] == ["r1"]

    store.put("a1", "function:f", b"{}", source="lambda-api", now=10.0)
    store.take("function:f", 1, lease_s=60.0, now=10.0)
    store.retry("a1", visible_at=50.0, error="boom")
    assert store.take("function:f", 1, lease_s=60.0, now=49.0) == []
    (taken,) = store.take("function:f", 1, lease_s=60.0, now=50.0)
    assert taken.attempts == 1 and taken.last_error == "boom"
    store.finish("a1", "succeeded", failed_run=False, error=None, destination=None)
    assert store.counts("function:") == {"succeeded": 1}
    assert store.recent("function:", 10)[0].status()["state"] == "succeeded"
    assert store.prune("function:", older_than=float("inf")) == 1
    assert store.counts("function:") == {}


def test_two_consumers_never_take_the_same_message(database: Database) -> None:
    """Two stores (two connections, as two gateways) taking at once: every message once."""
    writer = EventStore(database)
    writer.put_many([(f"m{i:03d}", b"x", None) for i in range(200)], "sqs:shared",
                    source="sqs", now=1.0)  # fmt: skip
    consumers = [EventStore(database), EventStore(database)]
    taken: list[list[str]] = [[], []]

    def consume(i: int) -> None:
        while batch := consumers[i].take("sqs:shared", 7, lease_s=600.0, now=2.0):
            taken[i].extend(m.id for m in batch)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    everything = taken[0] + taken[1]
    assert sorted(everything) == [f"m{i:03d}" for i in range(200)]  # each exactly once
    for s in [writer, *consumers]:
        s.close()


def test_queues_and_invoke_configs_last(database: Database) -> None:
    store = EventStore(database)
    queues = QueueService(database, store)
    queues.create("orders", {"VisibilityTimeout": "45"})
    configs = InvokeConfigStore(database)
    configs.put("f", None, AsyncConfig(maximum_retry_attempts=1, last_modified=5.0))
    configs.close()
    store.close()

    store = EventStore(database)
    assert QueueService(database, store).get("orders").attributes["VisibilityTimeout"] == "45"
    again = InvokeConfigStore(database)
    found = again.get("f", "$LATEST")
    assert found is not None and found.maximum_retry_attempts == 1
    again.close()
    store.close()


def test_a_postgresql_connection_that_broke_is_opened_again(postgres: PostgresServer) -> None:
    """A restarted PostgreSQL (here: every connection to it killed) costs no error outside a
    transaction; inside one, the transaction fails whole and the connection goes on after."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.database(name)
    database = Database(postgres.url(name))

    def kill_connections() -> None:
        with psycopg.connect(postgres.dsn(name), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    try:
        store = EventStore(database)
        store.put("m1", "sqs:q", b"x", source="sqs", now=1.0)
        kill_connections()
        assert store.get("m1") is not None
        kill_connections()
        assert [m.id for m in store.take("sqs:q", 1, lease_s=5.0, now=2.0)] == ["m1"]
        store.close()

        conn = connect(database, "test")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT 1")
        kill_connections()
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT 1")
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT 2").fetchone() == (2,)
        conn.close()
    finally:
        postgres.drop(name)
