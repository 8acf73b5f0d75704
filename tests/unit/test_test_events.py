"""The console's saved test events (faasbox/registry/test_events.py), on both backends."""

from __future__ import annotations

import pytest

from faasbox.errors import InvalidParameterValue, ResourceNotFound
from faasbox.registry.test_events import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_FUNCTION,
    TestEventStore,
    parsed_event,
)
from faasbox.storage import Database


def test_save_list_replace_delete_and_survive_a_reopen(database: Database) -> None:
    db = database
    store = TestEventStore(db)
    store.save("f", "b-event", {"n": 1})
    store.save("f", "a.event", [1, 2])
    store.save("g", "a.event", "other function")
    store.save("f", "b-event", {"n": 2})  # replaced, not added
    assert [(e.name, e.event) for e in store.list("f")] == [
        ("a.event", [1, 2]),
        ("b-event", {"n": 2}),
    ]
    store.close()

    store = TestEventStore(db)  # what was saved lasts
    assert [e.name for e in store.list("f")] == ["a.event", "b-event"]
    store.delete("f", "a.event")
    with pytest.raises(ResourceNotFound, match=r"no saved test event named 'a\.event'"):
        store.delete("f", "a.event")
    store.forget("f")
    assert store.list("f") == []
    assert [e.event for e in store.list("g")] == ["other function"]


def test_bounds_and_bad_input(database: Database) -> None:
    store = TestEventStore(database)
    for bad in ["", "x" * 26, "with space", "slash/es"]:
        with pytest.raises(InvalidParameterValue, match="Invalid test event name"):
            store.save("f", bad, {})
    for n in range(MAX_EVENTS_PER_FUNCTION):
        store.save("f", f"e{n}", {})
    with pytest.raises(InvalidParameterValue, match="already has 10 saved test events"):
        store.save("f", "one-more", {})
    store.save("f", "e0", {"still": "replaceable"})
    with pytest.raises(InvalidParameterValue, match="not valid JSON"):
        parsed_event(b'{"a": ')
    with pytest.raises(InvalidParameterValue, match="at most 262144 bytes"):
        parsed_event(b'"' + b"x" * MAX_EVENT_BYTES + b'"')
    assert parsed_event(b'{"a": [1]}') == {"a": [1]}
