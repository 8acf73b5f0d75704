"""Unit tests of faasbox.registry.registry: functions and versions, on SQLite (tmp_path) and
on PostgreSQL (the `database` fixture)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from faasbox.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from faasbox.registry import registry as registry_module
from faasbox.registry.code_store import StoredCode
from faasbox.registry.models import LATEST, FunctionConfig
from faasbox.registry.registry import DeployChange, Registry
from faasbox.storage import Database

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
LAST_MODIFIED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def config(key: str, service: str = "svc", **changes: object) -> FunctionConfig:
    return FunctionConfig(
        name=f"{service}-dev-{key}",
        handler=f"handler.{key}",
        service=service,
        key=key,
        stage="dev",
        **changes,  # type: ignore[arg-type]
    )


def store_code(registry: Registry, folder: Path, text: str = "VERSION = 1\n") -> StoredCode:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handler.py").write_text(
        f"{text}def hello(event, context):\n    return VERSION\n", encoding="utf-8"
    )
    return registry.store_directory(folder)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def registry(data: Path, database: Database) -> Iterator[Registry]:
    reg = Registry(data, database)
    yield reg
    reg.close()


@pytest.fixture
def code(registry: Registry, tmp_path: Path) -> StoredCode:
    return store_code(registry, tmp_path / "src")


def reopen(registry: Registry) -> Registry:
    registry.close()
    return Registry(registry.data_dir, registry.database)


# --- deploy and get ---


def test_a_deploy_survives_reopening(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello", memory_size=256, environment={"A": "1"})], code)
    before = registry.get("svc-dev-hello")

    again = reopen(registry)
    try:
        fn = again.get("svc-dev-hello")
        assert fn == before
        assert fn.version == LATEST
        assert fn.config.memory_size == 256
        assert fn.config.environment == {"A": "1"}
        assert fn.code_sha256 == code.sha256
        assert fn.code_size == code.size
        assert (fn.code_dir / "handler.py").read_text(encoding="utf-8").startswith("VERSION = 1")
        assert LAST_MODIFIED.match(fn.last_modified)
        assert fn.arn == f"{ARN}svc-dev-hello"
    finally:
        again.close()


def test_deploy_reports_what_changed(registry: Registry, code: StoredCode) -> None:
    change = registry.deploy([config("hello"), config("bye")], code)
    assert sorted(change.changed) == ["svc-dev-bye", "svc-dev-hello"]
    assert [f.name for f in change.deployed] == ["svc-dev-hello", "svc-dev-bye"]
    assert change.removed == []
    assert [f.name for f in registry.all()] == ["svc-dev-bye", "svc-dev-hello"]


def test_an_unchanged_redeploy_changes_nothing(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello")], code)
    before = registry.get("svc-dev-hello")

    change = registry.deploy([config("hello")], code)

    assert change.changed == []
    after = registry.get("svc-dev-hello")
    assert after.revision_id == before.revision_id
    assert after.last_modified == before.last_modified
    assert change.deployed == [after]


def test_a_config_change_gets_a_new_revision(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello"), config("bye")], code)
    hello = registry.get("svc-dev-hello")
    bye = registry.get("svc-dev-bye")

    change = registry.deploy([config("hello", timeout=10.0), config("bye")], code)

    assert change.changed == ["svc-dev-hello"]
    assert registry.get("svc-dev-hello").revision_id != hello.revision_id
    assert registry.get("svc-dev-hello").config.timeout == 10.0
    assert registry.get("svc-dev-bye").revision_id == bye.revision_id


def test_a_code_change_points_at_the_new_code(
    registry: Registry, code: StoredCode, tmp_path: Path
) -> None:
    registry.deploy([config("hello")], code)
    old = registry.get("svc-dev-hello")
    new_code = store_code(registry, tmp_path / "src", "VERSION = 2\n")

    change = registry.deploy([config("hello")], new_code)

    fn = registry.get("svc-dev-hello")
    assert change.changed == ["svc-dev-hello"]
    assert fn.code_sha256 == new_code.sha256 != old.code_sha256
    assert fn.revision_id != old.revision_id
    assert "VERSION = 2" in (fn.code_dir / "handler.py").read_text(encoding="utf-8")


def test_duplicate_names_are_refused_and_keep_the_old_functions(
    registry: Registry, code: StoredCode, tmp_path: Path
) -> None:
    registry.deploy([config("hello")], code)
    before = registry.get("svc-dev-hello")
    changes: list[DeployChange] = []
    registry.on_change(changes.append)
    new_code = store_code(registry, tmp_path / "src2", "VERSION = 2\n")

    with pytest.raises(InvalidParameterValue, match="Function names must be unique"):
        registry.deploy([config("hello"), config("hello", memory_size=512)], new_code)

    assert registry.get("svc-dev-hello") == before
    assert changes == []


def test_a_deploy_failing_midway_leaves_the_previous_functions(
    registry: Registry, code: StoredCode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.deploy([config("hello")], code)
    before = registry.get("svc-dev-hello")
    new_code = store_code(registry, tmp_path / "src2", "VERSION = 2\n")
    real_now = registry_module._now
    calls: list[int] = []

    def failing_now() -> str:
        calls.append(1)
        if len(calls) == 2:  # after the first row of the transaction was written
            raise RuntimeError("power cut")
        return real_now()

    monkeypatch.setattr(registry_module, "_now", failing_now)

    with pytest.raises(RuntimeError, match="power cut"):
        registry.deploy([config("hello", memory_size=512), config("new")], new_code)

    assert len(calls) == 2
    assert registry.get("svc-dev-hello") == before
    with pytest.raises(ResourceNotFound):
        registry.get("svc-dev-new")
    monkeypatch.undo()
    again = reopen(registry)
    try:
        assert again.get("svc-dev-hello") == before
        assert [f.name for f in again.all()] == ["svc-dev-hello"]
        # and the registry still takes deploys afterwards
        again.deploy([config("hello", memory_size=512)], new_code)
        assert again.get("svc-dev-hello").config.memory_size == 512
    finally:
        again.close()


def test_getting_a_missing_function_names_its_arn(registry: Registry, code: StoredCode) -> None:
    with pytest.raises(ResourceNotFound) as err:
        registry.get("nope")
    assert str(err.value) == f"Function not found: {ARN}nope"
    assert err.value.status == 404
    assert err.value.aws_type == "ResourceNotFoundException"

    registry.deploy([config("hello")], code)
    with pytest.raises(ResourceNotFound, match=re.escape(f"{ARN}svc-dev-hello:7")):
        registry.get("svc-dev-hello", "7")


@pytest.mark.parametrize("qualifier", [None, "", LATEST])
def test_latest_qualifiers(registry: Registry, code: StoredCode, qualifier: str | None) -> None:
    registry.deploy([config("hello")], code)
    assert registry.get("svc-dev-hello", qualifier).version == LATEST


def test_get_by_short_key_and_by_arn(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello")], code)
    fn = registry.get("svc-dev-hello")
    assert registry.get("hello") == fn
    assert registry.get(f"{ARN}svc-dev-hello") == fn
    assert registry.get(f"{ARN}svc-dev-hello", LATEST) == fn


def test_a_qualified_arn_selects_its_version(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello")], code)
    registry.publish_version("svc-dev-hello")
    registry.deploy([config("hello", memory_size=512)], code)

    fn = registry.get(f"{ARN}svc-dev-hello:1")

    assert fn.version == "1"
    assert fn.config.memory_size == 128


def test_a_short_key_shared_by_two_services_is_ambiguous(
    registry: Registry, code: StoredCode
) -> None:
    registry.deploy([config("hello", service="a")], code)
    assert registry.get("hello").name == "a-dev-hello"

    registry.deploy([config("hello", service="b")], code)

    with pytest.raises(ResourceNotFound, match=re.escape(f"{ARN}hello")):
        registry.get("hello")
    assert registry.get("a-dev-hello").config.service == "a"
    assert registry.get("b-dev-hello").config.service == "b"


def test_a_function_name_wins_over_another_functions_short_key(
    registry: Registry, code: StoredCode
) -> None:
    plain = FunctionConfig(name="hello", handler="handler.plain")
    registry.deploy([plain, config("hello")], code)
    assert registry.get("hello").config.handler == "handler.plain"
    assert registry.get("svc-dev-hello").config.handler == "handler.hello"


# --- versions ---


def test_publish_numbers_versions_and_reuses_an_unchanged_one(
    registry: Registry, code: StoredCode
) -> None:
    registry.deploy([config("hello")], code)

    v1 = registry.publish_version("svc-dev-hello")
    same = registry.publish_version("hello")
    registry.deploy([config("hello", memory_size=512)], code)
    v2 = registry.publish_version("svc-dev-hello", "bigger")

    assert v1.version == "1"
    assert same.version == "1"
    assert same.revision_id == v1.revision_id
    assert v2.version == "2"
    assert v1.qualified_arn == f"{ARN}svc-dev-hello:1"
    assert [f.version for f in registry.versions_of("svc-dev-hello")] == [LATEST, "1", "2"]


def test_a_published_version_is_immutable(
    registry: Registry, code: StoredCode, tmp_path: Path
) -> None:
    registry.deploy([config("hello")], code)
    registry.publish_version("svc-dev-hello")
    new_code = store_code(registry, tmp_path / "src2", "VERSION = 2\n")
    registry.deploy([config("hello", memory_size=1024)], new_code)

    v1 = registry.get("svc-dev-hello", "1")
    assert v1.config.memory_size == 128
    assert v1.code_sha256 == code.sha256
    assert "VERSION = 1" in (v1.code_dir / "handler.py").read_text(encoding="utf-8")
    assert registry.get("svc-dev-hello").config.memory_size == 1024


def test_versions_survive_reopening(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello")], code)
    v1 = registry.publish_version("svc-dev-hello")
    registry.deploy([config("hello", timeout=30.0)], code)
    v2 = registry.publish_version("svc-dev-hello")

    again = reopen(registry)
    try:
        assert again.get("svc-dev-hello", "1") == v1
        assert again.get("svc-dev-hello", "2") == v2
        assert again.get("svc-dev-hello", "2").config.timeout == 30.0
        assert again.publish_version("svc-dev-hello").version == "2"  # nothing changed
        again.deploy([config("hello", timeout=60.0)], code)
        assert again.publish_version("svc-dev-hello").version == "3"
    finally:
        again.close()


def test_publishing_a_missing_function_is_not_found(registry: Registry) -> None:
    with pytest.raises(ResourceNotFound, match="Function not found"):
        registry.publish_version("nope")


# --- delete, replace, update ---


def test_delete_removes_the_function_and_its_versions(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello"), config("bye")], code)
    registry.publish_version("svc-dev-hello")
    registry.deploy([config("hello", memory_size=256)], code)
    registry.publish_version("svc-dev-hello")
    changes: list[DeployChange] = []
    registry.on_change(changes.append)

    registry.delete("hello")

    assert changes == [DeployChange([], [], ["svc-dev-hello"])]
    for qualifier in (None, "1", "2"):
        with pytest.raises(ResourceNotFound):
            registry.get("svc-dev-hello", qualifier)
    assert [f.name for f in registry.all()] == ["svc-dev-bye"]

    again = reopen(registry)
    try:
        with pytest.raises(ResourceNotFound):
            again.get("svc-dev-hello", "1")
        # a function of the same name starts its versions afresh
        again.deploy([config("hello", memory_size=2048)], code)
        assert again.publish_version("svc-dev-hello").version == "1"
        assert again.get("svc-dev-hello", "1").config.memory_size == 2048
        with pytest.raises(ResourceNotFound):
            again.get("svc-dev-hello", "2")
    finally:
        again.close()


def test_deleting_one_version_tells_the_listeners_which(
    registry: Registry, code: StoredCode
) -> None:
    registry.deploy([config("hello")], code)
    registry.publish_version("svc-dev-hello")
    registry.deploy([config("hello", memory_size=256)], code)
    registry.publish_version("svc-dev-hello")
    changes: list[DeployChange] = []
    registry.on_change(changes.append)

    registry.delete("hello", "1")

    # The runtime retires the workers of version 1 only: $LATEST and version 2 stay warm.
    assert changes == [DeployChange([], [], [], removed_versions=[("svc-dev-hello", "1")])]
    with pytest.raises(ResourceNotFound):
        registry.get("svc-dev-hello", "1")
    assert registry.get("svc-dev-hello", "2").config.memory_size == 256


def test_deleting_a_missing_function_is_not_found(registry: Registry) -> None:
    with pytest.raises(ResourceNotFound, match=re.escape(f"{ARN}nope")):
        registry.delete("nope")


def test_replace_service_removes_dropped_functions_of_that_service_only(
    registry: Registry, code: StoredCode
) -> None:
    registry.deploy([config("hello"), config("bye")], code, replace_service="svc")
    registry.publish_version("svc-dev-bye")
    registry.deploy([config("other", service="other")], code)
    changes: list[DeployChange] = []
    registry.on_change(changes.append)

    change = registry.deploy([config("hello")], code, replace_service="svc")

    assert change.removed == ["svc-dev-bye"]
    assert change.changed == []
    assert changes == [change]
    assert [f.name for f in registry.all()] == ["other-dev-other", "svc-dev-hello"]
    with pytest.raises(ResourceNotFound):
        registry.get("svc-dev-bye", "1")
    again = reopen(registry)
    try:
        assert [f.name for f in again.all()] == ["other-dev-other", "svc-dev-hello"]
    finally:
        again.close()


def test_without_replace_service_other_functions_stay(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello"), config("bye")], code)
    change = registry.deploy([config("hello")], code)
    assert change.removed == []
    assert [f.name for f in registry.all()] == ["svc-dev-bye", "svc-dev-hello"]


def test_update_config_keeps_the_code(registry: Registry, code: StoredCode) -> None:
    registry.deploy([config("hello")], code)
    before = registry.get("svc-dev-hello")

    updated = registry.update_config("hello", config("hello", memory_size=3008))

    assert updated.config.memory_size == 3008
    assert updated.code_sha256 == before.code_sha256
    assert updated.code_dir == before.code_dir
    assert updated.revision_id != before.revision_id
    assert registry.get("svc-dev-hello") == updated


def test_listeners_hear_each_deploy(registry: Registry, code: StoredCode) -> None:
    heard: list[DeployChange] = []
    registry.on_change(heard.append)

    first = registry.deploy([config("hello")], code)
    second = registry.deploy([config("hello")], code)

    assert heard == [first, second]
    assert heard[0].changed == ["svc-dev-hello"]
    assert heard[0].deployed[0] == registry.get("svc-dev-hello")
    assert heard[1].changed == []


def test_the_data_dir_and_its_database_are_private(tmp_path: Path) -> None:
    import stat

    from faasbox.registry.access_keys import AccessKeyStore

    data_dir = tmp_path / "home" / ".faasbox"
    registry = Registry(data_dir)
    keys = AccessKeyStore(data_dir)
    registry.code.put_directory(Path(__file__).parent)  # some code, stored
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for name in ("registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"):
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
        # Code folders are readable by the function's own uid, through its jail's bind mount.
        for folder in (data_dir / "code").iterdir():
            assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    finally:
        registry.close()
        del keys


# --- another gateway on the same database ---


def test_another_gateways_deploys_reach_this_one_on_refresh(
    registry: Registry, code: StoredCode, data: Path, tmp_path: Path
) -> None:
    other = Registry(data, registry.database)
    heard: list[DeployChange] = []
    registry.on_change(heard.append)
    try:
        assert registry.refresh() is None  # nothing committed elsewhere
        other.deploy([config("hello"), config("bye")], code, replace_service="svc")
        with pytest.raises(ResourceNotFound):
            registry.get("svc-dev-hello")  # not yet: the snapshot is memory
        change = registry.refresh()
        assert change is not None
        assert sorted(change.changed) == ["svc-dev-bye", "svc-dev-hello"]
        assert registry.get("svc-dev-hello").code_sha256 == code.sha256
        assert heard == [change]
        assert registry.refresh() is None  # told once

        newer = store_code(other, tmp_path / "v2", "VERSION = 2\n")
        other.deploy([config("hello")], newer, replace_service="svc")
        change = registry.refresh()
        assert change is not None
        assert change.changed == ["svc-dev-hello"] and change.removed == ["svc-dev-bye"]
        assert [f.code_sha256 for f in change.deployed] == [newer.sha256]

        # A create through this one checks against what the other committed.
        other.create(config("solo"), code)
        with pytest.raises(ResourceConflict, match="already exist"):
            registry.create(config("solo"), code)
    finally:
        other.close()


def test_a_deploy_racing_another_gateways_create_of_the_same_name_is_retried(
    registry: Registry, code: StoredCode, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two gateways started together deploy the same new service: the one whose snapshot
    missed the other's commit meets the row on insert, catches up and deploys again."""
    other = Registry(data, registry.database)
    try:
        registry.refresh()
        other.deploy([config("hello")], code, replace_service="svc")
        real_catch_up = registry._catch_up
        calls: list[int] = []

        def late_catch_up() -> DeployChange | None:
            calls.append(1)
            if len(calls) == 1:
                return None  # the first catch-up came just before the other's commit
            return real_catch_up()

        monkeypatch.setattr(registry, "_catch_up", late_catch_up)
        change = registry.deploy([config("hello")], code, replace_service="svc")
        assert change.changed == []  # the same function and code: unchanged, on the retry
        assert registry.get("svc-dev-hello").revision_id == other.get("svc-dev-hello").revision_id
        assert len(calls) == 2
    finally:
        other.close()


def test_an_update_from_a_stale_snapshot_does_not_overwrite_another_gateways(
    registry: Registry,
    code: StoredCode,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = Registry(data, registry.database)
    try:
        registry.create(config("hello"), code)
        other.refresh()
        theirs = store_code(other, tmp_path / "theirs", "VERSION = 2\n")
        other.update_code("svc-dev-hello", theirs)
        # This gateway has not followed yet (its refresh comes just after its write's check).
        monkeypatch.setattr(registry, "refresh", lambda: None)
        mine = store_code(registry, tmp_path / "mine", "VERSION = 3\n")
        with pytest.raises(ResourceConflict, match="another gateway"):
            registry.update_code("svc-dev-hello", mine)
        other.refresh()
        assert other.get("svc-dev-hello").code_sha256 == theirs.sha256
    finally:
        other.close()
