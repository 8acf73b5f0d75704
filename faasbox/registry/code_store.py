"""Function code, stored content-addressed: `code/<sha256 of the tree>/`, written atomically.

A package (a folder or a zip) is copied into a temporary folder while its tree hash is
computed, then renamed into place in one step, so a half-written package is never visible
and storing the same code twice costs a hash and nothing more. The hash covers each file's
path, executable bit and content, so a folder and a zip of the same files share one copy.

An uploaded zip is checked before anything is written: no absolute paths, no `..`, no entry
twice or both a file and a folder; a symbolic link pointing inside the package is stored as a
copy of its target, one pointing outside is refused. Entries are inflated straight to disk a
megabyte at a time, the bytes counted as they are written (headers can lie about sizes), and
the upload is refused at the first byte over 250 MB unzipped: memory stays flat for any zip.
A zip of more than MAX_ZIP_ENTRIES entries is refused before zipfile parses its directory, and
zips are checked one at a time.

The Lambda API also needs the package *as a zip* (GetFunction's Code.Location, CodeSha256, the
base64 SHA-256 of that zip). `PackageStore` keeps, in `packages/<sha256>.zip`, each zip as it
was uploaded; code deployed from a folder has none, so its package is its canonical zip, built
from the stored files once and cached: the same bytes `faasbox.registry.packaging` builds from
the folder (paths in walk order, dated 1980-01-01, deflated, modes 0644/0755), so a function's
CodeSha256 is the same whether `faasbox serve` or `faasbox deploy` put it there.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from faasbox.errors import CodeTooLarge, DeployError, InvalidZip
from faasbox.lambda_.limits import UNZIPPED_CODE_LIMIT, ZIPPED_CODE_LIMIT

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


# Lambda's answer to a package it cannot unzip, whatever the cause.
UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."
COMMIT_MARKER = ".complete"  # written last into a stored package; not part of the code
MAX_LINK_HOPS = 40  # as Linux follows symbolic links
MAX_NAME_BYTES = 255  # a path component, as file systems allow
# Entries of an uploaded zip: each costs memory while it is checked, and an inode when stored.
MAX_ZIP_ENTRIES = 50_000
# A staging leftover (`.tmp-*`) this old is from a deploy that crashed; a younger one may be
# another gateway's deploy in progress on the same data dir.
LEFTOVER_AGE_S = 3600.0


@dataclass(frozen=True)
class StoredCode:
    sha256: str
    size: int  # bytes, unzipped
    path: Path
    package_sha256: str = ""  # hex SHA-256 of the zip it was uploaded as; "" from a folder


CHUNK = 1024 * 1024  # what is held in memory at once while a file is copied or hashed


def _too_large() -> CodeTooLarge:
    return CodeTooLarge(f"Unzipped size must be smaller than {UNZIPPED_CODE_LIMIT} bytes")


class _TreeHasher:
    """The tree hash, fed each stored file from disk in chunks (memory stays flat whatever
    the file's size); the size counts the bytes actually written, never a header's claim."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def reserve(self, count: int) -> None:
        """Count `count` more bytes written; CodeTooLarge at the first byte over the limit."""
        self.size += count
        if self.size > UNZIPPED_CODE_LIMIT:
            raise _too_large()

    def add(self, rel: str, executable: bool, stored: Path, length: int) -> None:
        self._h.update(f"{rel}\0{int(executable)}\0{length}\0".encode())
        with stored.open("rb") as f:
            while chunk := f.read(CHUNK):
                self._h.update(chunk)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


@functools.lru_cache(maxsize=512)
def glob_regex(glob: str) -> re.Pattern[str]:
    """A `package.patterns` glob as the Serverless Framework's matcher reads it: `**` any
    number of folders, `*` and `?` within one name, `[...]` a class, `{a,b}` either; dot
    files match. A glob naming a folder (`docs`, `docs/`) also matches what is inside it."""
    out: list[str] = []
    i, depth = 0, 0
    glob = glob.rstrip("/")
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in glob[i + 1 :]:
            end = glob.index("]", i + 1)
            body = glob[i + 1 : end].replace("\\", "\\\\")
            out.append(f"[^{body[1:]}]" if body.startswith("!") else f"[{body}]")
            i = end + 1
            continue
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    out.extend(")" * depth)
    return re.compile("".join(out) + "(?:/.*)?", re.DOTALL)


def included(
    rel: str, patterns: Sequence[str], excluded: AbstractSet[str] = ALWAYS_EXCLUDED
) -> bool:
    """Serverless `package.patterns`: '!glob' excludes, 'glob' re-includes; last match wins.
    `excluded` names (folders or files anywhere) are never part of a package."""
    parts = PurePosixPath(rel).parts
    if any(p in excluded for p in parts) or rel.endswith(".pyc"):
        return False
    keep = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        if glob_regex(glob).fullmatch(rel):
            keep = not negate
    return keep


def package_files(
    root: Path, patterns: Sequence[str], excluded: AbstractSet[str] = ALWAYS_EXCLUDED
) -> Iterator[tuple[str, Path]]:
    """The files of a package folder, as (relative posix path, path), in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in excluded)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if included(rel, patterns, excluded) and path.is_file():
                yield rel, path


def remove_leftovers(root: Path) -> None:
    """Remove what crashed deploys left in `root` (`.tmp-*` files or folders)."""
    now = time.time()
    for leftover in root.glob(".tmp-*"):
        try:
            if now - leftover.lstat().st_mtime < LEFTOVER_AGE_S:
                continue
        except FileNotFoundError:
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


class CodeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._zip_lock = threading.Lock()
        remove_leftovers(self.root)

    def ensure_local(self, sha256: str) -> Path:
        """The folder of stored code `sha256`, on this machine: another gateway stored it
        (the data dir is shared today; a database-backed code store fetches it here)."""
        path = self.path_of(sha256)
        if not path.is_dir():
            raise DeployError(
                f"code {sha256} deployed through another gateway is not in {self.root}: "
                "gateways must share the data dir"
            )
        return path

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256

    def put_directory(
        self,
        src: Path,
        patterns: Sequence[str] = (),
        excluded: AbstractSet[str] = ALWAYS_EXCLUDED,
        extra: Sequence[tuple[str, Path]] = (),
    ) -> StoredCode:
        """Store the package folder `src`, plus `extra` (path in the package, file: installed
        dependencies), the folder's own files winning over an extra of the same path."""
        hasher = _TreeHasher()
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            files = dict([*extra, *package_files(src, patterns, excluded)])
            # Hashed in path order, as put_zip does, so a folder and its zip share one copy.
            for rel, path in sorted(files.items()):
                executable = bool(path.stat().st_mode & stat.S_IXUSR)
                with path.open("rb") as source:
                    self._store(staging, rel, source, executable, hasher)
            return self._commit(staging, hasher)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def put_zip(self, data: bytes) -> StoredCode:
        if len(data) > ZIPPED_CODE_LIMIT:
            raise CodeTooLarge(f"Zipped size must be smaller than {ZIPPED_CODE_LIMIT} bytes")
        entries = central_directory_entries(data)
        if entries > MAX_ZIP_ENTRIES:
            raise CodeTooLarge(
                f"The zip has {entries} entries; the limit is {MAX_ZIP_ENTRIES}: package fewer "
                "files (leave out tests, docs and development dependencies)"
            )
        # One zip checked at a time: each holds its central directory in memory.
        with self._zip_lock:
            return self._put_zip(data)

    def restore_zip(self, data: bytes) -> StoredCode:
        """Unpack a zip this faasbox stored itself (faasbox.registry.shared_code), with the
        same checks but no zipped-size limit: a canonical zip of a 250 MB folder may be
        larger than an upload may be."""
        with self._zip_lock:
            return self._put_zip(data)

    def _put_zip(self, data: bytes) -> StoredCode:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except Exception as e:  # BadZipFile, and the odd ValueError/EOFError of a broken one
            raise InvalidZip(f"{UNZIP_FAILED} ({e})") from None
        members = _checked_members(archive)
        hasher = _TreeHasher()
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            for rel, info in sorted(members.items()):
                executable = bool((info.external_attr >> 16) & stat.S_IXUSR)
                # Inflated as it is written, a chunk at a time, whatever the headers claim.
                try:
                    with archive.open(info) as source:
                        self._store(staging, rel, source, executable, hasher)
                except (DeployError, OSError):
                    raise
                except Exception as e:  # bad CRC, corrupt deflate data, unsupported method...
                    raise InvalidZip(f"Could not unzip {rel}: {e}") from None
            stored = self._commit(staging, hasher)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return StoredCode(stored.sha256, stored.size, stored.path, hashlib.sha256(data).hexdigest())

    @staticmethod
    def _store(
        staging: Path, rel: str, source: IO[bytes], executable: bool, hasher: _TreeHasher
    ) -> None:
        """Copy `source` to `staging/rel` a chunk at a time, counting every byte against the
        unzipped limit as it is written, then hash the stored file."""
        target = staging / rel
        length = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                while chunk := source.read(CHUNK):
                    hasher.reserve(len(chunk))
                    length += len(chunk)
                    out.write(chunk)
        except OSError as e:  # a name too long, a file where a folder must be, ...
            raise DeployError(f"Cannot store '{rel}': {e.strerror}") from None
        target.chmod(0o755 if executable else 0o644)
        hasher.add(rel, executable, target, length)

    def _commit(self, staging: Path, hasher: _TreeHasher) -> StoredCode:
        sha = hasher.hexdigest()
        final = self.path_of(sha)
        if final.exists():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            with open(staging / COMMIT_MARKER, "w"):
                pass
            # A function runs as a uid of its own and reads its code through a bind mount
            # (the data dir above stays 0700): its folders must be world-readable.
            for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
                folder.chmod(0o755)
            try:
                os.rename(staging, final)
            except OSError:  # a concurrent deploy of the same code got there first
                shutil.rmtree(staging, ignore_errors=True)
        return StoredCode(sha, hasher.size, final)


def central_directory_entries(data: bytes) -> int:
    """How many entries the zip's central directory holds, counted before zipfile parses it
    (its headers' count can lie; zipfile reads as many as the directory's size holds, about
    600 bytes of memory each): the signatures in the directory's bytes. 0 when there is no
    end record (zipfile then refuses the file)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - (1 << 16) - 22))
    if end < 0:
        return 0
    size = int.from_bytes(data[end + 12 : end + 16], "little")
    stop = end
    locator = end - 20
    if locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        record = int.from_bytes(data[locator + 8 : locator + 16], "little")
        if data[record : record + 4] == b"PK\x06\x06":  # zip64: its own size and place
            size = int.from_bytes(data[record + 40 : record + 48], "little")
            stop = record
    return data.count(b"PK\x01\x02", max(0, stop - size), stop)


def _checked_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The files of a zip, by their path in the package, refusing what could escape the code
    folder or explode. A symbolic link pointing inside the package becomes a copy of its
    target (a file, or the files of a folder); one pointing outside is refused."""
    members: dict[str, zipfile.ZipInfo] = {}
    links: dict[str, str] = {}  # link path -> its target, resolved against the link's folder
    declared = 0
    for info in archive.infolist():
        name = info.filename
        if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
            raise DeployError(f"Zip entry '{name}' has an absolute path")
        if "\0" in name:
            raise DeployError(f"Zip entry {name!r} has a NUL character in its name")
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if ".." in parts:
            raise DeployError(f"Zip entry '{name}' points outside the package ('..')")
        if any(len(p.encode()) > MAX_NAME_BYTES for p in parts):
            raise DeployError(f"Zip entry '{name}' has a name longer than {MAX_NAME_BYTES} bytes")
        rel = "/".join(parts)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode) and info.create_system == 3:
            if rel in links or rel in members:
                raise DeployError(f"Zip entry '{name}' appears twice")
            links[rel] = _link_target(archive, info, parts)
            continue
        if info.is_dir() or not rel:
            continue
        declared += info.file_size
        if declared > UNZIPPED_CODE_LIMIT:  # a first check; what is inflated is counted too
            raise _too_large()
        if rel in members or rel in links:
            raise DeployError(f"Zip entry '{name}' appears twice")
        members[rel] = info
    for rel, target in links.items():
        for copy_rel, info in _link_copies(rel, target, members, links):
            declared += info.file_size
            if declared > UNZIPPED_CODE_LIMIT:
                raise _too_large()
            if copy_rel in members:
                raise DeployError(f"Zip entry '{copy_rel}' appears twice")
            members[copy_rel] = info
    _check_no_file_is_a_folder(members)
    return members


