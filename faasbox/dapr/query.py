"""Dapr's state query API (`/v1.0-alpha1/state/{store}/query`) over the JSON values of one
app's keys: `filter` (EQ, IN, AND, OR on dotted fields), `sort` (key, ASC/DESC) and `page`
(limit, token). The same for both stores: the app's live items are read (at most MAX_SCANNED)
and the query is evaluated here, so it is meant for the modest data sets an app keeps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from faasbox.dapr.errors import DaprError, malformed
from faasbox.dapr.state import Item

MAX_SCANNED = 100_000
MISSING = object()


@dataclass(frozen=True)
class Query:
    filter: dict[str, Any]
    sort: list[tuple[str, bool]]  # (field, descending)
    limit: int | None
    offset: int


def parse_query(body: object) -> Query:
    if not isinstance(body, dict):
        raise malformed('expected a query {"filter": ..., "sort": [...], "page": {...}}')
    filter_ = body.get("filter") or {}
    _check_filter(filter_)
    sort = []
    for entry in body.get("sort") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise malformed('each sort entry is {"key": "field", "order": "ASC"|"DESC"}')
        order = str(entry.get("order", "ASC")).upper()
        if order not in ("ASC", "DESC"):
            raise malformed(f"sort order must be ASC or DESC, got {entry.get('order')!r}")
        sort.append((entry["key"], order == "DESC"))
    page = body.get("page") or {}
    if not isinstance(page, dict):
        raise malformed('page is {"limit": N, "token": "..."}')
    limit = page.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise malformed(f"page.limit must be a number of results, got {limit!r}")
    token = page.get("token") or "0"
    if not str(token).isdigit():
        raise malformed(f"page.token {token!r} is not one this API returned")
    return Query(filter_, sort, limit or None, int(token))


def _check_filter(node: object) -> None:
    if node == {}:
        return
    if not isinstance(node, dict) or len(node) != 1:
        raise malformed(
            "a filter is one of {EQ: {field: value}}, {IN: {field: [...]}}, "
            "{AND: [filters]}, {OR: [filters]}"
        )
    op, arg = next(iter(node.items()))
    if op in ("AND", "OR"):
        if not isinstance(arg, list) or len(arg) < 2:
            raise malformed(f"{op} takes a list of at least two filters")
        for child in arg:
            _check_filter(child)
    elif op in ("EQ", "IN"):
        if not isinstance(arg, dict) or len(arg) != 1:
            raise malformed(f"{op} takes one field: {{{op}: {{field: value}}}}")
        if op == "IN" and not isinstance(next(iter(arg.values())), list):
            raise malformed("IN takes a list of values: {IN: {field: [a, b]}}")
    else:
        raise malformed(f"unknown filter operation {op!r} (EQ, IN, AND, OR)")


def _field(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _matches(value: Any, node: dict[str, Any]) -> bool:
    if not node:
        return True
    op, arg = next(iter(node.items()))
    if op == "AND":
        return all(_matches(value, child) for child in arg)
    if op == "OR":
        return any(_matches(value, child) for child in arg)
    path, wanted = next(iter(arg.items()))
    found = _field(value, path)
    return found in wanted if op == "IN" else found == wanted


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing fields last; numbers, then strings, then anything else by its JSON."""
    if value is MISSING:
        return (3, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, json.dumps(value, sort_keys=True))


def run_query(query: Query, items: list[tuple[str, Item]]) -> dict[str, Any]:
    """`items`: (the key as the app knows it, its item). Dapr's response body."""
    if len(items) > MAX_SCANNED:
        raise DaprError(
            500,
            "ERR_STATE_QUERY",
            f"the query would scan {len(items)} items, over faasbox's {MAX_SCANNED}",
        )
    rows = []
    for key, item in items:
        try:
            value = json.loads(item.value)
        except ValueError:
            continue  # not JSON: no field can match
        if _matches(value, query.filter):
            rows.append((key, value, item.etag))
    for field, descending in reversed(query.sort):  # stable: the first key sorts last

        def by_field(row: tuple[str, Any, str], path: str = field) -> tuple[int, Any]:
            return _sort_key(_field(row[1], path))

        def missing(row: tuple[str, Any, str], path: str = field) -> bool:
            return _field(row[1], path) is MISSING

        rows.sort(key=by_field, reverse=descending)
        rows.sort(key=missing)  # stable: items without the field last, either order
    end = None if query.limit is None else query.offset + query.limit
    page = rows[query.offset : end]
    body: dict[str, Any] = {
        "results": [{"key": key, "data": value, "etag": etag} for key, value, etag in page]
    }
    if end is not None and end < len(rows):
        body["token"] = str(end)
    return body
