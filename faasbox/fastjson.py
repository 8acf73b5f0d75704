"""`json.dumps` and `json.loads` through the stdlib's own C encoder and scanner, made once.

`json.dumps(v)` builds a C encoder per call (and `json.dumps(v, separators=...)` a whole
`JSONEncoder` too), and `json.loads(b)` guesses the bytes' encoding and walks two regexes
around the C scanner: about 1-2 µs of Python per call, more than the C work on a small
document. These give the same text and the same values: `dumps` is the encoder `json.dumps`
would make, and `loads` takes the C scanner's answer only when it consumed the whole UTF-8
text; anything else (leading or trailing whitespace, another encoding, an error) is
`json.loads`'s, message and all.

Stdlib only: the workers import it (faasbox.execution.process.protocol).
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
from collections.abc import Callable
from typing import Any


def _encoder(item_separator: str, key_separator: str) -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without _json
        encoder = json.JSONEncoder(separators=(item_separator, key_separator))
        return encoder.encode
    # No circular check: callers encode what they built or what JSON decoded (`encoder` below
    # checks, for values of anyone's).
    encode = make(
        None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None,
        key_separator, item_separator, False, False, True,
    )  # fmt: skip
    return lambda value: "".join(encode(value, 0))


def encoder(
    default: Callable[[Any], Any] | None = None, separators: tuple[str, str] | None = None
) -> Callable[[Any], str]:
    """`json.JSONEncoder(default=..., separators=...).encode`, the same text and errors, for
    values that may be anyone's (a handler's result): circular references are checked, with
    fresh markers each call as `iterencode` gives them (a failed call leaves its markers
    behind), and `default` is called for what JSON has no type for."""
    slow = json.JSONEncoder(default=default, separators=separators)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return slow.encode
    escape = json.encoder.encode_basestring_ascii
    default_ = slow.default
    key_separator, item_separator = slow.key_separator, slow.item_separator

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return escape(value)
        c_encode = make(
            {}, default_, escape, None, key_separator, item_separator, False, False, True
        )
        return "".join(c_encode(value, 0))

    return encode


dumps = _encoder(", ", ": ")  # json.dumps(value)
dumps_compact = _encoder(",", ":")  # json.dumps(value, separators=(",", ":"))

_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(  # C, when built
    json.JSONDecoder()  # type: ignore[arg-type]  # typeshed types it as a class
)


def loads(data: bytes | str) -> Any:
    """`json.loads(data)`."""
    try:
        text = data if isinstance(data, str) else data.decode()
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):
        return json.loads(data)  # json.loads's own error (or a non-UTF-8 encoding it reads)
    return value if end == len(text) else json.loads(data)
