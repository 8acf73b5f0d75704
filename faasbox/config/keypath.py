"""Key paths: where a value sits in serverless.yml, written as people write them."""

from __future__ import annotations

# Keys are whatever YAML gave (usually str; int or bool for keys like ``200:`` or ``on:``);
# list positions are ints.
KeyPath = tuple[object, ...]


def format_path(path: KeyPath) -> str:
    """``("functions", "hello", "events", 0, "http")`` -> ``functions.hello.events[0].http``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
