"""API keys: generated once, stored as hashes, removed with the service's list."""

from __future__ import annotations

from pathlib import Path

from faasbox.registry.api_keys import ApiKeyStore


def test_keys_are_generated_once_hashed_and_dropped_with_the_list(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "registry.sqlite3")
    created = store.ensure("svc", ["first", {"name": "fixed", "value": "given-value-123"}])
    assert [k.name for k in created] == ["first"]
    first = created[0].value
    assert store.valid("svc", first) and store.valid("svc", "given-value-123")
    assert not store.valid("other", first)
    assert first.encode() not in (tmp_path / "registry.sqlite3").read_bytes()
    assert store.ensure("svc", ["first", {"name": "fixed", "value": "given-value-123"}]) == []
    store.ensure("svc", ["fixed"])  # "first" left serverless.yml
    assert not store.valid("svc", first)
    assert store.valid("svc", "given-value-123")
