"""The access keys faasbox issues for SigV4-signed requests, their secrets encrypted at rest.

SigV4 verification needs each key's secret (the signing key is derived from "AWS4" + secret
per date, region and service), so the secret cannot be kept as a hash. It is kept in the
registry's database encrypted with AES-256-GCM (the key id as associated data, so a
ciphertext cannot be moved to another key's row) under a master key that is either
FAASBOX_MASTER_KEY (base64 of 32 bytes) or the file `<data-dir>/master.key`, created 0600 with
the first key. See docs/security.md for what this protects against and what it does not.

A running server serves secrets from memory. It notices keys created or deleted by other
processes (`faasbox keys ...` on the same data dir or database) through SQLite's data_version
(on PostgreSQL, a digest of the key ids; faasbox.storage.database): checked at once when a
request names a key it does not know, and at most once a second otherwise.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import logging
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from faasbox.errors import AccessKeyError
from faasbox.registry.private import private_dir
from faasbox.storage import Database, DatabaseError, Step, connect, migrate

log = logging.getLogger("faasbox.auth")

DB_FILE = "registry.sqlite3"  # the registry's file: one file to back up
MASTER_KEY_FILE = "master.key"
MASTER_KEY_ENV = "FAASBOX_MASTER_KEY"
CREDENTIALS_FILE = "credentials"
PROFILE = "faasbox"
ID_PREFIX = "AKIA"
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # as AWS's key ids: 4 + 16 characters
RECORD_VERSION = b"\x01"
REFRESH_INTERVAL_S = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id TEXT PRIMARY KEY,
    secret_encrypted BLOB NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
"""
MIGRATIONS: list[Step] = [SCHEMA]


@dataclass(frozen=True)
class Credentials:
    """An access key id and its secret, as a client signs with them."""

    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class AccessKey:
    """A key as listed: never its secret."""

    access_key_id: str
    description: str
    created_at: str


# --- the master key ---


def _decode_master_key(text: str, origin: str) -> bytes:
    try:
        key = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise AccessKeyError(
            f"{origin} must be 32 random bytes in base64, such as the output of "
            "`python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'`"
        )
    return key


def load_master_key(data_dir: Path, create: bool) -> bytes | None:
    """FAASBOX_MASTER_KEY, else `<data-dir>/master.key` (made 0600 if `create`), else None."""
    from_env = os.environ.get(MASTER_KEY_ENV)
    if from_env:
        return _decode_master_key(from_env, MASTER_KEY_ENV)
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        if not create:
            return None
        key = secrets.token_bytes(32)
        try:
            _write_private(path, base64.b64encode(key) + b"\n", exclusive=True)
            return key
        except FileExistsError:
            pass  # another process made it first: use theirs
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AccessKeyError(
            f"{path} can be read by other users (mode {stat.S_IMODE(mode):o}); "
            f"make it private with: chmod 600 {path}"
        )
    return _decode_master_key(path.read_text(), str(path))


def _write_private(path: Path, data: bytes, exclusive: bool = False) -> None:
    """Write a file readable by its owner only (0600), whole or not at all."""
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _aad(access_key_id: str) -> bytes:
    return b"faasbox access key " + access_key_id.encode()


