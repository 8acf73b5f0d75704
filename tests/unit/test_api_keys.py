"""API keys: generated once, stored as hashes, removed with the service's list."""

from __future__ import annotations

from faasbox.registry.api_keys import ApiKeyStore
from faasbox.storage import Database, connect


def test_keys_are_generated_once_hashed_and_dropped_with_the_list(database: Database) -> None:
    store = ApiKeyStore(database)
    created = store.ensure("svc", ["first", {"name": "fixed", "value": "given-value-123"}])
    assert [k.name for k in created] == ["first"]
    first = created[0].value
    assert store.valid("svc", first) and store.valid("svc", "given-value-123")
    assert not store.valid("other", first)
    rows = connect(database, "test").execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 2 and first not in repr(rows)
    assert store.ensure("svc", ["first", {"name": "fixed", "value": "given-value-123"}]) == []
    store.ensure("svc", ["fixed"])  # "first" left serverless.yml
    assert not store.valid("svc", first)
    assert store.valid("svc", "given-value-123")
