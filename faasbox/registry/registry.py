"""The registry: deployed functions and their versions, in the database, served from memory.

The database (faasbox.storage: a SQLite file, or PostgreSQL shared by gateways) is the
record; every read on the hot path is served from an in-memory snapshot that is replaced
whole after each committed change, so the gateway never touches the database per request.
A deploy stores the code first (content-addressed, atomic rename; on PostgreSQL also as a zip
in the database, faasbox.registry.shared_code) and then commits all rows of the change in one
transaction: a crash at any point leaves either the old functions or the new ones, never a mix.

Writes of the Lambda API (create, update code or configuration with an expected RevisionId,
publish, delete a version) check their precondition and write under the same lock, so two
concurrent updates cannot both win. Version numbers are never reused while a function exists.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faasbox.errors import (
    InvalidParameterValue,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
)
from faasbox.registry import revision
from faasbox.registry.code_store import (
    ALWAYS_EXCLUDED,
    CodeStore,
    Package,
    PackageStore,
    StoredCode,
)
from faasbox.registry.layers import LayerStore
from faasbox.registry.models import (
    ACCOUNT_ID,
    LATEST,
    DeployedFunction,
    FunctionConfig,
    split_function_name,
)
from faasbox.registry.private import private_dir
from faasbox.registry.shared_code import SharedCode
from faasbox.storage import AddColumns, Database, IntegrityError, Step, connect, migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    package_sha256 TEXT NOT NULL DEFAULT '',
    last_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    config TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    package_sha256 TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name, version)
);
"""
MIGRATIONS: list[Step] = [
    SCHEMA,
    # Columns added before schema_migrations existed; data dirs made earlier may lack them.
    AddColumns(
        "functions",
        {
            "package_sha256": "TEXT NOT NULL DEFAULT ''",
            "last_version": "INTEGER NOT NULL DEFAULT 0",
        },
    ),
    AddColumns("versions", {"package_sha256": "TEXT NOT NULL DEFAULT ''"}),
]
DEPLOY_ATTEMPTS = 3
REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def _now() -> str:
    # Lambda's LastModified format: 2024-01-01T00:00:00.000+0000
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}+0000"


def not_found(
    name: str, qualifier: str | None = None, region: str = "us-east-1"
) -> ResourceNotFound:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
    if qualifier:
        arn += f":{qualifier}"
    return ResourceNotFound(f"Function not found: {arn}")


@dataclass(frozen=True)
class Snapshot:
    latest: dict[str, DeployedFunction] = field(default_factory=dict)
    versions: dict[tuple[str, str], DeployedFunction] = field(default_factory=dict)
    # A function's short key (its name in serverless.yml) when no other function shares it.
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeployChange:
    """What a deploy did, so the runtime can drain old workers of the changed functions."""

    deployed: list[DeployedFunction]
    changed: list[str]
    removed: list[str]
    # What a forced deploy took from other services, in words ("function x from service a").
    moved: list[str] = field(default_factory=list)
    # Published versions deleted on their own (DeleteFunction with a Qualifier): (name, version).
    removed_versions: list[tuple[str, str]] = field(default_factory=list)


# Checks a deploy's routes against the other services' functions (installed by the gateway,
# which knows routes): returns the events left to functions whose routes a forced deploy
# took, by name, and what moved; raises ResourceConflict. See faasbox.gateway.routes.
RouteGuard = Callable[
    [Sequence[FunctionConfig], Sequence[FunctionConfig], bool],
    tuple[dict[str, list[dict[str, Any]]], list[str]],
]


def owner_of(config: FunctionConfig) -> str:
    return f"service {config.service}" if config.service else "no service (the Lambda API)"


