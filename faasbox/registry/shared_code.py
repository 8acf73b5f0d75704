"""Function and layer code in a shared database (PostgreSQL), so a gateway on another machine
runs a deploy it did not receive.

Every package is kept as a zip in `code_zips`, keyed by the zip's SHA-256 and naming the tree
hash of its files (CodeStore's address): the zip as it was uploaded (the Lambda API hands it
out again, so CodeSha256 is the same on every gateway), or, for code deployed from a folder,
its canonical zip (faasbox.registry.code_store: the same files always give the same bytes).

The data dir's `code/` stays each gateway's local cache, by tree hash: `ensure_local` unpacks
what a snapshot names and the cache lacks, once, when the registry (re)loads a snapshot (at
start, after a write, when another gateway's deploy is noticed): never on the invoke path.
With SQLite (one machine) nothing is copied: the data dir is the only store.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Iterable

from faasbox.registry.code_store import CodeStore, PackageStore, StoredCode, write_canonical_zip
from faasbox.storage import Database, Step, connect, migrate

log = logging.getLogger("faasbox.registry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS code_zips (
    zip_sha256 TEXT PRIMARY KEY,
    tree_sha256 TEXT NOT NULL,
    uploaded INTEGER NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS code_zips_by_tree ON code_zips (tree_sha256);
"""
MIGRATIONS: list[Step] = [SCHEMA]


class SharedCode:
    def __init__(self, database: Database, code: CodeStore, packages: PackageStore) -> None:
        self.code = code
        self.packages = packages
        self._db = connect(database, "code_zips", row_locks=True)
        migrate(self._db, "code_zips", MIGRATIONS)
        self._lock = threading.Lock()

    def publish(self, stored: StoredCode, uploaded: bytes | None = None) -> None:
        """Keep `stored` in the database (before the deploy that uses it commits): `uploaded`,
        the zip it came as, else its canonical zip, built only when the tree is not there."""
        if uploaded is None:
            if self._has_tree(stored.sha256):
                return
            buffer = io.BytesIO()
            write_canonical_zip(stored.path, buffer)
            data = buffer.getvalue()
        else:
            data = uploaded
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            # Another gateway storing the same zip at the same moment: one row, either's.
            self._db.execute(
                "INSERT INTO code_zips (zip_sha256, tree_sha256, uploaded, size, data)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (zip_sha256) DO NOTHING",
                (digest, stored.sha256, int(uploaded is not None), len(data), data),
            )

    def ensure_local(self, trees: Iterable[str], packages: Iterable[str] = ()) -> list[str]:
        """Unpack into the local cache the code trees (and uploaded zips) it lacks; the tree
        hashes unpacked now. A tree the database does not hold is logged, not raised: the
        other functions of the snapshot still load."""
        unpacked: list[str] = []
        for tree in sorted(set(trees)):
            if not tree or self.code.path_of(tree).exists():
                continue
            row = self._fetch("tree_sha256 = ? ORDER BY uploaded DESC LIMIT 1", tree)
            if row is None:
                log.error("code %s is in the registry but not in the database", tree)
                continue
            restored = self.code.restore_zip(row)
            if restored.sha256 != tree:
                log.error("the stored zip of code %s unpacks to %s", tree, restored.sha256)
                continue
            unpacked.append(tree)
        for digest in sorted(set(packages)):
            if digest and self.packages.get(digest) is None:
                row = self._fetch("zip_sha256 = ?", digest)
                if row is not None:
                    self.packages.put(row)
        return unpacked

    def _has_tree(self, tree: str) -> bool:
        with self._lock:
            found = self._db.execute(
                "SELECT 1 FROM code_zips WHERE tree_sha256 = ? LIMIT 1", (tree,)
            ).fetchone()
        return found is not None

    def _fetch(self, where: str, value: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(f"SELECT data FROM code_zips WHERE {where}", (value,)).fetchone()
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
