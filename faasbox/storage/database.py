"""The database every store keeps its rows in: SQLite (a file in the data dir, the embedded
default) or PostgreSQL (`postgresql://...`, shared by gateways on any machines).

A store asks `Database.connect(component)` for a connection of its own and uses it as it used
sqlite3: `execute`/`executemany` with SQLite's SQL and parameters, `BEGIN IMMEDIATE` ...
`COMMIT`/`ROLLBACK` around the statements of one short transaction, rows as tuples. The
store's own lock serialises its threads on that connection, as before.

One connection per store (not a pool): every store already runs one statement or one short
transaction at a time under its lock, the hot path runs no SQL, and a gateway so holds about a
dozen PostgreSQL connections whatever its load. PostgreSQL connections run in autocommit, so a
statement outside BEGIN is its own transaction, as in SQLite.

`BEGIN IMMEDIATE` means "no other writer of this store until I commit" in SQLite (the file's
write lock). On PostgreSQL it takes a transaction-scoped advisory lock named after the
component, so a store's read-check-write transactions (next version number, at most 10 test
events, ...) stay serialised across gateways. The queue connects with `row_locks=True`
instead: its statements are single UPDATEs, and its take picks rows `FOR UPDATE SKIP LOCKED`
(`Connection.skip_locked`), so gateways take different messages at the same time.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from faasbox.storage.dialect import postgres_ddl, postgres_sql

DEFAULT_FILE = "registry.sqlite3"  # the embedded database, in the data dir: one file to back up
POSTGRES_SCHEMES = ("postgresql", "postgres")
BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10

Parameters = Sequence[Any] | Mapping[str, Any]


class Cursor(Protocol):
    """What the stores read from a statement: sqlite3's and psycopg's cursors both are one."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    dialect: str  # "sqlite" or "postgresql"
    # " FOR UPDATE SKIP LOCKED" on PostgreSQL, "" on SQLite (one writer: nothing to skip).
    skip_locked: str

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Parameters]) -> Cursor: ...

    def execute_ddl(self, sql: str) -> None: ...

    def data_version(self, table: str, key: str) -> object: ...

    def columns(self, table: str) -> set[str]: ...

    def close(self) -> None: ...


def connect(
    target: Database | Path, component: str, *, row_locks: bool = False, fast_commits: bool = False
) -> Connection:
    """A store's connection: to `target`, or (stores opened on a file) that SQLite file.
    `fast_commits`: SQLite's synchronous=NORMAL (see SqliteConnection)."""
    database = target if isinstance(target, Database) else Database(str(Path(target).resolve()))
    return database.connect(component, row_locks=row_locks, fast_commits=fast_commits)


class DatabaseUrlError(ValueError):
    pass


