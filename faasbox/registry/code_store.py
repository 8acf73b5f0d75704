"""Function code, stored content-addressed: `code/<sha256 of the tree>/`, written atomically.

A package (a folder or a zip) is copied into a temporary folder while its tree hash is
computed, then renamed into place in one step, so a half-written package is never visible
and storing the same code twice costs a hash and nothing more. The hash covers each file's
path, executable bit and content, so a folder and a zip of the same files share one copy.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from faasbox.errors import CodeTooLarge, DeployError
from faasbox.registry.models import UNZIPPED_CODE_LIMIT, ZIPPED_CODE_LIMIT

# Never part of a package: tooling state that Serverless would not ship either.
ALWAYS_EXCLUDED = {
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".serverless",
    ".faasbox",
    ".venv",
    "venv",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "node_modules",
    ".DS_Store",
}


@dataclass(frozen=True)
class StoredCode:
    sha256: str
    size: int  # bytes, unzipped
    path: Path


class _TreeHasher:
    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def add(self, rel: str, executable: bool, content: bytes) -> None:
        self._h.update(f"{rel}\0{int(executable)}\0{len(content)}\0".encode())
        self._h.update(content)
        self.size += len(content)
        if self.size > UNZIPPED_CODE_LIMIT:
            raise CodeTooLarge(f"Unzipped size must be smaller than {UNZIPPED_CODE_LIMIT} bytes")

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def included(rel: str, patterns: Sequence[str]) -> bool:
    """Serverless `package.patterns`: '!glob' excludes, 'glob' re-includes; last match wins."""
    parts = PurePosixPath(rel).parts
    if any(p in ALWAYS_EXCLUDED for p in parts) or rel.endswith(".pyc"):
        return False
    keep = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        if fnmatch.fnmatch(rel, glob) or fnmatch.fnmatch(rel, glob.rstrip("/") + "/*"):
            keep = not negate
    return keep


def package_files(root: Path, patterns: Sequence[str]) -> Iterator[tuple[str, Path]]:
    """The files of a package folder, as (relative posix path, path), in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ALWAYS_EXCLUDED)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if included(rel, patterns) and path.is_file():
                yield rel, path


class CodeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(".tmp-*"):  # from a deploy that crashed midway
            shutil.rmtree(leftover, ignore_errors=True)

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256

    def put_directory(self, src: Path, patterns: Sequence[str] = ()) -> StoredCode:
        hasher = _TreeHasher()
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            for rel, path in package_files(src, patterns):
                content = path.read_bytes()
                executable = bool(path.stat().st_mode & stat.S_IXUSR)
                hasher.add(rel, executable, content)
                self._write(staging, rel, content, executable)
            return self._commit(staging, hasher)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def put_zip(self, data: bytes) -> StoredCode:
        if len(data) > ZIPPED_CODE_LIMIT:
            raise CodeTooLarge(f"Zipped size must be smaller than {ZIPPED_CODE_LIMIT} bytes")
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as e:
            raise DeployError(f"Could not unzip uploaded file: {e}") from None
        members = _checked_members(archive)
        hasher = _TreeHasher()
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            for rel, info in sorted(members.items()):
                try:
                    content = archive.read(info)
                except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
                    raise DeployError(f"Could not unzip {rel}: {e}") from None
                executable = bool((info.external_attr >> 16) & stat.S_IXUSR)
                hasher.add(rel, executable, content)
                self._write(staging, rel, content, executable)
            return self._commit(staging, hasher)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @staticmethod
    def _write(staging: Path, rel: str, content: bytes, executable: bool) -> None:
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(0o755 if executable else 0o644)

    def _commit(self, staging: Path, hasher: _TreeHasher) -> StoredCode:
        sha = hasher.hexdigest()
        final = self.path_of(sha)
        if final.exists():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            with open(staging / ".complete", "w"):
                pass
            try:
                os.rename(staging, final)
            except OSError:  # a concurrent deploy of the same code got there first
                shutil.rmtree(staging, ignore_errors=True)
        return StoredCode(sha, hasher.size, final)


def _checked_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The regular files of a zip, refusing what could escape the code folder or explode."""
    members: dict[str, zipfile.ZipInfo] = {}
    declared = 0
    for info in archive.infolist():
        name = info.filename
        if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
            raise DeployError(f"Zip entry '{name}' has an absolute path")
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if ".." in parts:
            raise DeployError(f"Zip entry '{name}' points outside the package ('..')")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            target = archive.read(info).decode("utf-8", "replace")
            resolved = PurePosixPath(*parts[:-1], target)
            if target.startswith("/") or ".." in _normalized(resolved).parts[:1]:
                raise DeployError(f"Zip entry '{name}' is a link pointing outside the package")
            raise DeployError(f"Zip entry '{name}' is a symbolic link; store the file itself")
        if info.is_dir():
            continue
        declared += info.file_size
        if declared > UNZIPPED_CODE_LIMIT:
            raise CodeTooLarge(f"Unzipped size must be smaller than {UNZIPPED_CODE_LIMIT} bytes")
        rel = "/".join(parts)
        if rel in members:
            raise DeployError(f"Zip entry '{name}' appears twice")
        members[rel] = info
    return members


def _normalized(path: PurePosixPath) -> PurePosixPath:
    out: list[str] = []
    for part in path.parts:
        if part == "..":
            if out:
                out.pop()
            else:
                out.append("..")
        elif part != ".":
            out.append(part)
    return PurePosixPath(*out) if out else PurePosixPath(".")
