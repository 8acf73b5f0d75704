"""The registry: deployed functions and their versions, in SQLite, served from memory.

SQLite (stdlib sqlite3, WAL) is the record; every read on the hot path is served from an
in-memory snapshot that is replaced whole after each committed change, so the gateway never
touches the database per request. A deploy stores the code first (content-addressed, atomic
rename) and then commits all rows of the change in one transaction: a crash at any point
leaves either the old functions or the new ones, never a mix.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faasbox.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from faasbox.registry.code_store import CodeStore, StoredCode
from faasbox.registry.models import LATEST, DeployedFunction, FunctionConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    revision_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    config TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name, version)
);
"""


def _now() -> str:
    # Lambda's LastModified format: 2024-01-01T00:00:00.000+0000
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}+0000"


@dataclass(frozen=True)
class Snapshot:
    latest: dict[str, DeployedFunction] = field(default_factory=dict)
    versions: dict[tuple[str, str], DeployedFunction] = field(default_factory=dict)
    # A function's short key (its name in serverless.yml) when no other function shares it.
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeployChange:
    """What a deploy did, so the runtime can drain old workers of the changed functions."""

    deployed: list[DeployedFunction]
    changed: list[str]
    removed: list[str]


class Registry:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.code = CodeStore(data_dir / "code")
        self.db_path = data_dir / "registry.sqlite3"
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[DeployChange], None]] = []
        self.snapshot = self._load()

    # --- reads (hot path: memory only) ---

    def get(self, name: str, qualifier: str | None = None) -> DeployedFunction:
        snap = self.snapshot
        name = snap.aliases.get(name, name)
        if name.startswith("arn:"):
            name = name.split(":function:", 1)[-1].split(":", 1)[0]
        if qualifier in (None, "", LATEST):
            fn = snap.latest.get(name)
        else:
            fn = snap.versions.get((name, str(qualifier)))
        if fn is None:
            arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
            if qualifier:
                arn += f":{qualifier}"
            raise ResourceNotFound(f"Function not found: {arn}")
        return fn

    def all(self) -> list[DeployedFunction]:
        return sorted(self.snapshot.latest.values(), key=lambda f: f.name)

    def versions_of(self, name: str) -> list[DeployedFunction]:
        fn = self.get(name)
        found = [v for (n, _), v in self.snapshot.versions.items() if n == fn.name]
        return [fn, *sorted(found, key=lambda f: int(f.version))]

    def on_change(self, listener: Callable[[DeployChange], None]) -> None:
        self._listeners.append(listener)

    # --- writes ---

    def store_directory(self, src: Path, patterns: Sequence[str] = ()) -> StoredCode:
        return self.code.put_directory(src, patterns)

    def store_zip(self, data: bytes) -> StoredCode:
        return self.code.put_zip(data)

    def deploy(
        self,
        configs: Sequence[FunctionConfig],
        code: StoredCode,
        *,
        replace_service: str | None = None,
    ) -> DeployChange:
        """Point each function at `code` with its config, in one transaction.

        With `replace_service`, functions of that service missing from `configs` are removed,
        as `serverless deploy` removes functions dropped from serverless.yml.
        """
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise InvalidParameterValue(f"Function names must be unique: {names}")
        changed: list[str] = []
        removed: list[str] = []
        with self._lock:
            current = self.snapshot.latest
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for cfg in configs:
                    old = current.get(cfg.name)
                    if old is not None and old.code_sha256 == code.sha256 and old.config == cfg:
                        continue  # unchanged: keep its revision and its warm workers
                    self._db.execute(
                        "INSERT INTO functions (name, config, code_sha256, code_size,"
                        " last_modified, revision_id) VALUES (?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT(name) DO UPDATE SET config=excluded.config,"
                        " code_sha256=excluded.code_sha256, code_size=excluded.code_size,"
                        " last_modified=excluded.last_modified,"
                        " revision_id=excluded.revision_id",
                        (
                            cfg.name,
                            json.dumps(cfg.to_dict()),
                            code.sha256,
                            code.size,
                            _now(),
                            str(uuid.uuid4()),
                        ),
                    )
                    changed.append(cfg.name)
                if replace_service is not None:
                    for fn in current.values():
                        if fn.config.service == replace_service and fn.name not in names:
                            self._db.execute("DELETE FROM functions WHERE name = ?", (fn.name,))
                            removed.append(fn.name)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.snapshot = self._load()
        change = DeployChange([self.get(n) for n in names], changed, removed)
        self._notify(change)
        return change

    def update_config(self, name: str, config: FunctionConfig) -> DeployedFunction:
        fn = self.get(name)
        return self.deploy(
            [config], StoredCode(fn.code_sha256, fn.code_size, fn.code_dir)
        ).deployed[0]

    def delete(self, name: str) -> None:
        fn = self.get(name)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM versions WHERE name = ?", (fn.name,))
            self._db.execute("DELETE FROM functions WHERE name = ?", (fn.name,))
            self._db.execute("COMMIT")
            self.snapshot = self._load()
        self._notify(DeployChange([], [], [fn.name]))

    def publish_version(self, name: str, description: str = "") -> DeployedFunction:
        fn = self.get(name)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute(
                    "SELECT version, code_sha256, config FROM versions WHERE name = ?"
                    " ORDER BY version DESC LIMIT 1",
                    (fn.name,),
                ).fetchone()
                # Lambda returns the latest version again when nothing changed since it.
                if (
                    last
                    and last[1] == fn.code_sha256
                    and json.loads(last[2]) == fn.config.to_dict()
                ):
                    self._db.execute("COMMIT")
                    return self.get(fn.name, str(last[0]))
                number = (last[0] if last else 0) + 1
                self._db.execute(
                    "INSERT INTO versions (name, version, config, code_sha256, code_size,"
                    " last_modified, revision_id, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        fn.name,
                        number,
                        json.dumps(fn.config.to_dict()),
                        fn.code_sha256,
                        fn.code_size,
                        _now(),
                        str(uuid.uuid4()),
                        description,
                    ),
                )
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError as e:
                self._db.execute("ROLLBACK")
                raise ResourceConflict(str(e)) from None
            self.snapshot = self._load()
        return self.get(fn.name, str(number))

    def close(self) -> None:
        self._db.close()

    # --- internals ---

    def _notify(self, change: DeployChange) -> None:
        for listener in self._listeners:
            listener(change)

    def _row(self, name: str, version: str, row: Sequence[Any]) -> DeployedFunction:
        config_json, sha, size, modified, revision = row
        return DeployedFunction(
            config=FunctionConfig.from_dict(json.loads(config_json)),
            version=version,
            code_sha256=sha,
            code_dir=self.code.path_of(sha),
            code_size=size,
            last_modified=modified,
            revision_id=revision,
        )

    def _load(self) -> Snapshot:
        latest: dict[str, DeployedFunction] = {}
        for name, *rest in self._db.execute(
            "SELECT name, config, code_sha256, code_size, last_modified, revision_id FROM functions"
        ):
            latest[name] = self._row(name, LATEST, rest)
        versions: dict[tuple[str, str], DeployedFunction] = {}
        for name, version, *rest in self._db.execute(
            "SELECT name, version, config, code_sha256, code_size, last_modified, revision_id"
            " FROM versions"
        ):
            versions[(name, str(version))] = self._row(name, str(version), rest)
        keys: dict[str, list[str]] = {}
        for fn in latest.values():
            if fn.config.key and fn.config.key != fn.name:
                keys.setdefault(fn.config.key, []).append(fn.name)
        aliases = {k: v[0] for k, v in keys.items() if len(v) == 1 and k not in latest}
        return Snapshot(latest, versions, aliases)