def _link_target(archive: zipfile.ZipFile, info: zipfile.ZipInfo, parts: tuple[str, ...]) -> str:
    """Where the link entry points, as a normalized path inside the package; refused if out."""
    name = info.filename
    if info.file_size > 4096:
        raise DeployError(f"Zip entry '{name}' is a link with a {info.file_size}-byte target")
    try:
        target = archive.read(info).decode("utf-8", "replace")
    except Exception as e:
        raise InvalidZip(f"Could not unzip {name}: {e}") from None
    resolved = _normalized(PurePosixPath(*parts[:-1], target))
    if target.startswith("/") or (resolved.parts[:1] == ("..",)):
        raise DeployError(f"Zip entry '{name}' is a link pointing outside the package")
    return "" if resolved == PurePosixPath(".") else resolved.as_posix()


def _link_copies(
    rel: str, target: str, members: dict[str, zipfile.ZipInfo], links: dict[str, str]
) -> list[tuple[str, zipfile.ZipInfo]]:
    """The files a link inside the package stands for: its target file, or every regular file
    under its target folder (links under that folder are not followed again)."""
    seen = {rel}
    while target in links:  # a link to a link
        if target in seen or len(seen) > MAX_LINK_HOPS:
            raise DeployError(f"Zip entry '{rel}' is a link that loops")
        seen.add(target)
        target = links[target]
    if target in members:
        return [(rel, members[target])]
    if not target or rel.startswith(f"{target}/"):
        raise DeployError(f"Zip entry '{rel}' is a link to a folder containing it")
    prefix = f"{target}/"
    found = [
        (rel + "/" + m[len(prefix) :], info) for m, info in members.items() if m.startswith(prefix)
    ]
    if not found:
        raise DeployError(f"Zip entry '{rel}' is a link to '{target}', which is not in the package")
    return found


