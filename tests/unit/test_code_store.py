"""Unit tests of faasbox.registry.code_store: content-addressed, atomic code storage."""

from __future__ import annotations

import io
import os
import stat
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from faasbox.errors import CodeTooLarge, DeployError
from faasbox.registry import code_store
from faasbox.registry.code_store import LEFTOVER_AGE_S, CodeStore, included

FILES: dict[str, bytes] = {
    "handler.py": b"def hello(event, context):\n    return {'ok': True}\n",
    "lib/util.py": b"ANSWER = 42\n",
    "lib/deep/data.json": b'{"a": 1}\n',
    "bin/tool": b"#!/bin/sh\necho tool\n",
}
EXECUTABLE = {"bin/tool"}
MARKER = ".complete"  # the store's own commit marker, not part of the package


def write_tree(
    root: Path, files: dict[str, bytes] = FILES, executable: set[str] = EXECUTABLE
) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o755 if rel in executable else 0o644)
    return root


def make_zip(
    files: dict[str, bytes] = FILES,
    executable: set[str] = EXECUTABLE,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for rel, content in files.items():
            info = zipfile.ZipInfo(rel)
            info.external_attr = ((0o755 if rel in executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = compression
            archive.writestr(info, content)
    return buf.getvalue()


def symlink_zip(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("handler.py", FILES["handler.py"])
        info = zipfile.ZipInfo(name)
        info.create_system = 3  # unix, so the mode bits are meaningful
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return buf.getvalue()


def stored_files(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def entries(store: CodeStore) -> list[str]:
    """Everything at the top of the store: stored packages and any staging leftovers."""
    return sorted(p.name for p in store.root.iterdir())


def staging_dirs(store: CodeStore) -> list[Path]:
    return list(store.root.glob(".tmp-*"))


@pytest.fixture
def store(tmp_path: Path) -> CodeStore:
    return CodeStore(tmp_path / "code")


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src")


# --- content addressing ---


# Files whose os.walk order is also their sorted order: a folder's files before its subfolders.
FLAT: dict[str, bytes] = {
    "handler.py": FILES["handler.py"],
    "run.sh": b"#!/bin/sh\necho run\n",
    "zz/util.py": b"ANSWER = 42\n",
}


def test_folder_and_zip_of_the_same_files_share_one_copy(store: CodeStore, tmp_path: Path) -> None:
    from_dir = store.put_directory(write_tree(tmp_path / "flat", FLAT, {"run.sh"}))
    from_zip = store.put_zip(make_zip(FLAT, {"run.sh"}))

    assert from_dir.sha256 == from_zip.sha256
    assert len(from_dir.sha256) == 64
    assert from_dir.path == from_zip.path == store.path_of(from_dir.sha256)
    assert entries(store) == [from_dir.sha256]
    assert from_dir.size == from_zip.size == sum(len(c) for c in FLAT.values())
    assert stored_files(from_dir.path) == FLAT


def test_folder_and_zip_of_a_nested_tree_share_one_copy(store: CodeStore, src: Path) -> None:
    from_dir = store.put_directory(src)
    from_zip = store.put_zip(make_zip())

    assert stored_files(from_dir.path) == stored_files(from_zip.path) == FILES
    assert from_dir.sha256 == from_zip.sha256
    assert entries(store) == [from_dir.sha256]


def test_storing_the_same_code_twice_is_free(store: CodeStore, src: Path) -> None:
    first = store.put_directory(src)
    before = entries(store)
    mtime = (first.path / "handler.py").stat().st_mtime_ns

    second = store.put_directory(src)

    assert second == first
    assert entries(store) == before == [first.sha256]
    # the stored copy was not rewritten
    assert (first.path / "handler.py").stat().st_mtime_ns == mtime


def test_uploading_the_same_zip_twice_is_free(store: CodeStore) -> None:
    first = store.put_zip(make_zip())
    second = store.put_zip(make_zip())
    assert second == first
    assert entries(store) == [first.sha256]
    assert stored_files(first.path) == FILES


def test_a_changed_file_gives_a_new_sha_and_keeps_the_old_copy(store: CodeStore, src: Path) -> None:
    old = store.put_directory(src)
    (src / "lib" / "util.py").write_bytes(b"ANSWER = 43\n")
    new = store.put_directory(src)

    assert new.sha256 != old.sha256
    assert entries(store) == sorted([old.sha256, new.sha256])
    assert (old.path / "lib" / "util.py").read_bytes() == b"ANSWER = 42\n"
    assert (new.path / "lib" / "util.py").read_bytes() == b"ANSWER = 43\n"


def test_a_renamed_file_gives_a_new_sha(store: CodeStore, src: Path) -> None:
    old = store.put_directory(src)
    (src / "lib" / "util.py").rename(src / "lib" / "utils.py")
    assert store.put_directory(src).sha256 != old.sha256


def test_the_executable_bit_is_preserved_and_hashed(store: CodeStore, src: Path) -> None:
    stored = store.put_directory(src)
    assert os.stat(stored.path / "bin" / "tool").st_mode & 0o777 == 0o755
    assert os.stat(stored.path / "handler.py").st_mode & 0o777 == 0o644

    (src / "bin" / "tool").chmod(0o644)
    not_executable = store.put_directory(src)
    assert not_executable.sha256 != stored.sha256
    assert os.stat(not_executable.path / "bin" / "tool").st_mode & 0o111 == 0


def test_the_executable_bit_of_a_zip_entry_is_preserved(store: CodeStore) -> None:
    stored = store.put_zip(make_zip())
    assert os.access(stored.path / "bin" / "tool", os.X_OK)
    assert not os.access(stored.path / "handler.py", os.X_OK)


def test_a_zip_made_without_unix_modes_stores_plain_files(store: CodeStore) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        info = zipfile.ZipInfo("handler.py")
        info.create_system = 0  # made on Windows: no unix mode
        info.external_attr = 0
        archive.writestr(info, b"x = 1\n")
        archive.writestr("lib/", b"")  # a directory entry
    stored = store.put_zip(buf.getvalue())
    assert stored_files(stored.path) == {"handler.py": b"x = 1\n"}
    assert os.stat(stored.path / "handler.py").st_mode & 0o777 == 0o644


# --- what is packaged ---


def test_tooling_folders_are_never_packaged(store: CodeStore, src: Path) -> None:
    clean = store.put_directory(src)
    junk = {
        ".git/config": b"[core]\n",
        "__pycache__/handler.cpython-311.pyc": b"\0\0",
        "lib/__pycache__/util.cpython-311.pyc": b"\0\0",
        "node_modules/left-pad/index.js": b"module.exports = 1\n",
        ".serverless/state.json": b"{}",
        ".venv/bin/python": b"",
        "stray.pyc": b"\0",
        ".DS_Store": b"\0",
    }
    write_tree(src, junk, set())

    stored = store.put_directory(src)

    assert stored.sha256 == clean.sha256
    assert stored_files(stored.path) == FILES


def test_exclude_and_reinclude_patterns(store: CodeStore, src: Path) -> None:
    write_tree(
        src,
        {"docs/guide.md": b"guide", "docs/keep.md": b"keep", "notes.txt": b"n", "lib/a.txt": b"a"},
        set(),
    )

    stored = store.put_directory(src, ["!docs/**", "docs/keep.md", "!**.txt"])

    assert stored_files(stored.path) == {**FILES, "docs/keep.md": b"keep"}


@pytest.mark.parametrize(
    ("rel", "patterns", "expected"),
    [
        ("handler.py", [], True),
        ("docs/guide.md", ["!docs/**"], False),
        ("docs/guide.md", ["!docs"], False),  # a folder pattern excludes what is in it
        ("docs/guide.md", ["!docs/"], False),
        ("docs/keep.md", ["!docs/**", "docs/keep.md"], True),  # last match wins
        ("docs/keep.md", ["docs/keep.md", "!docs/**"], False),
        ("tests/unit/test_x.py", ["!tests/**"], False),
        ("notes.txt", ["!*.txt"], False),
        ("lib/a.txt", ["!*.txt"], True),  # `*` stays within one folder, as the Framework's
        ("lib/a.txt", ["!**/*.txt"], False),
        ("lib/deep/a.txt", ["!lib/**/a.txt"], False),
        ("model/m.onnx", ["!model/**", "model/*.{onnx,txt}"], True),
        ("model/m.bin", ["!model/**", "model/*.{onnx,txt}"], False),
        (".env", ["!.env*"], False),  # dot files match
        ("handler.py", ["!*.txt"], True),
        ("node_modules/x/index.js", ["node_modules/**"], False),  # cannot be re-included
        ("lib/.git/HEAD", [], False),
        ("lib/util.pyc", ["**"], False),
    ],
)
def test_included(rel: str, patterns: list[str], expected: bool) -> None:
    assert included(rel, patterns) is expected


def test_an_empty_package_is_stored(store: CodeStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    stored = store.put_directory(empty)
    assert stored.size == 0
    assert stored.path.is_dir()
    assert stored_files(stored.path) == {}


# --- crashes and failures leave nothing behind ---


def test_leftover_staging_folders_are_removed_when_the_store_opens(
    tmp_path: Path, src: Path
) -> None:
    root = tmp_path / "code"
    good = CodeStore(root).put_directory(src)
    # a deploy killed midway leaves its half-written staging folder
    crashed = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    (crashed / "lib").mkdir()
    (crashed / "lib" / "half.py").write_bytes(b"x = ")
    an_hour_ago = time.time() - LEFTOVER_AGE_S - 1
    os.utime(crashed, (an_hour_ago, an_hour_ago))
    # a deploy of another gateway on the same data dir, in progress: kept
    in_progress = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))

    reopened = CodeStore(root)

    assert staging_dirs(reopened) == [in_progress]
    assert entries(reopened) == sorted([good.sha256, in_progress.name])
    assert stored_files(good.path) == FILES


def test_a_failure_while_copying_a_folder_leaves_no_staging(
    store: CodeStore, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_store = CodeStore._store
    calls = []

    def failing_store(staging: Path, rel: str, *args: Any) -> None:
        calls.append(rel)
        if len(calls) == 2:
            raise OSError("disk full")
        real_store(staging, rel, *args)

    monkeypatch.setattr(CodeStore, "_store", staticmethod(failing_store))

    with pytest.raises(OSError, match="disk full"):
        store.put_directory(src)
    assert entries(store) == []


def test_a_folder_over_the_unzipped_limit_is_refused(
    store: CodeStore, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code_store, "UNZIPPED_CODE_LIMIT", 60)  # the tree is 92 bytes
    with pytest.raises(CodeTooLarge, match="Unzipped size must be smaller than 60 bytes"):
        store.put_directory(src)
    assert entries(store) == []


# --- zip validation ---


def corrupt_member_data(data: bytes, name: str) -> bytes:
    """Flip bytes inside the stored data of the (first) member `name`."""
    raw = bytearray(data)
    offset = 30 + len(name.encode())  # the local file header, then the data
    for i in range(offset, offset + 8):
        raw[i] ^= 0xFF
    return bytes(raw)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            make_zip({"/etc/cron.d/evil": b"x"}, set()), "has an absolute path", id="absolute"
        ),
        pytest.param(
            make_zip({"C:/evil.py": b"x"}, set()), "has an absolute path", id="drive-letter"
        ),
        pytest.param(
            make_zip({"lib/../../evil.py": b"x"}, set()),
            r"'lib/\.\./\.\./evil\.py' points outside the package \('\.\.'\)",
            id="dotdot",
        ),
        pytest.param(
            symlink_zip("lib/passwd", "../../etc/passwd"),
            "'lib/passwd' is a link pointing outside the package",
            id="symlink-up",
        ),
        pytest.param(
            symlink_zip("passwd", "/etc/passwd"),
            "'passwd' is a link pointing outside the package",
            id="symlink-absolute",
        ),
        pytest.param(
            make_zip({"a.py": b"1", "./a.py": b"2"}, set()), "'./a.py' appears twice", id="dup"
        ),
        pytest.param(b"this is not a zip", "Could not unzip uploaded file", id="not-a-zip"),
        pytest.param(make_zip()[:-30], "Could not unzip uploaded file", id="truncated"),
        pytest.param(
            corrupt_member_data(
                make_zip({"handler.py": b"x = 1\n" * 50}, set(), zipfile.ZIP_STORED),
                "handler.py",
            ),
            "Could not unzip handler.py",
            id="bad-crc",
        ),
    ],
)
def test_an_unsafe_or_broken_zip_is_refused(store: CodeStore, data: bytes, message: str) -> None:
    with pytest.raises(DeployError, match=message):
        store.put_zip(data)
    assert entries(store) == []


def test_a_zip_with_corrupt_compressed_data_is_refused(store: CodeStore) -> None:
    data = corrupt_member_data(make_zip({"handler.py": b"x = 1\n" * 1000}, set()), "handler.py")
    with pytest.raises(DeployError, match=r"Could not unzip handler\.py"):
        store.put_zip(data)
    assert entries(store) == []


def test_a_zip_declaring_more_than_the_unzipped_limit_is_refused(
    store: CodeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code_store, "UNZIPPED_CODE_LIMIT", 1000)
    # compresses to almost nothing, but declares 1200 bytes unzipped
    data = make_zip({"a.py": b"#" * 600, "b.py": b"#" * 600}, set())
    assert len(data) < 1000

    with pytest.raises(CodeTooLarge, match="Unzipped size must be smaller than 1000 bytes"):
        store.put_zip(data)
    assert entries(store) == []


def test_a_zip_just_under_the_unzipped_limit_is_accepted(
    store: CodeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code_store, "UNZIPPED_CODE_LIMIT", 1000)
    stored = store.put_zip(make_zip({"a.py": b"#" * 500, "b.py": b"#" * 500}, set()))
    assert stored.size == 1000


def test_an_oversize_upload_is_refused_before_unzipping(
    store: CodeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_zip()
    monkeypatch.setattr(code_store, "ZIPPED_CODE_LIMIT", len(data) - 1)

    with pytest.raises(CodeTooLarge, match=f"Zipped size must be smaller than {len(data) - 1}"):
        store.put_zip(data)
    assert entries(store) == []

    monkeypatch.setattr(code_store, "ZIPPED_CODE_LIMIT", len(data))
    assert stored_files(store.put_zip(data).path) == FILES


def test_a_link_inside_the_package_is_stored_as_a_copy_of_its_target(store: CodeStore) -> None:
    stored = store.put_zip(symlink_zip("alias.py", "handler.py"))
    assert (stored.path / "alias.py").read_bytes() == (stored.path / "handler.py").read_bytes()
    assert not (stored.path / "alias.py").is_symlink()
