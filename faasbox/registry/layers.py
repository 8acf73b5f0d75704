"""Lambda layers: named, numbered, immutable versions of a zip, and the /opt a function sees.

A layer version's content is stored by the code store (content-addressed, like function code:
the same files published twice are stored once); this module keeps what Lambda keeps about
each version (name, number, description, compatible runtimes, license) in its own table of the
registry's database, served from an in-memory snapshot like the functions.

Version numbers of a name are never reused, as on Lambda. DeleteLayerVersion hides a version
from the API (Get*, List*, attaching it to a function) but keeps its row and its content:
Lambda keeps a deleted version working for the functions already using it, and so does
faasbox, by resolving their ARNs with deleted versions included.

A function's layers are merged, in order (a later layer's file wins), into one read-only
folder, `opt/<sha256 of their content hashes>/`, built of hard links to the stored content
(no copy) the first time that combination is deployed; the worker's jail binds it at /opt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faasbox.config.spec import ACCOUNT_ID
from faasbox.errors import InvalidParameterValue, ResourceNotFound
from faasbox.lambda_.limits import UNZIPPED_CODE_LIMIT
from faasbox.registry import revision
from faasbox.registry.code_store import COMMIT_MARKER, CodeStore, StoredCode, remove_leftovers
from faasbox.storage import Database, Step, connect, migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    region TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    compatible_runtimes TEXT NOT NULL DEFAULT '[]',
    license_info TEXT NOT NULL DEFAULT '',
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    package_sha256 TEXT NOT NULL DEFAULT '',
    created_date TEXT NOT NULL,
    service TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);
"""
MIGRATIONS: list[Step] = [SCHEMA]
MAX_LAYERS = 5  # per function, as on Lambda
LAYER_NAME = re.compile(r"[a-zA-Z0-9_-]{1,140}")
# arn:aws:lambda:us-east-1:000000000000:layer:my-layer:3
LAYER_VERSION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z]{2}(-[a-z]+)+-\d{1,2}):(?P<account>\d{12}):"
    r"layer:(?P<name>[a-zA-Z0-9_-]+):(?P<version>[0-9]+)"
)


def layer_arn(region: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:layer:{name}"


@dataclass(frozen=True)
class LayerVersion:
    name: str
    version: int
    region: str
    description: str
    compatible_runtimes: tuple[str, ...]
    license_info: str
    code_sha256: str  # the tree hash of its content in the code store
    code_size: int  # bytes, unzipped
    package_sha256: str  # hex SHA-256 of the zip it was published as
    created_date: str
    service: str  # the serverless.yml service that published it; "" for the Lambda API
    deleted: bool = False

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.region, self.name)

    @property
    def arn(self) -> str:
        return f"{self.layer_arn}:{self.version}"


@dataclass(frozen=True)
class LayerMeta:
    """What a publisher says about a new version (PublishLayerVersion, or serverless.yml)."""

    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()
    license_info: str = ""


def _now() -> str:
    # Lambda's CreatedDate format: 2024-01-01T00:00:00.000+0000
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}+0000"


def not_found() -> ResourceNotFound:
    return ResourceNotFound("The resource you requested does not exist.")


