"""Where the stores keep their rows: SQLite (default) or PostgreSQL, behind one connection
type (faasbox.storage.database), SQLite's SQL translated in one place
(faasbox.storage.dialect), and versioned schemas (faasbox.storage.migrations)."""

from faasbox.storage.database import Connection, Cursor, Database, DatabaseUrlError, connect
from faasbox.storage.errors import DatabaseError, IntegrityError
from faasbox.storage.migrations import AddColumns, Step, migrate

__all__ = [
    "AddColumns",
    "Connection",
    "Cursor",
    "Database",
    "DatabaseError",
    "DatabaseUrlError",
    "IntegrityError",
    "Step",
    "connect",
    "migrate",
]
