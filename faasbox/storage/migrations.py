"""Versioned schemas: each store's schema is a list of numbered steps, applied once, in order,
and recorded in `schema_migrations (component, version)`.

Step 1 of every store is the schema faasbox shipped before this table existed (its
`CREATE TABLE IF NOT EXISTS` statements), so a data dir made by an earlier faasbox is adopted
as it is; columns added since are `AddColumns` steps, which add only what is missing (earlier
faasbox versions added some of them on their own). A later change is a new step at the end of
the list; a step once released is never edited.

Steps run in one transaction with the table's record of them, under the database's write lock
(SQLite's BEGIN IMMEDIATE; a PostgreSQL advisory lock), so a server and a `faasbox keys`
command starting at once cannot both apply a step, and a failed step leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from faasbox.storage.database import Connection, lock_key
from faasbox.storage.dialect import statements

TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at REAL NOT NULL,
    PRIMARY KEY (component, version)
)
"""


@dataclass(frozen=True)
class AddColumns:
    """Columns of `table` to add where missing: {name: declaration}."""

    table: str
    columns: dict[str, str] = field(default_factory=dict)


Step = str | AddColumns  # a SQL script (SQLite's words; translated for PostgreSQL) or columns


def migrate(db: Connection, component: str, steps: Sequence[Step]) -> list[int]:
    """Apply the steps of `component` not applied yet; the versions applied now."""
    applied: list[int] = []
    if db.dialect == "postgresql":
        db.execute("BEGIN")
        db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key("schema_migrations"),))
    else:
        db.execute("BEGIN IMMEDIATE")
    try:
        db.execute_ddl(TABLE)
        done = {
            row[0]
            for row in db.execute(
                "SELECT version FROM schema_migrations WHERE component = ?", (component,)
            ).fetchall()
        }
        for version, step in enumerate(steps, start=1):
            if version in done:
                continue
            _apply(db, step)
            db.execute(
                "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
                (component, version, time.time()),
            )
            applied.append(version)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return applied


def _apply(db: Connection, step: Step) -> None:
    if isinstance(step, AddColumns):
        have = db.columns(step.table)
        for column, declaration in step.columns.items():
            if column not in have:
                db.execute_ddl(f"ALTER TABLE {step.table} ADD COLUMN {column} {declaration}")
        return
    for statement in statements(step):
        db.execute_ddl(statement)
