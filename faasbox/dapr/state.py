"""The state stores behind Dapr's state API: one seam (`StateStore`), one SQL implementation of
Dapr's semantics (`SqlStateStore`), and a dialect per database (sqlite_store, postgres_store).

Semantics, as Dapr's state conformance tests check them:
- every write gives the item a new etag (an opaque UUID);
- a write or delete carrying an etag succeeds only if it is the item's current one (else
  `ETagMismatch`; an etag that cannot be one of ours is `ETagInvalid`);
- `first-write` without an etag only creates: the key must be free;
- `ttl_s` expires the item that many seconds after the write; -1 (or none) keeps it forever;
- a bulk save and a transaction are all or nothing.
Every condition is checked in the statement that writes (`UPDATE ... WHERE etag = ?`), so two
writers holding the same etag cannot both win: no lost update, on either database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from faasbox.dapr.errors import ETagInvalid, ETagMismatch

FIRST_WRITE = "first-write"
LAST_WRITE = "last-write"
# Expired rows are invisible at once; they are deleted this often, by a write.
PURGE_INTERVAL_S = 60.0
CAPABILITIES = ["ETAG", "TRANSACTIONAL", "TTL"]


@dataclass(frozen=True)
class SetRequest:
    key: str
    value: bytes
    etag: str | None = None
    first_write: bool = False
    ttl_s: int | None = None  # None or -1: never expires


@dataclass(frozen=True)
class DeleteRequest:
    key: str
    etag: str | None = None
    first_write: bool = False


Operation = SetRequest | DeleteRequest


@dataclass(frozen=True)
class Item:
    key: str
    value: bytes
    etag: str
    expires_at: float | None  # seconds since the epoch


class StateStore(Protocol):
    """What Dapr's state API needs of a store. Blocking calls: the APIs run them in threads."""

    name: str
    kind: str  # the component's spec.type

    def get(self, key: str) -> Item | None: ...

    def bulk_get(self, keys: Sequence[str]) -> dict[str, Item]: ...

    def transact(self, operations: Sequence[Operation]) -> None:
        """Apply every operation or none (a bulk save is a transaction of sets)."""

    def scan(self, prefix: str, limit: int) -> list[Item]:
        """The live items whose keys start with `prefix`, at most `limit`."""

    def close(self) -> None: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def new_etag() -> str:
    return str(uuid.uuid4())


def check_etag(etag: str) -> None:
    try:
        uuid.UUID(etag)
    except ValueError:
        raise ETagInvalid(f"{etag!r} is not an etag this store issued") from None


def expiry(ttl_s: int | None, now: float) -> float | None:
    if ttl_s is None or ttl_s < 0:
        return None
    return now + ttl_s


class SqlStateStore:
    """Dapr's state semantics over one table (key, value, etag, expires_at), in SQL both
    SQLite and PostgreSQL run; a subclass supplies transactions and the placeholder."""

    kind = ""
    placeholder = "?"

    def __init__(self, name: str, table: str) -> None:
        self.name = name
        self.table = table
        self._last_purge = 0.0

    def _transaction(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _sql(self, statement: str) -> str:
        return statement.format(t=self.table).replace("?", self.placeholder)

    def get(self, key: str) -> Item | None:
        return self.bulk_get([key]).get(key)

    def bulk_get(self, keys: Sequence[str]) -> dict[str, Item]:
        if not keys:
            return {}
        now = time.time()
        marks = ", ".join("?" for _ in keys)
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT key, value, etag, expires_at FROM {t} WHERE key IN ("
                    + marks
                    + ") AND (expires_at IS NULL OR expires_at > ?)"
                ),
                [*keys, now],
            )
            rows = cur.fetchall()
        return {row[0]: Item(row[0], bytes(row[1]), row[2], row[3]) for row in rows}

    def scan(self, prefix: str, limit: int) -> list[Item]:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT key, value, etag, expires_at FROM {t} WHERE key LIKE ? ESCAPE '\\' "
                    "AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?"
                ),
                [pattern, time.time(), limit],
            )
            rows = cur.fetchall()
        return [Item(row[0], bytes(row[1]), row[2], row[3]) for row in rows]

    def transact(self, operations: Sequence[Operation]) -> None:
        now = time.time()
        with self._transaction() as cur:
            for op in operations:
                if isinstance(op, SetRequest):
                    self._set(cur, op, now)
                else:
                    self._delete(cur, op, now)
            if now - self._last_purge > PURGE_INTERVAL_S:
                self._last_purge = now
                cur.execute(self._sql("DELETE FROM {t} WHERE expires_at <= ?"), [now])

    def _set(self, cur: Cursor, req: SetRequest, now: float) -> None:
        etag, expires = new_etag(), expiry(req.ttl_s, now)
        if req.etag:
            check_etag(req.etag)
            cur.execute(
                self._sql(
                    "UPDATE {t} SET value = ?, etag = ?, expires_at = ? WHERE key = ? "
                    "AND etag = ? AND (expires_at IS NULL OR expires_at > ?)"
                ),
                [req.value, etag, expires, req.key, req.etag, now],
            )
            if cur.rowcount != 1:
                raise ETagMismatch(f"key {req.key!r} does not have etag {req.etag!r}")
            return
        upsert = (
            "INSERT INTO {t} (key, value, etag, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, etag = excluded.etag, "
            "expires_at = excluded.expires_at"
        )
        if req.first_write:  # only over a row that has expired
            upsert += " WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= ?"
            cur.execute(self._sql(upsert), [req.key, req.value, etag, expires, now])
            if cur.rowcount != 1:
                raise ETagMismatch(f"first-write: key {req.key!r} already exists")
            return
        cur.execute(self._sql(upsert), [req.key, req.value, etag, expires])

    def _delete(self, cur: Cursor, req: DeleteRequest, now: float) -> None:
        if req.etag:
            check_etag(req.etag)
            cur.execute(
                self._sql(
                    "DELETE FROM {t} WHERE key = ? AND etag = ? "
                    "AND (expires_at IS NULL OR expires_at > ?)"
                ),
                [req.key, req.etag, now],
            )
            if cur.rowcount != 1:
                raise ETagMismatch(f"key {req.key!r} does not have etag {req.etag!r}")
            return
        cur.execute(self._sql("DELETE FROM {t} WHERE key = ?"), [req.key])


def iter_keys(items: dict[str, Item], keys: Sequence[str]) -> Iterator[tuple[str, Item | None]]:
    """`keys` in the order asked, each with its item or None."""
    for key in keys:
        yield key, items.get(key)
