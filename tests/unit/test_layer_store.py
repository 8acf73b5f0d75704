"""Layer versions in the registry: numbering, content addressing, deletion, limits, /opt."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from faasbox.errors import InvalidParameterValue, ResourceNotFound
from faasbox.registry import FunctionConfig, Registry
from faasbox.registry.layers import LayerMeta
from faasbox.storage import Database


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buf.getvalue()


@pytest.fixture
def registry(tmp_path: Path, database: Database) -> Registry:
    return Registry(tmp_path / "data", database)


def publish(registry: Registry, name: str, text: str = "x", *, reuse: bool = False) -> str:
    code = registry.store_zip(make_zip({"python/mod.py": text}))
    return registry.layers.publish(name, "us-east-1", code, LayerMeta(), reuse=reuse).arn


def test_versions_count_up_and_are_never_reused(registry: Registry) -> None:
    first = publish(registry, "lib")
    second = publish(registry, "lib")  # the same content: still a new version, as on Lambda
    registry.layers.delete("lib", 2)
    third = publish(registry, "lib")

    assert first.endswith(":layer:lib:1") and second.endswith(":layer:lib:2")
    assert third.endswith(":layer:lib:3")
    assert [v.version for v in registry.layers.versions("lib")] == [3, 1]
    one, two = (registry.layers.get("lib", n, include_deleted=True) for n in (1, 2))
    assert one.code_sha256 == two.code_sha256  # stored once


def test_a_deploy_reuses_the_newest_version_when_nothing_changed(registry: Registry) -> None:
    assert publish(registry, "lib", reuse=True) == publish(registry, "lib", reuse=True)
    assert publish(registry, "lib", "changed", reuse=True).endswith(":2")


def test_a_deleted_version_is_gone_from_the_api_but_keeps_serving_its_functions(
    registry: Registry,
) -> None:
    arn = publish(registry, "lib")
    code = registry.store_zip(make_zip({"handler.py": "def h(e, c): pass\n"}))
    registry.create(FunctionConfig(name="f", handler="handler.h", layers=[arn]), code)
    registry.layers.delete("lib", 1)

    with pytest.raises(ResourceNotFound):
        registry.layers.get("lib", 1)
    with pytest.raises(InvalidParameterValue):
        registry.layers.by_arn(arn)
    opt = registry.get("f").opt_dir
    assert opt is not None
    assert (opt / "python" / "mod.py").read_text() == "x"


def test_attaching_checks_arns_count_duplicates_and_size(registry: Registry) -> None:
    arns = [publish(registry, f"l{i}") for i in range(6)]

    with pytest.raises(InvalidParameterValue, match="more than 5 layers"):
        registry.layers.attachable(arns, 0)
    with pytest.raises(InvalidParameterValue, match="same layer"):
        registry.layers.attachable([arns[0], arns[0]], 0)
    with pytest.raises(InvalidParameterValue, match="maximum allowed size"):
        registry.layers.attachable(arns[:1], 250 * 1024 * 1024)
    for wrong in (
        "arn:aws:lambda:us-east-1:123456789012:layer:l0:1",  # another account's
        "arn:aws:lambda:eu-west-1:000000000000:layer:l0:1",  # another region's
        "arn:aws:lambda:us-east-1:000000000000:layer:l0:9",
        "l0",
    ):
        with pytest.raises(InvalidParameterValue):
            registry.layers.attachable([wrong], 0)


def test_versions_survive_a_restart(tmp_path: Path, database: Database) -> None:
    registry = Registry(tmp_path / "data", database)
    arn = publish(registry, "lib")
    registry.close()

    again = Registry(tmp_path / "data", database)
    assert again.layers.by_arn(arn).version == 1
    assert publish(again, "lib").endswith(":2")
