"""Layers in real workers, jailed (when this machine can) and unjailed (`--no-isolation`):
what a function sees of /opt, a `provided` runtime's bootstrap shipped as a layer, and
`invoke local` emulating /opt from the service's layer folders."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from faasbox.config import load_service
from faasbox.execution.invoker import Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry import FunctionConfig, Registry
from faasbox.registry.layers import LayerMeta
from faasbox.registry.services import deploy_service
from tests.support import JAILED, ROOT, SERVICES, clean_env, run_with_invoker

ARN_PARAM = "sharedLayerArn"


def make_zip(files: dict[str, str], executable: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            archive.writestr(info, content)
    return buf.getvalue()


def publish(registry: Registry, name: str, files: dict[str, str], *executable: str) -> str:
    code = registry.store_zip(make_zip(files, executable))
    return registry.layers.publish(name, "us-east-1", code, LayerMeta()).arn


def deploy_layered(registry: Registry) -> None:
    shared = publish(
        registry,
        "shared-text",
        {"python/lib/python3.11/site-packages/shared_text.py": "TEXT = 'shared'\n"},
    )
    spec = load_service(SERVICES / "layers", params={ARN_PARAM: shared})
    deploy_service(registry, spec)


def invoke(registry: Registry, settings: RuntimeSettings, name: str, event: Any = None) -> Any:
    async def scenario(invoker: Invoker) -> Any:
        result = await invoker.invoke(registry.get(name), json.dumps(event or {}).encode())
        assert result.function_error is None, result.payload
        return json.loads(result.payload)

    return run_with_invoker(settings, scenario)


@pytest.mark.parametrize("jailed", [True, False] if JAILED else [False])
def test_a_worker_finds_its_layers_jailed_at_opt_and_unjailed_in_their_folder(
    data_dir: Path, jailed: bool
) -> None:
    registry = Registry(data_dir)
    deploy_layered(registry)
    settings = RuntimeSettings(data_dir=data_dir, jail=jailed)

    seen = invoke(registry, settings, "layered-dev-probe")
    fn = registry.get("layered-dev-probe")

    opt = "/opt" if jailed else str(fn.opt_dir)
    assert fn.opt_dir is not None and fn.opt_dir.is_relative_to(data_dir)
    assert seen["opt"] == opt
    assert seen["greeting"] == "hello from the greeting layer, layers"
    assert seen["shared"] == "shared"
    assert seen["tool"] == f"{opt}/bin/greeting-tool"
    assert seen["ld_library_path"].endswith(f":{opt}/lib")
    if jailed:
        assert seen["opt_writable"] is False


def test_layers_merge_in_order_a_later_layer_s_file_winning(data_dir: Path) -> None:
    registry = Registry(data_dir)
    first = publish(registry, "first", {"python/which.py": "NAME = 'first'\n", "a.txt": "a"})
    second = publish(registry, "second", {"python/which.py": "NAME = 'second'\n"})
    code = registry.store_zip(
        make_zip({"handler.py": "import which\ndef handler(e, c):\n    return which.NAME\n"})
    )
    config = FunctionConfig(name="merged", handler="handler.handler", layers=[first, second])
    registry.create(config, code)
    settings = RuntimeSettings(data_dir=data_dir, jail=JAILED)

    assert invoke(registry, settings, "merged") == "second"
    opt = registry.get("merged").opt_dir
    assert opt is not None and (opt / "a.txt").read_text() == "a"


def test_a_provided_function_runs_the_bootstrap_of_its_layer(data_dir: Path) -> None:
    registry = Registry(data_dir)
    bootstrap = (SERVICES / "provided" / "bash" / "bootstrap").read_text()
    runtime = publish(registry, "bash-runtime", {"bootstrap": bootstrap}, "bootstrap")
    script = (SERVICES / "provided" / "bash" / "function.sh").read_text()
    code = registry.store_zip(make_zip({"function.sh": script}))
    config = FunctionConfig(
        name="bash-from-layer",
        handler="function.handler",
        runtime="provided.al2023",
        layers=[runtime],
    )
    registry.create(config, code)

    for jailed in [True, False] if JAILED else [False]:
        settings = RuntimeSettings(data_dir=data_dir, jail=jailed)
        seen = invoke(registry, settings, "bash-from-layer", {"n": 1})
        assert seen == {"echo": {"n": 1}, "runtime": "bash"}


def test_invoke_local_emulates_opt_with_the_service_s_layer_folders(tmp_path: Path) -> None:
    folder = tmp_path / "layers"
    shutil.copytree(SERVICES / "layers", folder)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "faasbox",
            "invoke",
            "local",
            "-f",
            "shout",
            "-c",
            str(folder),
            "-d",
            '{"text": "local"}',
            "--param",
            f"{ARN_PARAM}=arn:aws:lambda:us-east-1:000000000000:layer:elsewhere:1",
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=ROOT,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["shouted"] == "LOCAL!"
    # Resolved through the stand-in /opt, a link to the layer's own file.
    assert seen["from"].endswith("/nodejs/node_modules/shout/index.js")


def test_the_in_process_deploy_publishes_the_requirements_layer(data_dir: Path) -> None:
    """`faasbox serve`'s own deploy of a `custom.pythonRequirements.layer: true` service."""
    registry = Registry(data_dir)
    deploy_service(registry, load_service(SERVICES / "requirements-layer"))
    [layer] = registry.layers.versions("requirements-layer-dev-python-requirements")
    fn = registry.get("requirements-layer-dev-unlisted")
    assert fn.config.layers == [layer.arn]
    settings = RuntimeSettings(data_dir=data_dir, jail=JAILED)
    seen = invoke(registry, settings, "requirements-layer-dev-unlisted")
    assert seen["pydantic"] == "1.10.22"
    assert "/python/pydantic/__init__." in seen["pydantic_file"]
    assert "/dependencies/" not in seen["pydantic_file"]  # the layer's copy, not the cache's
