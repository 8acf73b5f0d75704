"""The deploy revision: one number in the database, raised by every transaction that changes
what a gateway serves from memory (functions and versions, layers, API keys, event invoke
configs).

Any number of gateways share one database; each keeps those in memory for the hot path.
A gateway polls this number (faasbox.registry.follower) and, when it moved, reloads what it
holds, so a deploy through one gateway is served by all. Standard SQL only (the same
statements run on PostgreSQL).
"""

from __future__ import annotations

from typing import Any, Protocol

from faasbox.storage import Connection as StorageConnection
from faasbox.storage import Step, migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS deploy_revision (
    id INTEGER PRIMARY KEY,
    revision INTEGER NOT NULL
);
INSERT INTO deploy_revision (id, revision) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
"""


class Connection(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def bump(db: Connection) -> None:
    """Raise the revision; call inside the transaction of the change, so other gateways see
    the new number no sooner than the change itself."""
    db.execute("UPDATE deploy_revision SET revision = revision + 1 WHERE id = 1")


def current(db: Connection) -> int:
    row = db.execute("SELECT revision FROM deploy_revision WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


MIGRATIONS: list[Step] = [SCHEMA]


def ensure(db: StorageConnection) -> None:
    """Create the revision's table where missing (each store that bumps it calls this)."""
    migrate(db, "deploy_revision", MIGRATIONS)
