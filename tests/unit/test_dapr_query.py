"""The state query API's evaluation (faasbox.dapr.query), without a store."""

from __future__ import annotations

import json

import pytest

from faasbox.dapr.errors import DaprError
from faasbox.dapr.query import parse_query, run_query
from faasbox.dapr.state import Item

ITEMS = [
    (key, Item(key, json.dumps(value).encode(), f"etag-{key}", None))
    for key, value in [
        ("a", {"n": 3, "tag": "x"}),
        ("b", {"n": 1, "tag": "y"}),
        ("c", {"tag": "x"}),
        ("d", {"n": 2, "tag": "x", "deep": {"v": True}}),
    ]
]
ITEMS.append(("raw", Item("raw", b"\xff not json", "e", None)))


def keys(body: dict[str, object]) -> list[str]:
    return [r["key"] for r in run_query(parse_query(body), ITEMS)["results"]]  # type: ignore[index]


def test_filters_sorts_and_pages() -> None:
    assert keys({}) == ["a", "b", "c", "d"]  # a value that is not JSON matches nothing
    assert keys({"filter": {"EQ": {"tag": "x"}}}) == ["a", "c", "d"]
    assert keys({"filter": {"EQ": {"deep.v": True}}}) == ["d"]
    assert keys({"filter": {"IN": {"n": [1, 2]}}}) == ["b", "d"]
    both = {"AND": [{"EQ": {"tag": "x"}}, {"OR": [{"EQ": {"n": 3}}, {"EQ": {"n": 2}}]}]}
    assert keys({"filter": both}) == ["a", "d"]
    # Items without the sort field come last, in either order.
    assert keys({"sort": [{"key": "n"}]}) == ["b", "d", "a", "c"]
    assert keys({"sort": [{"key": "n", "order": "DESC"}]}) == ["a", "d", "b", "c"]
    first = run_query(parse_query({"sort": [{"key": "n"}], "page": {"limit": 3}}), ITEMS)
    assert first["token"] == "3"
    rest = {"sort": [{"key": "n"}], "page": {"limit": 3, "token": first["token"]}}
    assert keys(rest) == ["c"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"filter": {"LIKE": {"a": "b"}}},
        {"filter": {"EQ": {"a": 1, "b": 2}}},
        {"filter": {"IN": {"a": 1}}},
        {"filter": {"AND": [{"EQ": {"a": 1}}]}},
        {"sort": [{"key": "n", "order": "UP"}]},
        {"page": {"limit": -1}},
        {"page": {"token": "not-ours"}},
    ],
)
def test_bad_queries_are_malformed_requests(body: object) -> None:
    with pytest.raises(DaprError) as e:
        parse_query(body)
    assert (e.value.status, e.value.code) == (400, "ERR_MALFORMED_REQUEST")
