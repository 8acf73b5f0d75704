"""Code in a shared PostgreSQL database (faasbox/registry/shared_code.py): a gateway with a data
dir of its own gets the code, uploaded zips and layers of a deploy another gateway received."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from faasbox.registry.layers import LayerMeta
from faasbox.registry.models import FunctionConfig
from faasbox.registry.registry import Registry
from faasbox.storage import Database
from tests.postgres import PostgresServer


@pytest.fixture
def shared(postgres: PostgresServer) -> Iterator[Database]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.database(name)
    yield Database(postgres.url(name))
    postgres.drop(name)


def a_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_another_gateway_gets_the_code_it_did_not_receive(tmp_path: Path, shared: Database) -> None:
    first = Registry(tmp_path / "gateway-a", shared)
    src = tmp_path / "src"
    src.mkdir()
    (src / "handler.py").write_text("def hello(event, context):\n    return 1\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    folder_code = first.store_directory(src)
    layer = first.layers.publish(
        "lib", "us-east-1", first.store_zip(a_zip({"python/lib.py": "X = 1\n"})), LayerMeta()
    )
    uploaded = a_zip({"handler.py": "def hello(event, context):\n    return 2\n"})
    zip_code = first.store_zip(uploaded)
    first.deploy(
        [
            FunctionConfig(name="from-folder", handler="handler.hello", layers=(layer.arn,)),
            FunctionConfig(name="from-zip", handler="handler.hello"),
        ],
        {"from-folder": folder_code, "from-zip": zip_code},
    )
    first.publish_version("from-zip")

    second = Registry(tmp_path / "gateway-b", shared)  # an empty data dir of its own
    try:
        fn = second.get("from-folder")
        assert fn.code_dir.is_relative_to(tmp_path / "gateway-b")
        assert (fn.code_dir / "handler.py").read_text() == (src / "handler.py").read_text()
        assert (fn.code_dir / "run.sh").stat().st_mode & 0o111  # still executable
        assert (
            fn.opt_dir is not None and (fn.opt_dir / "python" / "lib.py").read_text() == "X = 1\n"
        )
        version = second.get("from-zip", "1")
        assert (version.code_dir / "handler.py").read_text().endswith("return 2\n")
        # The Lambda API hands out the zip as it was uploaded, from either gateway.
        assert second.package_of(version).path.read_bytes() == uploaded
        assert second.package_of(fn).sha256 == first.package_of(first.get("from-folder")).sha256
    finally:
        second.close()
        first.close()


def test_a_reload_brings_what_another_gateway_deployed_since(
    tmp_path: Path, shared: Database
) -> None:
    first = Registry(tmp_path / "gateway-a", shared)
    second = Registry(tmp_path / "gateway-b", shared)  # running before the deploy
    try:
        layer = first.layers.publish(
            "lib", "us-east-1", first.store_zip(a_zip({"python/lib.py": "X = 2\n"})), LayerMeta()
        )
        code = first.store_zip(a_zip({"handler.py": "def hello(event, context):\n    pass\n"}))
        first.deploy([FunctionConfig(name="late", handler="handler.hello", layers=(layer.arn,))],
                     code)  # fmt: skip
        assert "late" not in second.snapshot.latest
        second.refresh()
        fn = second.snapshot.latest["late"]
        assert (fn.code_dir / "handler.py").is_file()
        assert fn.opt_dir is not None and (fn.opt_dir / "python" / "lib.py").is_file()
    finally:
        second.close()
        first.close()