class Registry:
    def __init__(self, data_dir: Path, database: Database | str | None = None) -> None:
        """`database`: a PostgreSQL URL (or a SQLite file); default the data dir's file."""
        self.data_dir = data_dir
        private_dir(data_dir)
        self.database = Database.open(database, data_dir)
        self.code = CodeStore(data_dir / "code")
        self.packages = PackageStore(data_dir / "packages")
        self.db_path = data_dir / "registry.sqlite3"  # the default file, when it is SQLite
        self._db = connect(self.database, "registry")
        migrate(self._db, "registry", MIGRATIONS)
        revision.ensure(self._db)
        self.layers = LayerStore(data_dir, self.code, self.database)  # its own table
        # Code in the database too, when other gateways share it (faasbox.registry.shared_code).
        self.shared_code = (
            SharedCode(self.database, self.code, self.packages) if self.database.shared else None
        )
        self._lock = threading.Lock()
        self._listeners: list[Callable[[DeployChange], None]] = []
        self.route_guard: RouteGuard | None = None
        self.snapshot = self._load()

    # --- reads (hot path: memory only) ---

    def get(self, name: str, qualifier: str | None = None) -> DeployedFunction:
        """A function by name, serverless key, ARN or partial ARN; qualified by `qualifier` or
        by the name itself (`name:1`, `ARN:1`); ResourceNotFound if there is no such version."""
        snap = self.snapshot
        name = snap.aliases.get(name, name)
        name, derived = split_function_name(name)
        if derived is not None:
            if qualifier not in (None, "", derived):
                raise InvalidParameterValue(
                    "The derived qualifier from the function name does not match the "
                    "specified qualifier."
                )
            qualifier = derived
            name = snap.aliases.get(name, name)
        if qualifier in (None, "", LATEST):
            fn = snap.latest.get(name)
        else:
            fn = snap.versions.get((name, str(qualifier)))
        if fn is None:
            raise not_found(name, qualifier)
        return fn

    def all(self) -> list[DeployedFunction]:
        return sorted(self.snapshot.latest.values(), key=lambda f: f.name)

    def versions_of(self, name: str) -> list[DeployedFunction]:
        fn = self.get(name)
        found = [v for (n, _), v in self.snapshot.versions.items() if n == fn.name]
        return [fn, *sorted(found, key=lambda f: int(f.version))]

    def on_change(self, listener: Callable[[DeployChange], None]) -> None:
        self._listeners.append(listener)

    def package_of(self, fn: DeployedFunction) -> Package:
        """The zip of a function version as the Lambda API hands it out (reads the disk; never
        on the invoke path): the zip it was uploaded as, else the canonical zip of its code."""
        if fn.package_sha256:
            uploaded = self.packages.get(fn.package_sha256)
            if uploaded is not None:
                return uploaded
        return self.packages.for_code(fn.code_sha256, fn.code_dir)

    # --- writes ---

    def store_directory(
        self,
        src: Path,
        patterns: Sequence[str] = (),
        excluded: AbstractSet[str] = ALWAYS_EXCLUDED,
        extra: Sequence[tuple[str, Path]] = (),
    ) -> StoredCode:
        """Store a package folder (code_store.put_directory); in a shared database too."""
        code = self.code.put_directory(src, patterns, excluded, extra)
        if self.shared_code is not None:
            self.shared_code.publish(code)
        return code

    def store_zip(self, data: bytes) -> StoredCode:
        """Check, unzip and store a package; keep the zip itself for the Lambda API."""
        code = self.code.put_zip(data)
        self.packages.put(data)
        if self.shared_code is not None:
            self.shared_code.publish(code, data)
        return code

    def deploy(
        self,
        configs: Sequence[FunctionConfig],
        code: StoredCode | Mapping[str, StoredCode],
        *,
        replace_service: str | None = None,
        force: bool = False,
    ) -> DeployChange:
        """Point each function at `code` with its config, in one transaction; `code` is
        one package for all, or each function's own by name (`package.individually`).

        With `replace_service`, functions of that service missing from `configs` are removed,
        as `serverless deploy` removes functions dropped from serverless.yml. A function name
        or a route of another service is refused (ResourceConflict, naming both services)
        unless `force`, which moves it to this deploy's service.
        """
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise InvalidParameterValue(f"Function names must be unique: {names}")
        for attempt in range(DEPLOY_ATTEMPTS):
            try:
                return self._deploy_once(configs, code, replace_service, force)
            except ChangedElsewhere:
                # Another gateway created one of these names between this one's catch-up and
                # its commit (gateways started together with the same services): again, now
                # that it is in the snapshot.
                if attempt == DEPLOY_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _deploy_once(
        self,
        configs: Sequence[FunctionConfig],
        code: StoredCode | Mapping[str, StoredCode],
        replace_service: str | None,
        force: bool,
    ) -> DeployChange:
        names = [c.name for c in configs]
        changed: list[str] = []
        removed: list[str] = []
        with self._lock:
            caught = self._catch_up()
            current = self.snapshot.latest
            moved = self._take_names(configs, current, force)
            others = [
                fn.config
                for fn in current.values()
                if fn.name not in names
                and (replace_service is None or fn.config.service != replace_service)
            ]
            taken: dict[str, list[dict[str, Any]]] = {}
            if self.route_guard is not None:
                taken, moved_routes = self.route_guard(others, configs, force)
                moved += moved_routes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for cfg in configs:
                    own = code[cfg.name] if isinstance(code, Mapping) else code
                    if self._upsert_latest(current.get(cfg.name), cfg, own):
                        changed.append(cfg.name)
                for name, events in taken.items():
                    fn = current[name]
                    kept = dataclasses.replace(fn.config, events=events)
                    if self._upsert_latest(fn, kept, _code_of(fn)):
                        changed.append(name)
                if replace_service is not None:
                    for fn in current.values():
                        if fn.config.service == replace_service and fn.name not in names:
                            self._db.execute("DELETE FROM functions WHERE name = ?", (fn.name,))
                            removed.append(fn.name)
                revision.bump(self._db)
                self._db.execute("COMMIT")
            except IntegrityError:
                self._db.execute("ROLLBACK")
                raise _changed_elsewhere() from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.snapshot = self._load()
        self._notify_caught_up(caught)
        change = DeployChange([self.get(n) for n in names], changed, removed, moved)
        self._notify(change)
        return change

    @staticmethod
    def _take_names(
        configs: Sequence[FunctionConfig], current: dict[str, DeployedFunction], force: bool
    ) -> list[str]:
        """Refuse a function name another service owns (or, with `force`, say it moves)."""
        moved: list[str] = []
        for cfg in configs:
            old = current.get(cfg.name)
            if old is None or old.config.service == cfg.service:
                continue
            if not force:
                raise ResourceConflict(
                    f"Function {cfg.name} belongs to {owner_of(old.config)}; "
                    f"{owner_of(cfg)} cannot take it. Rename the function (or the service), "
                    "remove it first, or deploy with --force to move it."
                )
            moved.append(f"function {cfg.name} from {owner_of(old.config)}")
        return moved

    def create(self, config: FunctionConfig, code: StoredCode) -> DeployedFunction:
        """A new function (CreateFunction); ResourceConflict if the name is taken."""
        with self._lock:
            caught = self._catch_up()
            if config.name in self.snapshot.latest:
                self._notify_caught_up(caught)
                raise ResourceConflict(f"Function already exist: {config.name}")
            self._write(lambda: self._upsert_latest(None, config, code))
        self._notify_caught_up(caught)
        fn = self.get(config.name)
        self._notify(DeployChange([fn], [fn.name], []))
        return fn

    def update_config(
        self, name: str, config: FunctionConfig, *, expected_revision: str | None = None
    ) -> DeployedFunction:
        """Give $LATEST a new configuration and keep its code."""
        return self._update_latest(name, expected_revision, lambda fn: (config, _code_of(fn)))

    def update_code(
        self, name: str, code: StoredCode, *, expected_revision: str | None = None
    ) -> DeployedFunction:
        """Point $LATEST at new code and keep its configuration."""
        return self._update_latest(name, expected_revision, lambda fn: (fn.config, code))

    def delete(self, name: str, qualifier: str | None = None) -> None:
        """Remove a function with all its versions, or (qualified) one published version."""
        if LATEST in (qualifier, split_function_name(name)[1]):
            raise InvalidParameterValue(
                "$LATEST version cannot be deleted without deleting the function."
            )
        self.refresh()  # what another gateway created just now can be deleted here
        fn = self.get(name, qualifier)
        if fn.version != LATEST:
            with self._lock:
                self._write(
                    lambda: self._db.execute(
                        "DELETE FROM versions WHERE name = ? AND version = ?",
                        (fn.name, int(fn.version)),
                    )
                )
            # Retires that version's workers at once; the other versions' stay warm.
            self._notify(DeployChange([], [], [], removed_versions=[(fn.name, fn.version)]))
            return
        with self._lock:
            self._write(
                lambda: (
                    self._db.execute("DELETE FROM versions WHERE name = ?", (fn.name,)),
                    self._db.execute("DELETE FROM functions WHERE name = ?", (fn.name,)),
                )
            )
        self._notify(DeployChange([], [], [fn.name]))

    def publish_version(
        self, name: str, description: str = "", *, expected_revision: str | None = None
    ) -> DeployedFunction:
        """Snapshot $LATEST as the next version number; when nothing changed since the last
        published version, that version again (as Lambda does)."""
        self.refresh()
        fn = self.get(name)
        with self._lock:
            fn = self.get(fn.name)  # as of now, under the lock
            if expected_revision is not None and expected_revision != fn.revision_id:
                raise PreconditionFailed(REVISION_MISMATCH)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute(
                    "SELECT version, code_sha256, config, package_sha256 FROM versions"
                    " WHERE name = ? ORDER BY version DESC LIMIT 1",
                    (fn.name,),
                ).fetchone()
                if (
                    last
                    and last[1] == fn.code_sha256
                    and json.loads(last[2]) == fn.config.to_dict()
                    and last[3] == fn.package_sha256
                ):
                    self._db.execute("COMMIT")
                    return self.get(fn.name, str(last[0]))
                (counter,) = self._db.execute(
                    "SELECT last_version FROM functions WHERE name = ?", (fn.name,)
                ).fetchone()
                number = max(counter, last[0] if last else 0) + 1
                self._db.execute(
                    "INSERT INTO versions (name, version, config, code_sha256, code_size,"
                    " last_modified, revision_id, description, package_sha256)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        fn.name,
                        number,
                        json.dumps(fn.config.to_dict()),
                        fn.code_sha256,
                        fn.code_size,
                        _now(),
                        str(uuid.uuid4()),
                        description,
                        fn.package_sha256,
                    ),
                )
                self._db.execute(
                    "UPDATE functions SET last_version = ? WHERE name = ?", (number, fn.name)
                )
                revision.bump(self._db)
                self._db.execute("COMMIT")
            except IntegrityError as e:
                self._db.execute("ROLLBACK")
                raise ResourceConflict(str(e)) from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.snapshot = self._load()
        return self.get(fn.name, str(number))

    def refresh(self) -> DeployChange | None:
        """Take what other gateways committed (the deploy revision moved): reload the
        snapshot and tell the listeners what changed, as if the deploy had been made here;
        None when nothing this gateway serves changed."""
        with self._lock:
            change = self._catch_up()
        if change is not None:
            self._notify(change)
        return change

    def close(self) -> None:
        self.layers.close()
        if self.shared_code is not None:
            self.shared_code.close()
        self._db.close()

    # --- other gateways' writes ---

    def _catch_up(self) -> DeployChange | None:
        """Reload from the database and diff against the snapshot; the caller holds the lock
        and notifies. Writes call it first, so they check their preconditions against what
        every gateway committed, not only this one."""
        self.layers.reload()
        old, new = self.snapshot, self._load()
        deployed = [
            fn
            for name, fn in new.latest.items()
            if name not in old.latest or old.latest[name].revision_id != fn.revision_id
        ]
        removed = [name for name in old.latest if name not in new.latest]
        removed_versions = [
            key for key in old.versions if key not in new.versions and key[0] in new.latest
        ]
        self.snapshot = new
        if not deployed and not removed and not removed_versions:
            return None
        for fn in deployed:
            self.code.ensure_local(fn.code_sha256)
        return DeployChange(
            deployed, [fn.name for fn in deployed], removed, removed_versions=removed_versions
        )

    def _notify_caught_up(self, change: DeployChange | None) -> None:
        if change is not None:
            self._notify(change)

    # --- internals ---

    def _update_latest(
        self,
        name: str,
        expected_revision: str | None,
        change: Callable[[DeployedFunction], tuple[FunctionConfig, StoredCode]],
    ) -> DeployedFunction:
        self.refresh()  # another gateway's commits first: its functions, their RevisionIds
        fn = self.get(name)
        with self._lock:
            fn = self.get(fn.name)  # as of now, under the lock
            if expected_revision is not None and expected_revision != fn.revision_id:
                raise PreconditionFailed(REVISION_MISMATCH)
            config, code = change(fn)
            if config.name != fn.name:
                raise InvalidParameterValue(
                    f"A function cannot be renamed (from {fn.name} to {config.name})"
                )
            changed = self._write(lambda: self._upsert_latest(fn, config, code))
        updated = self.get(fn.name)
        if changed:
            self._notify(DeployChange([updated], [updated.name], []))
        return updated

    def _write(self, statements: Callable[[], Any]) -> Any:
        """Run `statements` in one transaction and reload the snapshot; the caller holds the
        lock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = statements()
            revision.bump(self._db)
            self._db.execute("COMMIT")
        except IntegrityError:
            self._db.execute("ROLLBACK")
            raise _changed_elsewhere() from None
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self.snapshot = self._load()
        return result

    def _upsert_latest(
        self, old: DeployedFunction | None, cfg: FunctionConfig, code: StoredCode
    ) -> bool:
        """Write $LATEST of `cfg.name`; False (and nothing written) if it would not change."""
        if (
            old is not None
            and old.code_sha256 == code.sha256
            and old.package_sha256 == code.package_sha256
            and old.config == cfg
        ):
            return False  # unchanged: keep its revision and its warm workers
        self.layers.attachable(cfg.layers, code.size)  # refuses unknown ARNs, > 5, > 250 MB
        # A new function is an INSERT, a change an UPDATE of the revision this gateway saw:
        # if another gateway created or changed it since this one's snapshot, the write
        # fails (ChangedElsewhere) rather than overwrite what it did not see.
        values = (
            json.dumps(cfg.to_dict()),
            code.sha256,
            code.size,
            _now(),
            str(uuid.uuid4()),
            code.package_sha256,
        )
        if old is None:
            self._db.execute(
                "INSERT INTO functions (config, code_sha256, code_size, last_modified,"
                " revision_id, package_sha256, name) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*values, cfg.name),
            )
        elif (
            self._db.execute(
                "UPDATE functions SET config = ?, code_sha256 = ?, code_size = ?,"
                " last_modified = ?, revision_id = ?, package_sha256 = ?"
                " WHERE name = ? AND revision_id = ?",
                (*values, cfg.name, old.revision_id),
            ).rowcount
            != 1
        ):
            raise _changed_elsewhere()
        return True

    def _notify(self, change: DeployChange) -> None:
        for listener in self._listeners:
            listener(change)

    def _row(self, version: str, row: Sequence[Any]) -> DeployedFunction:
        config_json, sha, size, modified, revision, package_sha = row
        config = FunctionConfig.from_dict(json.loads(config_json))
        return DeployedFunction(
            config=config,
            version=version,
            code_sha256=sha,
            code_dir=self.code.path_of(sha),
            code_size=size,
            last_modified=modified,
            revision_id=revision,
            package_sha256=package_sha,
            opt_dir=self.layers.opt_dir(config.layers),
        )

    def _load(self) -> Snapshot:
        function_rows = self._db.execute(
            "SELECT name, config, code_sha256, code_size, last_modified, revision_id,"
            " package_sha256 FROM functions"
        ).fetchall()
        version_rows = self._db.execute(
            "SELECT name, version, description, config, code_sha256, code_size, last_modified,"
            " revision_id, package_sha256 FROM versions"
        ).fetchall()
        if self.shared_code is not None:  # every version's code local before it is served
            contents = [
                *((r[2], r[6]) for r in function_rows),
                *((r[4], r[8]) for r in version_rows),
                *self.layers.contents(),
            ]
            self.shared_code.ensure_local([c[0] for c in contents], [c[1] for c in contents])
        latest: dict[str, DeployedFunction] = {}
        for name, *rest in function_rows:
            latest[name] = self._row(LATEST, rest)
        versions: dict[tuple[str, str], DeployedFunction] = {}
        for name, version, description, *rest in version_rows:
            fn = self._row(str(version), rest)
            if description:  # PublishVersion's Description is the version's own
                fn = dataclasses.replace(
                    fn, config=dataclasses.replace(fn.config, description=description)
                )
            versions[(name, str(version))] = fn
        keys: dict[str, list[str]] = {}
        for fn in latest.values():
            if fn.config.key and fn.config.key != fn.name:
                keys.setdefault(fn.config.key, []).append(fn.name)
        aliases = {k: v[0] for k, v in keys.items() if len(v) == 1 and k not in latest}
        return Snapshot(latest, versions, aliases)


class ChangedElsewhere(ResourceConflict):
    """A write met another gateway's commit of the same function (a name created twice)."""


def _changed_elsewhere() -> ChangedElsewhere:
    return ChangedElsewhere(
        "The function was changed through another gateway at the same time; try again."
    )


def _code_of(fn: DeployedFunction) -> StoredCode:
    return StoredCode(fn.code_sha256, fn.code_size, fn.code_dir, fn.package_sha256)