def _encrypt(master: bytes, access_key_id: str, secret: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only when a key is made

    nonce = secrets.token_bytes(12)
    sealed = AESGCM(master).encrypt(nonce, secret.encode(), _aad(access_key_id))
    return RECORD_VERSION + nonce + sealed


def _decrypt(master: bytes, access_key_id: str, record: bytes) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if record[:1] != RECORD_VERSION or len(record) < 1 + 12 + 16:
        raise AccessKeyError(f"access key {access_key_id}: unreadable record in the store")
    try:
        plain = AESGCM(master).decrypt(record[1:13], record[13:], _aad(access_key_id))
    except InvalidTag:
        raise AccessKeyError(
            f"access key {access_key_id} cannot be decrypted: the master key "
            f"({MASTER_KEY_ENV} or {MASTER_KEY_FILE} in the data dir) is not the one it was "
            "stored with"
        ) from None
    return plain.decode()


# --- the store ---


def new_access_key_id() -> str:
    return ID_PREFIX + "".join(secrets.choice(ID_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(30)).decode()  # 40 characters, 240 bits


class AccessKeyStore:
    def __init__(self, data_dir: Path, database: Database | str | None = None) -> None:
        """The keys of `database` (default: the data dir's SQLite file); the master key is
        always the data dir's (or FAASBOX_MASTER_KEY): the database holds only ciphertexts."""
        self.data_dir = data_dir
        try:
            private_dir(data_dir)
            self.database = Database.open(database, data_dir)
            self._db = connect(self.database, "access_keys")
            migrate(self._db, "access_keys", MIGRATIONS)
        except (OSError, DatabaseError) as e:
            where = self.database.describe() if hasattr(self, "database") else data_dir
            raise AccessKeyError(f"cannot open the access key store in {where}: {e}") from e
        self._lock = threading.Lock()
        self._master: bytes | None = None
        self._secrets: dict[str, str] = {}
        self._data_version: object = -1
        self._next_check = 0.0

    def _master_key(self, create: bool) -> bytes | None:
        if self._master is None:
            self._master = load_master_key(self.data_dir, create)
        return self._master

    # --- management (the CLI, `faasbox serve` at start) ---

    def create(self, description: str = "") -> tuple[AccessKey, Credentials]:
        """A new key; its secret is returned here and never again."""
        master = self._master_key(create=True)
        assert master is not None
        key_id, secret = new_access_key_id(), new_secret()
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock:
            self._db.execute(
                "INSERT INTO access_keys (access_key_id, secret_encrypted, description, "
                "created_at) VALUES (?, ?, ?, ?)",
                (key_id, _encrypt(master, key_id, secret), description, created),
            )
            self._secrets[key_id] = secret
        return AccessKey(key_id, description, created), Credentials(key_id, secret)

    def all(self) -> list[AccessKey]:
        with self._lock:
            rows = self._db.execute(
                "SELECT access_key_id, description, created_at FROM access_keys "
                "ORDER BY created_at, access_key_id"
            ).fetchall()
        return [AccessKey(*row) for row in rows]

    def delete(self, access_key_id: str) -> bool:
        with self._lock:
            deleted = self._db.execute(
                "DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,)
            ).rowcount
            self._secrets.pop(access_key_id, None)
        return bool(deleted)

    # --- verification (the server; memory, but for a rare check of the file) ---

    def load(self) -> int:
        """Read every key's secret into memory; raises AccessKeyError if one cannot be read."""
        with self._lock:
            self._reload(strict=True)
        return len(self._secrets)

    def secret_for(self, access_key_id: str) -> str | None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + REFRESH_INTERVAL_S
            self._refresh()
        secret = self._secrets.get(access_key_id)
        if secret is None and self._refresh():
            secret = self._secrets.get(access_key_id)
        return secret

    def _refresh(self) -> bool:
        """Reload if another connection changed the file since the last load."""
        with self._lock:
            version = self._db.data_version("access_keys", "access_key_id")
            if version == self._data_version:
                return False
            self._reload(strict=False)
            return True

    def _reload(self, strict: bool) -> None:
        self._data_version = self._db.data_version("access_keys", "access_key_id")
        rows = self._db.execute(
            "SELECT access_key_id, secret_encrypted FROM access_keys"
        ).fetchall()
        loaded: dict[str, str] = {}
        if rows:
            master = self._master_key(create=False)
            if master is None:
                raise AccessKeyError(
                    f"{len(rows)} access key(s) are stored in {self.database.describe()} but "
                    f"their master key is missing: set {MASTER_KEY_ENV} or restore "
                    f"{self.data_dir / MASTER_KEY_FILE}"
                )
            for key_id, record in rows:
                try:
                    loaded[key_id] = _decrypt(master, key_id, bytes(record))
                except AccessKeyError:
                    if strict:
                        raise
                    log.exception("skipping access key %s", key_id)
        self._secrets = loaded

    def close(self) -> None:
        self._db.close()


# --- credentials files (AWS's format) ---


def credentials_text(credentials: Credentials, profile: str = PROFILE) -> str:
    return (
        f"[{profile}]\n"
        f"aws_access_key_id = {credentials.access_key_id}\n"
        f"aws_secret_access_key = {credentials.secret_access_key}\n"
    )


def write_credentials_file(path: Path, credentials: Credentials, profile: str = PROFILE) -> None:
    """An AWS credentials file holding one profile, readable by its owner only (0600)."""
    _write_private(path, credentials_text(credentials, profile).encode())


def read_credentials_file(path: Path, profile: str) -> Credentials | None:
    """A profile of an AWS credentials file, or None if the file or the profile is missing."""
    parser = configparser.RawConfigParser()
    try:
        if not parser.read(path):
            return None
    except configparser.Error:
        return None
    if not parser.has_section(profile):
        return None
    key_id = parser.get(profile, "aws_access_key_id", fallback="").strip()
    secret = parser.get(profile, "aws_secret_access_key", fallback="").strip()
    return Credentials(key_id, secret) if key_id and secret else None


def ensure_admin_key(store: AccessKeyStore) -> tuple[AccessKey, Path] | None:
    """On a data dir with no key, create one and write it to `<data-dir>/credentials`."""
    if store.all():
        return None
    key, credentials = store.create("admin (created by faasbox serve)")
    path = store.data_dir / CREDENTIALS_FILE
    write_credentials_file(path, credentials)
    return key, path
