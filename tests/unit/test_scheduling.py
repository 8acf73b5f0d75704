"""`serve --scheduling`: the policy is the calling thread's, and what it starts inherits it."""

from __future__ import annotations

import threading

from faasbox.execution import scheduling


def _in_a_thread(policy: scheduling.Policy) -> dict[str, object]:
    """Apply `policy` on a thread of its own (the test runner's threads keep theirs)."""
    seen: dict[str, object] = {}

    def run() -> None:
        seen["applied"] = scheduling.apply(policy)
        seen["current"] = scheduling.current()
        child = threading.Thread(target=lambda: seen.update(child=scheduling.current()))
        child.start()
        child.join()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seen


def test_batch_is_applied_and_inherited_by_what_the_thread_starts() -> None:
    assert _in_a_thread("batch") == {"applied": True, "current": "batch", "child": "batch"}


def test_normal_is_linuxs_default_policy() -> None:
    assert _in_a_thread("normal") == {"applied": True, "current": "normal", "child": "normal"}