@dataclass(frozen=True)
class Database:
    """Where the stores' rows live. `target` is a SQLite file path or a PostgreSQL URL."""

    target: str

    @staticmethod
    def open(target: str | Path | Database | None, data_dir: Path) -> Database:
        """A URL (`postgresql://...`, `sqlite:///path`), a file, or None: the default file
        in the data dir."""
        if isinstance(target, Database):
            return target
        if target is None or target == "":
            return Database(str((data_dir / DEFAULT_FILE).resolve()))
        text = str(target)
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme in POSTGRES_SCHEMES:
            return Database(text)
        if scheme == "sqlite":
            path = text.split("://", 1)[1]
            if not path:
                raise DatabaseUrlError(f"{text}: a sqlite URL names a file: sqlite:///path/file")
            return Database(str(Path(path).resolve()))
        if scheme:
            raise DatabaseUrlError(
                f"unsupported database {redacted(text)}: use postgresql://user@host/dbname, "
                "or leave --database out for the SQLite file in the data dir"
            )
        return Database(str(Path(text).resolve()))

    @property
    def dialect(self) -> str:
        return "postgresql" if self.shared else "sqlite"

    @property
    def shared(self) -> bool:
        """Several gateways can use it (PostgreSQL), so code must live in it too."""
        return self.target.split("://", 1)[0].lower() in POSTGRES_SCHEMES

    @property
    def path(self) -> Path:
        """The SQLite file (SQLite only)."""
        assert not self.shared
        return Path(self.target)

    def describe(self) -> str:
        """For messages and logs: the URL without its password."""
        return redacted(self.target)

    def connect(
        self, component: str, *, row_locks: bool = False, fast_commits: bool = False
    ) -> Connection:
        if self.shared:
            return PostgresConnection(self.target, None if row_locks else lock_key(component))
        return SqliteConnection(self.path, fast_commits)


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def lock_key(component: str) -> int:
    """The advisory lock of a component: a stable signed 64-bit number from its name."""
    digest = hashlib.sha256(f"faasbox:{component}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SqliteConnection:
    """sqlite3 as the stores always used it: WAL, a busy timeout, explicit transactions."""

    dialect = "sqlite"
    skip_locked = ""

    def __init__(self, path: Path, fast_commits: bool = False) -> None:
        from faasbox.registry.private import private_file  # (faasbox.registry imports this)

        path.parent.mkdir(parents=True, exist_ok=True)
        private_file(path)
        self._db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if fast_commits:  # the queue and the logs: no fsync per commit
            # NORMAL in WAL mode: a commit survives the process being killed (it is in the
            # OS's page cache); only a power loss can take the last commits.
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        return self._db.execute(sql, parameters)

    def executemany(self, sql: str, rows: Iterable[Parameters]) -> Cursor:
        return self._db.executemany(sql, rows)

    def execute_ddl(self, sql: str) -> None:
        self._db.execute(sql)

    def data_version(self, table: str, key: str) -> object:
        # Changes whenever another connection commits to the file.
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self._db.close()


_BEGIN_IMMEDIATE = re.compile(r"\s*BEGIN\s+IMMEDIATE\s*;?\s*", re.IGNORECASE)


class PostgresConnection:
    """One psycopg connection in autocommit mode, reconnected when it broke between
    transactions (a restarted PostgreSQL); SQLite's SQL translated by faasbox.storage.dialect."""

    dialect = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, lock: int | None) -> None:
        self._url = url
        self._lock_key = lock
        self._in_transaction = False
        self._guard = threading.Lock()  # only for reconnecting; the store serialises calls
        self._conn = _connect(url)

    def _live(self) -> Any:
        """The connection, opened again if it broke (PostgreSQL restarted, a network cut)
        while no transaction was open on it; in a transaction, an error: its statements are
        gone, and only ROLLBACK (which the stores then run) may go on."""
        if self._conn.broken or self._conn.closed:
            if self._in_transaction:
                raise sqlite3.OperationalError(
                    "the connection to the database broke during a transaction; it was rolled back"
                )
            with self._guard:
                if self._conn.broken or self._conn.closed:
                    self._conn = _connect(self._url)
        return self._conn

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        import psycopg

        word = sql.lstrip()[:8].upper()
        if word.startswith("ROLLBACK") and (self._conn.broken or self._conn.closed):
            self._in_transaction = False  # nothing to roll back on a new connection
            return self.execute("SELECT 1")
        with _as_sqlite_errors():
            try:
                return self._execute(word, sql, parameters)
            except psycopg.OperationalError:
                # A connection found broken by this statement, outside a transaction (or at
                # its BEGIN): once more, on a new one.
                retry = not self._in_transaction or word.startswith("BEGIN")
                if not self._conn.broken or not retry:
                    raise
                self._in_transaction = False
                return self._execute(word, sql, parameters)

    def _execute(self, word: str, sql: str, parameters: Parameters) -> Cursor:
        conn = self._live()
        if word.startswith("BEGIN"):
            cursor = conn.execute("BEGIN")
            self._in_transaction = True
            if self._lock_key is not None and _BEGIN_IMMEDIATE.fullmatch(sql):
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            return cursor  # type: ignore[no-any-return]
        if word.startswith(("COMMIT", "ROLLBACK")):
            self._in_transaction = False
        text = postgres_sql(sql, bool(parameters))
        return conn.execute(text, parameters or None)  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Iterable[Parameters]) -> Cursor:
        rows = list(rows)
        if len(rows) == 1:  # psycopg's executemany pipelines: one more round trip for one row
            return self.execute(sql, rows[0])
        with _as_sqlite_errors():
            cursor = self._live().cursor()
            cursor.executemany(postgres_sql(sql, True), rows)
            return cursor  # type: ignore[no-any-return]

    def execute_ddl(self, sql: str) -> None:
        with _as_sqlite_errors():
            self._live().execute(postgres_ddl(sql))

    def data_version(self, table: str, key: str) -> object:
        # PostgreSQL keeps no per-database change counter: a digest of the table's keys
        # (the small tables this is used for: access keys, checked at most once a second).
        row = self.execute(
            f"SELECT md5(COALESCE(string_agg({key}, ',' ORDER BY {key}), '')) FROM {table}"
        ).fetchone()
        return row[0]

    def columns(self, table: str) -> set[str]:
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        ).fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        self._conn.close()


def _connect(url: str) -> Any:
    import psycopg
    from psycopg.adapt import Loader

    class IntegralNumeric(Loader):
        """SUM() of integers is NUMERIC in PostgreSQL, an integer in SQLite: load it as one
        (a float when it has a fraction)."""

        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            return float(text) if "." in text or "e" in text.lower() else int(text)

    with _as_sqlite_errors():
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    conn.adapters.register_loader("numeric", IntegralNumeric)
    return conn


@contextlib.contextmanager
def _as_sqlite_errors() -> Iterator[None]:
    """psycopg's errors as the DB-API classes the stores catch (faasbox.storage.errors)."""
    import psycopg

    try:
        yield
    except psycopg.IntegrityError as e:
        raise sqlite3.IntegrityError(str(e)) from e
    except psycopg.OperationalError as e:
        raise sqlite3.OperationalError(str(e)) from e
    except psycopg.Error as e:
        raise sqlite3.DatabaseError(str(e)) from e
