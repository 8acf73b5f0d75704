"""The packager: which zips a service's deploy uploads, and what is in each."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from faasbox.config import load_service
from faasbox.errors import DeployError
from faasbox.registry.packaging import plan, write_packages


def service(tmp_path: Path, yaml: str, files: dict[str, str]) -> Path:
    root = tmp_path / "svc"
    for rel, content in {"serverless.yml": yaml, **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    return root


def names(data: bytes) -> set[str]:
    return set(zipfile.ZipFile(io.BytesIO(data)).namelist())


BASIC = {
    "handler.py": "",
    "other.py": "",
    "tests/test_x.py": "",
    ".gitignore": "",
    ".git/HEAD": "",
    "npm-debug.log": "",
    ".serverless/old.zip": "",
    "layer/python/lib.py": "",
    "layer/nodejs/node_modules/m/index.js": "",
}


def test_one_package_for_the_service_less_defaults_config_and_layer_folders(
    tmp_path: Path,
) -> None:
    root = service(
        tmp_path,
        "service: s\npackage:\n  patterns: ['!tests/**']\n"
        "layers:\n  lib:\n    path: layer\nfunctions:\n  a: {handler: handler.a}\n"
        "  b: {handler: other.b}\n",
        BASIC,
    )
    packages = plan(load_service(root))

    assert packages.functions == {}
    assert packages.service is not None and packages.service.file_name == "s.zip"
    assert names(packages.service.zip_bytes()) == {"handler.py", "other.py"}
    # A layer keeps its node_modules: nodejs/node_modules is what a Node.js layer is for.
    assert names(packages.layers["lib"].zip_bytes()) == {
        "python/lib.py",
        "nodejs/node_modules/m/index.js",
    }


def test_individually_gives_each_function_its_own_patterns(tmp_path: Path) -> None:
    root = service(
        tmp_path,
        "service: s\npackage:\n  individually: true\n  patterns: ['!**']\nfunctions:\n"
        "  a:\n    handler: handler.a\n    package: {patterns: ['handler.py']}\n"
        "  b:\n    handler: other.b\n    package: {patterns: ['other.py']}\n",
        BASIC,
    )
    packages = plan(load_service(root))

    assert packages.service is None
    assert {n: s.file_name for n, s in packages.functions.items()} == {
        "s-dev-a": "a.zip",
        "s-dev-b": "b.zip",
    }
    assert names(packages.functions["s-dev-a"].zip_bytes()) == {"handler.py"}
    assert names(packages.functions["s-dev-b"].zip_bytes()) == {"other.py"}


def test_an_artifact_is_uploaded_as_it_is(tmp_path: Path) -> None:
    prebuilt = io.BytesIO()
    with zipfile.ZipFile(prebuilt, "w") as archive:
        archive.writestr("built.py", "")
    root = service(
        tmp_path,
        "service: s\nfunctions:\n  a:\n    handler: built.a\n    package: {artifact: dist/a.zip}\n"
        "  b: {handler: handler.b}\n",
        {"handler.py": ""},
    )
    (root / "dist").mkdir()
    (root / "dist" / "a.zip").write_bytes(prebuilt.getvalue())
    packages = plan(load_service(root))

    assert packages.functions["s-dev-a"].zip_bytes() == prebuilt.getvalue()
    assert packages.service is not None  # b still needs the service's package
    (root / "dist" / "a.zip").unlink()
    with pytest.raises(DeployError, match=r"package\.artifact"):
        packages.functions["s-dev-a"].zip_bytes()


def test_write_packages_puts_every_zip_in_dot_serverless(tmp_path: Path) -> None:
    root = service(
        tmp_path,
        "service: s\nlayers:\n  lib: {path: layer}\nfunctions:\n  a: {handler: handler.a}\n",
        BASIC,
    )
    spec = load_service(root)

    written = write_packages(spec, plan(spec))
    again = write_packages(spec, plan(spec))  # the old zips in .serverless are not packaged

    assert sorted(p.name for p in written) == ["lib.zip", "s.zip"]
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in again]


def test_a_layer_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    root = service(
        tmp_path,
        "service: s\nlayers:\n  lib: {path: nowhere}\nfunctions:\n  a: {handler: handler.a}\n",
        {"handler.py": ""},
    )
    with pytest.raises(DeployError, match=r"layers\.lib\.path: no folder"):
        plan(load_service(root))


def test_a_layer_s_settings_are_read_and_unknown_ones_warned(tmp_path: Path) -> None:
    root = service(
        tmp_path,
        "service: s\nlayers:\n  my-deps:\n    path: deps\n    licenseInfo: MIT\n    retain: true\n"
        "    allowedAccounts: ['*']\n    package: {patterns: ['!tests/**']}\n"
        "functions:\n  a: {handler: handler.a, layers: [{Ref: MyDashdepsLambdaLayer}]}\n",
        {"handler.py": "", "deps/python/x.py": "", "deps/tests/t.py": ""},
    )
    spec = load_service(root)

    layer = spec.layers["my-deps"]
    assert (layer.license_info, layer.retain, layer.patterns) == ("MIT", True, ["!tests/**"])
    assert spec.functions["a"].layers == ["my-deps"]
    assert any("layers.my-deps.allowedAccounts" in w for w in spec.warnings)
    assert names(plan(spec).layers["my-deps"].zip_bytes()) == {"python/x.py"}