class LayerStore:
    def __init__(self, data_dir: Path, code: CodeStore, database: Database | None = None) -> None:
        self.code = code
        self.opt_root = data_dir / "opt"
        self.opt_root.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.opt_root)
        self._db = connect(database or Database.open(None, data_dir), "layers")
        migrate(self._db, "layers", MIGRATIONS)
        revision.ensure(self._db)
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, int], LayerVersion] = self._load()

    # --- reads (memory only) ---

    def versions(self, name: str) -> list[LayerVersion]:
        """The live versions of a layer, newest first."""
        found = [v for (n, _), v in self._versions.items() if n == name and not v.deleted]
        return sorted(found, key=lambda v: -v.version)

    def latest_versions(self) -> list[LayerVersion]:
        """The newest live version of each layer, by name (ListLayers)."""
        newest: dict[str, LayerVersion] = {}
        for v in self._versions.values():
            if not v.deleted and (v.name not in newest or v.version > newest[v.name].version):
                newest[v.name] = v
        return [newest[n] for n in sorted(newest)]

    def get(self, name: str, version: int, *, include_deleted: bool = False) -> LayerVersion:
        found = self._versions.get((name, version))
        if found is None or (found.deleted and not include_deleted):
            raise not_found()
        return found

    def by_arn(self, arn: str, *, include_deleted: bool = False) -> LayerVersion:
        """A version by its ARN; InvalidParameterValue for what is not a layer version ARN,
        ResourceNotFound for one this faasbox never published (another account's too)."""
        match = LAYER_VERSION_ARN.fullmatch(arn)
        if match is None:
            raise InvalidParameterValue(
                f"Layer version {arn} is not a layer version ARN: expected "
                f"arn:aws:lambda:<region>:{ACCOUNT_ID}:layer:<name>:<version>"
            )
        found = self._versions.get((match["name"], int(match["version"])))
        if (
            match["account"] != ACCOUNT_ID
            or found is None
            or found.region != match["region"]
            or (found.deleted and not include_deleted)
        ):
            raise InvalidParameterValue(
                f"Layer version {arn} does not exist: publish it on this faasbox first "
                "(aws lambda publish-layer-version, or layers: in serverless.yml)"
            )
        return found

    def attachable(self, arns: Sequence[str], code_size: int) -> list[LayerVersion]:
        """The versions a function may use, in order; refuses more than MAX_LAYERS, a layer
        twice, an unknown ARN, and code with layers over 250 MB unzipped (as Lambda words it).
        Deleted versions stay usable: a function deployed with one keeps running."""
        if len(arns) > MAX_LAYERS:
            raise InvalidParameterValue(
                f"Cannot reference more than {MAX_LAYERS} layers (got {len(arns)})."
            )
        versions = [self.by_arn(arn, include_deleted=True) for arn in arns]
        names = [v.name for v in versions]
        if len(set(names)) != len(names):
            raise InvalidParameterValue(
                "Two different versions of the same layer are not allowed to be referenced "
                "in the same function."
            )
        total = code_size + sum(v.code_size for v in versions)
        if total > UNZIPPED_CODE_LIMIT:
            raise InvalidParameterValue(
                "Function code combined with layers exceeds the maximum allowed size of "
                f"{UNZIPPED_CODE_LIMIT} bytes. The actual size is {total} bytes."
            )
        return versions

    def contents(self) -> list[tuple[str, str]]:
        """(tree hash, zip hash) of every version's content, deleted ones too (functions
        keep using them): what a gateway needs in its code cache."""
        return [(v.code_sha256, v.package_sha256) for v in self._versions.values()]

    # --- writes ---

    def publish(
        self,
        name: str,
        region: str,
        code: StoredCode,
        meta: LayerMeta,
        *,
        service: str = "",
        reuse: bool = False,
    ) -> LayerVersion:
        """A new version of `name` holding `code`. With `reuse` (a serverless.yml deploy),
        the newest version when its content and metadata are the same: a redeploy of an
        unchanged layer publishes nothing."""
        if not LAYER_NAME.fullmatch(name):
            raise InvalidParameterValue(
                f"Layer name {name!r} must be 1-140 letters, digits, '-' or '_'"
            )
        with self._lock:
            if reuse:
                live = self.versions(name)
                if live and _same(live[0], region, code, meta):
                    return live[0]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (last,) = self._db.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM layer_versions WHERE name = ?", (name,)
                ).fetchone()
                version = LayerVersion(
                    name=name,
                    version=int(last) + 1,
                    region=region,
                    description=meta.description,
                    compatible_runtimes=tuple(meta.compatible_runtimes),
                    license_info=meta.license_info,
                    code_sha256=code.sha256,
                    code_size=code.size,
                    package_sha256=code.package_sha256,
                    created_date=_now(),
                    service=service,
                )
                self._db.execute(
                    "INSERT INTO layer_versions (name, version, region, description,"
                    " compatible_runtimes, license_info, code_sha256, code_size, package_sha256,"
                    " created_date, service) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        version.name,
                        version.version,
                        version.region,
                        version.description,
                        json.dumps(list(version.compatible_runtimes)),
                        version.license_info,
                        version.code_sha256,
                        version.code_size,
                        version.package_sha256,
                        version.created_date,
                        version.service,
                    ),
                )
                revision.bump(self._db)  # other gateways reload their layers
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._versions = self._load()
        return version

    def delete(self, name: str, version: int) -> None:
        """DeleteLayerVersion: gone from the API; functions using it keep it. Deleting a
        version that does not exist succeeds, as on Lambda."""
        with self._lock:
            self._db.execute(
                "UPDATE layer_versions SET deleted = 1 WHERE name = ? AND version = ?",
                (name, version),
            )
            revision.bump(self._db)
            self._versions = self._load()

    def reload(self) -> None:
        """Take the versions other gateways published or deleted (the registry calls this
        when the deploy revision moved)."""
        with self._lock:
            self._versions = self._load()

    def close(self) -> None:
        self._db.close()

    # --- /opt ---

    def opt_dir(self, arns: Sequence[str]) -> Path | None:
        """The merged /opt of a function's layers (built on first use), or None without
        layers or when one cannot be resolved (never on the invoke path: at deploy/load)."""
        if not arns:
            return None
        try:
            versions = [self.by_arn(arn, include_deleted=True) for arn in arns]
        except InvalidParameterValue:
            return None
        key = hashlib.sha256("\n".join(v.code_sha256 for v in versions).encode()).hexdigest()
        final = self.opt_root / key
        if final.exists():
            return final
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.opt_root))
        try:
            for v in versions:  # in order: a later layer's file replaces an earlier one's
                _link_tree(self.code.path_of(v.code_sha256), staging)
            for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
                folder.chmod(0o755)  # the function's own uid reads it through the bind mount
            try:
                os.rename(staging, final)
            except OSError:  # built concurrently by another deploy
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    # --- internals ---

    def _load(self) -> dict[tuple[str, int], LayerVersion]:
        versions: dict[tuple[str, int], LayerVersion] = {}
        for row in self._db.execute(
            "SELECT name, version, region, description, compatible_runtimes, license_info,"
            " code_sha256, code_size, package_sha256, created_date, service, deleted"
            " FROM layer_versions"
        ):
            (name, number, region, description, runtimes, license_info) = row[:6]
            (sha, size, package_sha, created, service, deleted) = row[6:]
            v = LayerVersion(
                name,
                number,
                region,
                description,
                tuple(json.loads(runtimes)),
                license_info,
                sha,
                size,
                package_sha,
                created,
                service,
                bool(deleted),
            )
            versions[(v.name, v.version)] = v
        return versions


def _same(v: LayerVersion, region: str, code: StoredCode, meta: LayerMeta) -> bool:
    return (
        v.region == region
        and v.code_sha256 == code.sha256
        and dataclasses.astuple(meta)
        == (v.description, tuple(v.compatible_runtimes), v.license_info)
    )


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of stored content `source` into `target`, replacing files of
    the same path; a copy where the two are not on one file system."""
    for dirpath, _, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        for name in filenames:
            if rel == Path(".") and name == COMMIT_MARKER:
                continue
            src = Path(dirpath) / name
            dst = target / rel / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            else:
                dst.unlink(missing_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