def _check_no_file_is_a_folder(members: dict[str, zipfile.ZipInfo]) -> None:
    for rel in members:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder in members:
                raise DeployError(f"Zip entry '{rel}' is inside '{folder}', which is a file")


def _normalized(path: PurePosixPath) -> PurePosixPath:
    out: list[str] = []
    for part in path.parts:
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            else:
                out.append("..")
        elif part != ".":
            out.append(part)
    return PurePosixPath(*out) if out else PurePosixPath(".")


@dataclass(frozen=True)
class Package:
    """A deployment package as the Lambda API hands it out: a zip on disk and its digest."""

    sha256: str  # hex
    size: int  # bytes, zipped
    path: Path

    @property
    def sha256_base64(self) -> str:
        """Lambda's CodeSha256: the base64 of the SHA-256 of the zip."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


class PackageStore:
    """Zips by their SHA-256: `<sha256>.zip` as uploaded, and the canonical zip of stored code
    deployed from a folder, found again through `tree-<tree sha256>` (which names its zip)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.root)

    def path_of(self, sha256: str) -> Path:
        return self.root / f"{sha256}.zip"

    def get(self, sha256: str) -> Package | None:
        path = self.path_of(sha256)
        try:
            return Package(sha256, path.stat().st_size, path)
        except FileNotFoundError:
            return None

    def put(self, data: bytes) -> Package:
        """Keep an uploaded zip as it is (it was already checked by CodeStore.put_zip)."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.path_of(sha)
        if not path.exists():
            self._write_atomically(path, data)
        return Package(sha, len(data), path)

    def for_code(self, tree_sha256: str, code_dir: Path) -> Package:
        """The canonical zip of code stored at `code_dir`, built on first use and kept."""
        ref = self.root / f"tree-{tree_sha256}"
        try:
            known = self.get(ref.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            known = None
        if known is not None:
            return known
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.root)
        try:
            with os.fdopen(fd, "w+b") as out:
                write_canonical_zip(code_dir, out)
                out.seek(0)
                digest = hashlib.file_digest(out, "sha256").hexdigest()
                size = out.tell()
            path = self.path_of(digest)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._write_atomically(ref, digest.encode("ascii"))
        return Package(digest, size, path)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def canonical_files(code_dir: Path) -> Iterator[tuple[str, Path]]:
    """The files of stored code in the order `package_files` walks a folder (each folder's
    files, sorted, before its sorted subfolders), without the store's commit marker."""
    for dirpath, dirnames, filenames in os.walk(code_dir):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(code_dir).as_posix()
            if rel != COMMIT_MARKER and path.is_file():
                yield rel, path


def write_canonical_zip(code_dir: Path, out: IO[bytes]) -> None:
    """The zip `faasbox.registry.packaging` builds from the same files, byte for byte."""
    write_files_zip(canonical_files(code_dir), out)


def write_files_zip(files: Iterable[tuple[str, Path]], out: IO[bytes]) -> None:
    """The canonical zip of `files`: fixed dates and modes, so the same code always gives
    the same bytes, and the same CodeSha256."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, path in files:
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            mode = path.stat().st_mode
            info.external_attr = ((0o755 if mode & stat.S_IXUSR else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
