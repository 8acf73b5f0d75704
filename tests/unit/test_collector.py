"""The gateway's startup freeze: what startup made is out of the collector's sight, and the
garbage it left is freed first rather than kept forever."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from faasbox.gateway.collector import freeze_what_startup_made


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # give the test process its collector back


@pytest.mark.usefixtures("unfrozen")
def test_startup_objects_are_frozen_and_its_garbage_is_freed() -> None:
    kept = _Node()
    cycle = _Node()
    cycle.other = _Node()
    cycle.other.other = cycle  # garbage only a collection frees
    gone = weakref.ref(cycle)
    del cycle

    freeze_what_startup_made()

    assert gone() is None
    assert gc.get_freeze_count() > 0
    # A full collection no longer scans what startup made: it is not in any generation.
    assert not any(o is kept for o in gc.get_objects())
    assert kept.other is None
