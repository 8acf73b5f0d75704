"""faasbox.fastjson gives what the stdlib's json gives: the same text out, the same values in,
and for what json refuses, the same error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faasbox import fastjson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_dumps_writes_what_json_dumps_writes(value: Any) -> None:
    assert fastjson.dumps(value) == json.dumps(value)
    assert fastjson.dumps_compact(value) == json.dumps(value, separators=(",", ":"))


@settings(max_examples=300, deadline=None)
@given(value=values, indent=st.sampled_from([None, 1]), ascii_only=st.booleans())
def test_loads_reads_what_json_loads_reads(
    value: Any, indent: int | None, ascii_only: bool
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    for data in (text, text.encode(), text.encode("utf-16"), f" {text}\n".encode()):
        assert outcome(fastjson.loads, data) == outcome(json.loads, data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b'{"a": 1} x',
        b'{"a": 1}{"b": 2}',
        b"\xef\xbb\xbf{}",  # a UTF-8 BOM, which json.loads reads from bytes
        "\ufeff{}",  # and refuses in a str
        b'{"a": "\xff"}',
        b'"\xed\xa0\x80"',  # an encoded surrogate: json.loads passes it
        b'{"a": NaN, "b": -Infinity}',
        b'{"a": 1,}',
        b"[1, 2",
        '{"é": "✓"}'.encode("utf-16-le"),
        '{"é": "✓"}'.encode("utf-32"),
        b'{"a": "tab\tinside"}',
    ],
)
def test_odd_input_gets_json_loads_answer(data: bytes | str) -> None:
    assert outcome(fastjson.loads, data) == outcome(json.loads, data)


def outcome(loads: Any, data: bytes | str) -> tuple[str, Any]:
    try:
        return "value", json.dumps(loads(data))  # NaN != NaN: compare the text
    except ValueError as e:
        return type(e).__name__, str(e)
