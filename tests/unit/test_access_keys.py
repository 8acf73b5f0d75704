"""The access key store: secrets encrypted at rest, the master key, credentials files."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from faasbox.errors import AccessKeyError
from faasbox.registry import access_keys
from faasbox.registry.access_keys import (
    AccessKeyStore,
    Credentials,
    ensure_admin_key,
    read_credentials_file,
    write_credentials_file,
)
from faasbox.storage import Database, connect


@pytest.fixture(autouse=True)
def no_master_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAASBOX_MASTER_KEY", raising=False)


def test_create_returns_the_secret_once_and_lists_without_it(
    tmp_path: Path, database: Database
) -> None:
    store = AccessKeyStore(tmp_path, database)
    key, credentials = store.create("ci")
    assert key.access_key_id == credentials.access_key_id
    assert len(key.access_key_id) == 20 and key.access_key_id.startswith("AKIA")
    assert len(credentials.secret_access_key) == 40
    assert store.all() == [key]
    assert store.secret_for(key.access_key_id) == credentials.secret_access_key
    assert store.secret_for("AKIANOSUCHKEY0000000") is None


def test_the_database_holds_no_plaintext_secret(tmp_path: Path, database: Database) -> None:
    store = AccessKeyStore(tmp_path, database)
    secrets = [store.create()[1].secret_access_key for _ in range(3)]
    store.close()
    rows = connect(database, "test").execute("SELECT * FROM access_keys").fetchall()
    stored = [b"".join(str(v).encode() if not isinstance(v, bytes) else v for v in r) for r in rows]
    if not database.shared:
        stored += [p.read_bytes() for p in database.path.parent.glob("registry.sqlite3*")]
    assert len(rows) == 3
    for data in stored:
        for secret in secrets:
            assert secret.encode() not in data
            assert base64.b64decode(secret) not in data


def test_master_key_file_is_private_and_made_with_the_first_key(tmp_path: Path) -> None:
    store = AccessKeyStore(tmp_path)
    assert not (tmp_path / "master.key").exists()
    store.create()
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_another_process_sees_new_keys_at_once_and_deletions_soon(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_keys, "REFRESH_INTERVAL_S", 0.0)
    server = AccessKeyStore(tmp_path, database)
    server.create("admin")
    assert server.load() == 1
    cli = AccessKeyStore(tmp_path, database)
    _, new = cli.create("new")
    assert server.secret_for(new.access_key_id) == new.secret_access_key
    assert cli.delete(new.access_key_id)
    assert server.secret_for(new.access_key_id) is None
    assert not cli.delete(new.access_key_id)


def test_a_wrong_master_key_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    AccessKeyStore(tmp_path).create()
    monkeypatch.setenv("FAASBOX_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(AccessKeyError, match="cannot be decrypted"):
        AccessKeyStore(tmp_path).load()


def test_a_missing_master_key_is_refused_clearly(tmp_path: Path) -> None:
    AccessKeyStore(tmp_path).create()
    (tmp_path / "master.key").unlink()
    with pytest.raises(AccessKeyError, match="master key is missing"):
        AccessKeyStore(tmp_path).load()


def test_a_master_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    AccessKeyStore(tmp_path).create()
    (tmp_path / "master.key").chmod(0o644)
    with pytest.raises(AccessKeyError, match="chmod 600"):
        AccessKeyStore(tmp_path).load()


def test_master_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAASBOX_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    _, credentials = AccessKeyStore(tmp_path).create()
    assert not (tmp_path / "master.key").exists()
    store = AccessKeyStore(tmp_path)
    store.load()
    assert store.secret_for(credentials.access_key_id) == credentials.secret_access_key
    monkeypatch.setenv("FAASBOX_MASTER_KEY", "too short")
    with pytest.raises(AccessKeyError, match="32 random bytes"):
        AccessKeyStore(tmp_path).load()


def test_a_ciphertext_cannot_be_moved_to_another_key(tmp_path: Path) -> None:
    store = AccessKeyStore(tmp_path)
    first, _ = store.create()
    second, _ = store.create()
    db = store._db
    (record,) = db.execute(
        "SELECT secret_encrypted FROM access_keys WHERE access_key_id = ?",
        (first.access_key_id,),
    ).fetchone()
    db.execute(
        "UPDATE access_keys SET secret_encrypted = ? WHERE access_key_id = ?",
        (record, second.access_key_id),
    )
    with pytest.raises(AccessKeyError, match=second.access_key_id):
        AccessKeyStore(tmp_path).load()


def test_credentials_files_are_private_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    credentials = Credentials("AKIAAAAAAAAAAAAAAAAA", "s" * 40)
    write_credentials_file(path, credentials)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_credentials_file(path, "faasbox") == credentials
    assert read_credentials_file(path, "default") is None
    assert read_credentials_file(tmp_path / "missing", "faasbox") is None


def test_ensure_admin_key_only_on_an_empty_store(tmp_path: Path) -> None:
    store = AccessKeyStore(tmp_path)
    made = ensure_admin_key(store)
    assert made is not None
    key, path = made
    written = read_credentials_file(path, "faasbox")
    assert written is not None and written.access_key_id == key.access_key_id
    assert ensure_admin_key(store) is None
