"""The state building block as both Dapr APIs (HTTP and gRPC) call it: stores by name, keys
namespaced as Dapr namespaces them (`appid||key`), blocking store calls moved off the event
loop, and store refusals turned into Dapr's errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from faasbox.dapr.components import (
    DEFAULT_STATE_STORE,
    STATE_POSTGRESQL,
    STATE_SQLITE,
    Component,
)
from faasbox.dapr.errors import (
    INVALID_ARGUMENT,
    DaprError,
    StateError,
    malformed,
    state_failure,
    store_not_found,
)
from faasbox.dapr.query import MAX_SCANNED, parse_query, run_query
from faasbox.dapr.state import DeleteRequest, Item, Operation, SetRequest, StateStore
from faasbox.errors import ConfigError
from faasbox.storage import Database

T = TypeVar("T")
SEPARATOR = "||"
MAX_BULK_KEYS = 10_000
MAX_OPERATIONS = 10_000  # items of one save, delete or transaction: one database transaction


def open_store(component: Component, data_dir: Path) -> StateStore:
    """The one place a component's type picks a store class."""
    table = component.metadata.get("tableName", "state")
    if component.type == STATE_SQLITE:
        # Dapr's state.sqlite takes a file (connectionString); faasbox's default lives in
        # the data dir, beside the registry.
        location = component.metadata.get("connectionString") or "dapr-state.sqlite3"
        path = Path(location.removeprefix("file:").split("?")[0])
        from faasbox.dapr.sqlite_store import SqliteStateStore

        return SqliteStateStore(
            component.name, path if path.is_absolute() else data_dir / path, table
        )
    if component.type == STATE_POSTGRESQL:
        import psycopg

        from faasbox.dapr.postgres_store import PostgresStateStore

        try:
            return PostgresStateStore(component.name, component.metadata["connectionString"], table)
        except psycopg.Error as e:
            raise ConfigError(
                component.file or component.name,
                "spec.metadata.connectionString",
                f"cannot use the PostgreSQL database of state store {component.name!r}: {e}",
            ) from None
    raise ValueError(f"not a state store: {component.type}")


def default_store(database: Database | None) -> Component:
    """`statestore` when no component file names it: in the server's PostgreSQL database when
    it has one (gateways then share state), else a SQLite file in the data dir."""
    if database is not None and database.shared:
        return Component(
            DEFAULT_STATE_STORE, STATE_POSTGRESQL, {"connectionString": database.target}
        )
    return Component(DEFAULT_STATE_STORE, STATE_SQLITE)


class StateApi:
    def __init__(
        self,
        app_id: str,
        components: Sequence[Component],
        data_dir: Path,
        database: Database | None = None,
    ) -> None:
        self.app_id = app_id
        declared = [c for c in components if c.is_state]
        if not any(c.name == DEFAULT_STATE_STORE for c in declared):
            declared.append(default_store(database))
        self.components = {c.name: c for c in declared}
        self.stores: dict[str, StateStore] = {}
        try:
            for c in declared:
                self.stores[c.name] = open_store(c, data_dir)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    def store(self, name: str) -> StateStore:
        store = self.stores.get(name)
        if store is None:
            raise store_not_found(name)
        return store

    def stored_key(self, store: str, key: str) -> str:
        """The key as the store holds it: Dapr's `keyPrefix` (appid, name, none, or a
        constant) joined by `||`."""
        if not key:
            raise malformed("a state key must not be empty")
        if SEPARATOR in key:
            raise malformed(f"input key/keyPrefix '{key}' can't contain '{SEPARATOR}'")
        prefix = self.components[store].metadata.get("keyPrefix", "appid")
        if prefix == "none":
            return key
        head = {"appid": self.app_id, "name": store}.get(prefix, prefix)
        return f"{head}{SEPARATOR}{key}"

    async def _run(self, code: str, message: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except StateError as e:
            raise state_failure(code, message, e) from None
        except DaprError:
            raise
        except Exception as e:  # the database itself (down, full): Dapr's 500
            raise DaprError(500, code, f"{message}: {e}") from None

    async def get(self, store_name: str, key: str) -> Item | None:
        store = self.store(store_name)
        stored = self.stored_key(store_name, key)
        return await self._run(
            "ERR_STATE_GET",
            f"fail to get {key} from state store {store_name}",
            lambda: store.get(stored),
        )

    async def bulk_get(self, store_name: str, keys: Sequence[str]) -> list[tuple[str, Item | None]]:
        store = self.store(store_name)
        if len(keys) > MAX_BULK_KEYS:
            raise malformed(f"at most {MAX_BULK_KEYS} keys in one bulk get, got {len(keys)}")
        stored = {key: self.stored_key(store_name, key) for key in keys}
        found = await self._run(
            "ERR_STATE_BULK_GET",
            f"failed getting state in bulk from state store {store_name}",
            lambda: store.bulk_get(list(stored.values())),
        )
        return [(key, found.get(stored[key])) for key in keys]

    async def query(self, store_name: str, body: object) -> dict[str, Any]:
        """Dapr's query API over this app's keys (faasbox.dapr.query)."""
        store = self.store(store_name)
        query = parse_query(body)
        prefix = self.stored_key(store_name, "x")[:-1]  # the app's namespace, with its ||
        items = await self._run(
            "ERR_STATE_QUERY",
            f"failed query in state store {store_name}",
            lambda: store.scan(prefix, MAX_SCANNED + 1),
        )
        return run_query(query, [(item.key[len(prefix) :], item) for item in items])

    async def save(self, store_name: str, requests: Sequence[SetRequest]) -> None:
        await self._transact(
            store_name,
            requests,
            "ERR_STATE_SAVE",
            f"failed saving state in state store {store_name}",
        )

    async def delete(self, store_name: str, request: DeleteRequest) -> None:
        await self._transact(
            store_name,
            [request],
            "ERR_STATE_DELETE",
            f"failed deleting state with key {request.key}",
        )

    async def delete_bulk(self, store_name: str, requests: Sequence[DeleteRequest]) -> None:
        await self._transact(
            store_name,
            requests,
            "ERR_STATE_DELETE",
            f"failed deleting state in state store {store_name}",
        )

    async def transact(self, store_name: str, operations: Sequence[Operation]) -> None:
        await self._transact(
            store_name,
            operations,
            "ERR_STATE_TRANSACTION",
            "error while executing state transaction",
        )

    async def _transact(
        self, store_name: str, operations: Sequence[Operation], code: str, message: str
    ) -> None:
        store = self.store(store_name)
        if len(operations) > MAX_OPERATIONS:
            raise DaprError(
                400,
                "ERR_STATE_STORE_TOO_MANY_TRANSACTIONS",
                f"the operations exceed the maximum number allowed ({MAX_OPERATIONS}), "
                f"got {len(operations)}",
                INVALID_ARGUMENT,
            )
        prefixed = [_with_key(op, self.stored_key(store_name, op.key)) for op in operations]
        await self._run(code, message, lambda: store.transact(prefixed))


def _with_key(op: Operation, key: str) -> Operation:
    if isinstance(op, SetRequest):
        return SetRequest(key, op.value, op.etag, op.first_write, op.ttl_s)
    return DeleteRequest(key, op.etag, op.first_write)
