"""A real PostgreSQL server for the tests: Debian's postgresql (installed by `make test`),
`initdb` into a temp dir, on a free port, stopped afterwards. Use the session-scoped fixture
`postgres` (tests/conftest.py) and `PostgresServer.database(name)` for a database of your own,
or the `database` fixture, which runs a store test on SQLite and on a fresh PostgreSQL
database.
As root, the server runs as the `postgres` user (it refuses to run as root)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_ROOTS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def postgres_bin() -> Path:
    for root in PG_ROOTS:
        if (root / "pg_ctl").exists():
            return root
    raise AssertionError(
        "no PostgreSQL server under /usr/lib/postgresql: `make test` installs Debian's "
        "postgresql package (sudo apt-get install -y postgresql)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    root: Path
    port: int
    user: str = "postgres"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def database(self, name: str) -> str:
        """A fresh, empty database `name` (dropped first if it exists); its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop(self, name: str) -> None:
        """Drop database `name`, closing the connections still open to it."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def start_postgres() -> PostgresServer:
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="faasbox-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    return PostgresServer(root, port)


def stop_postgres(server: PostgresServer) -> None:
    subprocess.run(
        _as_postgres(
            [
                str(postgres_bin() / "pg_ctl"),
                "-D",
                str(server.root / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ]
        ),
        check=False,
        capture_output=True,
    )
    shutil.rmtree(server.root, ignore_errors=True)
