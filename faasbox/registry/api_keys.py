"""API Gateway API keys (`provider.apiGateway.apiKeys`), stored as SHA-256 hashes only.

A key named in serverless.yml without a value is generated at its first deploy and its value
shown once, as `serverless deploy` prints them; a key given a value in the file is stored
hashed too. Checking a request's `x-api-key` is a hash and a set lookup, from memory.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faasbox.registry import revision
from faasbox.storage import Database, Step, connect, migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (service, name)
);
"""
MIGRATIONS: list[Step] = [SCHEMA]


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class NewApiKey:
    service: str
    name: str
    value: str  # shown once, never stored


class ApiKeyStore:
    def __init__(self, database: Database | Path) -> None:
        self._db = connect(database, "api_keys")
        migrate(self._db, "api_keys", MIGRATIONS)
        revision.ensure(self._db)
        self._lock = threading.Lock()
        self._hashes: dict[str, frozenset[str]] = {}
        self.reload()

    def reload(self) -> None:
        """Read the keys again (at start, after a change, and when another gateway changed
        them: the deploy revision moved)."""
        hashes: dict[str, set[str]] = {}
        for service, digest in self._db.execute("SELECT service, key_sha256 FROM api_keys"):
            hashes.setdefault(service, set()).add(digest)
        self._hashes = {k: frozenset(v) for k, v in hashes.items()}

    def ensure(self, service: str, keys: list[str | dict[str, Any]]) -> list[NewApiKey]:
        """Make the service's keys exactly these (a key dropped from serverless.yml stops
        working); returns the values generated now, to show once."""
        created: list[NewApiKey] = []
        wanted = {
            str(e.get("name") or e.get("value") or "") if isinstance(e, dict) else str(e)
            for e in keys
        }
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for (name,) in self._db.execute(
                    "SELECT name FROM api_keys WHERE service = ?", (service,)
                ).fetchall():
                    if name not in wanted:
                        self._db.execute(
                            "DELETE FROM api_keys WHERE service = ? AND name = ?", (service, name)
                        )
                for entry in keys:
                    if isinstance(entry, dict):
                        name = str(entry.get("name") or entry.get("value") or "")
                        value = entry.get("value")
                    else:
                        name, value = str(entry), None
                    if not name:
                        continue
                    exists = self._db.execute(
                        "SELECT key_sha256 FROM api_keys WHERE service = ? AND name = ?",
                        (service, name),
                    ).fetchone()
                    if value is not None:
                        if not exists or exists[0] != _hash(str(value)):
                            self._upsert(service, name, str(value))
                    elif not exists:
                        value = secrets.token_urlsafe(30)
                        self._upsert(service, name, value)
                        created.append(NewApiKey(service, name, value))
                revision.bump(self._db)  # other gateways take the keys too
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.reload()
        return created

    def _upsert(self, service: str, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO api_keys (service, name, key_sha256, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(service, name) DO UPDATE SET key_sha256 = excluded.key_sha256",
            (service, name, _hash(value), time.time()),
        )

    def valid(self, service: str | None, presented: str | None) -> bool:
        if not presented:
            return False
        return _hash(presented) in self._hashes.get(service or "", frozenset())

    def close(self) -> None:
        self._db.close()
