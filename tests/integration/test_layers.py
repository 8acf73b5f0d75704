"""Layers and packaging against a real server: boto3, the AWS CLI and the faasbox CLI.

One server for the module. tests/services/layers has a layer of its own (referenced by
`{Ref: GreetingLambdaLayer}`), a Node.js `nodejs/node_modules` layer, and takes the ARN of a
layer published with boto3 as `--param sharedLayerArn=...`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from tests.support import (
    EXAMPLES,
    JAILED,
    ROOT,
    RunningServer,
    aws_lambda_cli,
    faasbox_cli,
    lambda_client,
)

SERVICE = ROOT / "tests" / "services" / "layers"
ROLE = "arn:aws:iam::123456789012:role/lambda-role"
SHARED_TEXT = "text from a layer published with boto3"


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buf.getvalue()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# The layout pip --target makes for python3.x, which Lambda puts on sys.path too.
SHARED_ZIP = make_zip(
    {
        f"python/lib/python{sys.version_info.major}.{sys.version_info.minor}"
        f"/site-packages/shared_text.py": f"TEXT = {SHARED_TEXT!r}\n"
    }
)


def error_of(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**kwargs)
    error = caught.value.response
    return (
        error["Error"]["Code"],
        error["ResponseMetadata"]["HTTPStatusCode"],
        error["Error"]["Message"],
    )


def invoke(client: Any, name: str, payload: dict[str, Any] | None = None) -> Any:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode())
    body = response["Payload"].read()
    assert "FunctionError" not in response, body
    return json.loads(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer([EXAMPLES / "hello"], tmp_path_factory.mktemp("data")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Any:
    return lambda_client(server.url, server.credentials)


@pytest.fixture(scope="module")
def shared_layer(client: Any) -> dict[str, Any]:
    """A layer published with boto3, as a team shares one between services."""
    return dict(
        client.publish_layer_version(
            LayerName="shared-text",
            Description="shared text",
            Content={"ZipFile": SHARED_ZIP},
            CompatibleRuntimes=["python3.11"],
            LicenseInfo="Apache-2.0",
        )
    )


@pytest.fixture(scope="module")
def deployed(
    server: RunningServer, shared_layer: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """tests/services/layers, copied and deployed with `faasbox deploy`."""
    folder = tmp_path_factory.mktemp("svc") / "layers"
    shutil.copytree(SERVICE, folder)
    done = faasbox_cli(
        server,
        "deploy",
        str(folder),
        "--param",
        f"sharedLayerArn={shared_layer['LayerVersionArn']}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "layer greeting: arn:aws:lambda:us-east-1:000000000000:layer:greeting-dev:1" in done.stdout
    )
    return folder


def test_publish_layer_version_answers_as_lambda_does(shared_layer: dict[str, Any]) -> None:
    assert shared_layer["LayerArn"] == "arn:aws:lambda:us-east-1:000000000000:layer:shared-text"
    assert shared_layer["LayerVersionArn"] == f"{shared_layer['LayerArn']}:1"
    assert shared_layer["Version"] == 1
    assert shared_layer["Description"] == "shared text"
    assert shared_layer["CompatibleRuntimes"] == ["python3.11"]
    assert shared_layer["LicenseInfo"] == "Apache-2.0"
    assert shared_layer["Content"]["CodeSha256"] == sha256_b64(SHARED_ZIP)
    assert shared_layer["Content"]["CodeSize"] == len(SHARED_ZIP)


def test_a_function_sees_its_ref_layer_and_its_arn_layer_at_opt(
    client: Any, deployed: Path
) -> None:
    seen = invoke(client, "layered-dev-probe")

    assert seen["greeting"] == "hello from the greeting layer, layers"
    assert seen["shared"] == SHARED_TEXT
    # Beside both layers, the two packages of its requirements.txt, installed into its code.
    assert seen["requirements"]["tabulate"] == "0.9.0"
    assert seen["requirements"]["humanize"] == "3.0 MB"
    assert seen["requirements"]["from"].startswith(seen["task_root"])
    opt = seen["opt"]
    if JAILED:
        assert opt == "/opt"
        assert seen["opt_writable"] is False  # mounted read-only
    # Lambda's order: the code, then each layer's python/lib/python3.x/site-packages, python/.
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    path = seen["sys_path"]
    start = path.index(seen["task_root"])
    assert path[start + 1 : start + 3] == [
        f"{opt}/python/lib/python{version}/site-packages",
        f"{opt}/python",
    ]
    assert seen["tool"] == f"{opt}/bin/greeting-tool"
    assert seen["tool_output"] == "greeting-tool from the layer's bin/\n"
    assert seen["ld_library_path"].split(":")[-1] == f"{opt}/lib"
    assert seen["library_present"] is True
    # package.patterns kept docs/ out; the layer's folder ships as the layer, not as code.
    assert seen["packaged_docs"] is False
    assert seen["packaged_layer"] is False


def test_a_node_function_requires_a_module_of_its_nodejs_layer(client: Any, deployed: Path) -> None:
    seen = invoke(client, "layered-dev-shout", {"text": "quiet"})

    assert seen["shouted"] == "QUIET!"
    assert seen["from"].endswith("/nodejs/node_modules/shout/index.js")
    if JAILED:
        assert seen["from"] == "/opt/nodejs/node_modules/shout/index.js"


def test_get_function_lists_the_layers_and_list_layers_the_service_layer(
    client: Any, deployed: Path, shared_layer: dict[str, Any]
) -> None:
    config = client.get_function(FunctionName="layered-dev-probe")["Configuration"]
    greeting = client.list_layer_versions(LayerName="greeting-dev")["LayerVersions"]

    assert [v["Version"] for v in greeting] == [1]
    assert greeting[0]["Description"].startswith("Greetings")
    assert greeting[0]["LicenseInfo"] == "MIT"
    assert config["Layers"] == [
        {"Arn": greeting[0]["LayerVersionArn"], "CodeSize": config["Layers"][0]["CodeSize"]},
        {"Arn": shared_layer["LayerVersionArn"], "CodeSize": len(SHARED_ZIP)},
    ]
    assert config["Layers"][0]["CodeSize"] > 0
    names = {layer["LayerName"] for layer in client.list_layers()["Layers"]}
    assert {"greeting-dev", "nodelibs", "shared-text"} <= names
    python_only = client.list_layers(CompatibleRuntime="nodejs20.x")["Layers"]
    assert [layer["LayerName"] for layer in python_only] == ["nodelibs"]
    by_arn = client.get_layer_version_by_arn(Arn=shared_layer["LayerVersionArn"])
    assert by_arn["Content"]["CodeSha256"] == shared_layer["Content"]["CodeSha256"]


def test_a_redeploy_publishes_a_layer_version_only_when_the_layer_changed(
    server: RunningServer, client: Any, deployed: Path, shared_layer: dict[str, Any]
) -> None:
    arn = f"sharedLayerArn={shared_layer['LayerVersionArn']}"
    again = faasbox_cli(server, "deploy", str(deployed), "--param", arn)
    assert again.returncode == 0, again.stderr
    assert [
        v["Version"] for v in client.list_layer_versions(LayerName="greeting-dev")["LayerVersions"]
    ] == [1]

    (deployed / "layers" / "greeting" / "python" / "greeting.py").write_text(
        "def hello(name):\n    return f'hello again, {name}'\n"
    )
    changed = faasbox_cli(server, "deploy", str(deployed), "--param", arn)
    assert changed.returncode == 0, changed.stderr

    # Version 2 replaces version 1 (retain is false), and the function uses it at once.
    versions = client.list_layer_versions(LayerName="greeting-dev")["LayerVersions"]
    assert [v["Version"] for v in versions] == [2]
    assert invoke(client, "layered-dev-probe")["greeting"] == "hello again, layers"


def test_the_layer_api_with_the_aws_cli(server: RunningServer, tmp_path: Path) -> None:
    layer_zip = tmp_path / "layer.zip"
    layer_zip.write_bytes(make_zip({"python/cli_layer.py": "X = 1\n"}))

    published = aws_lambda_cli(
        server,
        "publish-layer-version",
        "--layer-name",
        "cli-layer",
        "--zip-file",
        f"fileb://{layer_zip}",
        "--compatible-runtimes",
        "python3.11",
    )
    assert published.returncode == 0, published.stderr
    version = json.loads(published.stdout)
    got = aws_lambda_cli(
        server, "get-layer-version", "--layer-name", "cli-layer", "--version-number", "1"
    )
    listed = aws_lambda_cli(server, "list-layer-versions", "--layer-name", "cli-layer")
    deleted = aws_lambda_cli(
        server, "delete-layer-version", "--layer-name", "cli-layer", "--version-number", "1"
    )
    gone = aws_lambda_cli(
        server, "get-layer-version", "--layer-name", "cli-layer", "--version-number", "1"
    )

    assert version["LayerVersionArn"].endswith(":layer:cli-layer:1")
    assert json.loads(got.stdout)["Content"]["CodeSha256"] == sha256_b64(layer_zip.read_bytes())
    assert [v["Version"] for v in json.loads(listed.stdout)["LayerVersions"]] == [1]
    assert deleted.returncode == 0, deleted.stderr
    assert gone.returncode != 0
    assert "ResourceNotFoundException" in gone.stderr


def test_layer_errors_are_shaped_as_lambda_s(client: Any, shared_layer: dict[str, Any]) -> None:
    code = make_zip({"handler.py": "def handler(event, context):\n    return 1\n"})
    unknown = "arn:aws:lambda:us-east-1:000000000000:layer:never-published:1"

    missing = error_of(client.get_layer_version, LayerName="never-published", VersionNumber=1)
    bad_name = error_of(client.list_layer_versions, LayerName="bad name!")
    attach_unknown = error_of(
        client.create_function,
        FunctionName="uses-unknown-layer",
        Runtime="python3.11",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": code},
        Layers=[unknown],
    )
    six = [shared_layer["LayerVersionArn"]] * 6
    too_many = error_of(
        client.create_function,
        FunctionName="uses-six-layers",
        Runtime="python3.11",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": code},
        Layers=six,
    )
    not_a_zip = error_of(
        client.publish_layer_version, LayerName="broken", Content={"ZipFile": b"not a zip"}
    )

    assert missing[:2] == ("ResourceNotFoundException", 404)
    assert bad_name[:2] == ("ValidationException", 400)
    assert attach_unknown[:2] == ("InvalidParameterValueException", 400)
    assert "never-published:1" in attach_unknown[2]
    assert too_many[:2] == ("InvalidParameterValueException", 400)
    assert "more than 5 layers" in too_many[2]
    assert not_a_zip[:2] == ("InvalidParameterValueException", 400)
    assert "Could not unzip" in not_a_zip[2]
    assert "uses-unknown-layer" not in [
        f["FunctionName"] for f in client.list_functions()["Functions"]
    ]


def test_update_function_configuration_attaches_and_detaches_layers(
    client: Any, shared_layer: dict[str, Any]
) -> None:
    code = make_zip(
        {
            "handler.py": (
                "def handler(event, context):\n"
                "    try:\n"
                "        import shared_text\n"
                "    except ImportError:\n"
                "        return None\n"
                "    return shared_text.TEXT\n"
            )
        }
    )
    client.create_function(
        FunctionName="attach-later",
        Runtime="python3.11",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": code},
    )
    before = invoke(client, "attach-later")
    attached = client.update_function_configuration(
        FunctionName="attach-later", Layers=[shared_layer["LayerVersionArn"]]
    )
    with_layer = invoke(client, "attach-later")
    client.update_function_configuration(FunctionName="attach-later", Layers=[])
    without = invoke(client, "attach-later")

    assert before is None
    assert attached["Layers"] == [
        {"Arn": shared_layer["LayerVersionArn"], "CodeSize": len(SHARED_ZIP)}
    ]
    assert with_layer == SHARED_TEXT
    assert without is None


def test_faasbox_package_output_deploys_with_the_aws_cli_and_behaves_the_same(
    server: RunningServer, client: Any, deployed: Path, shared_layer: dict[str, Any]
) -> None:
    arn = f"sharedLayerArn={shared_layer['LayerVersionArn']}"
    packaged = faasbox_cli(server, "package", str(deployed), "--param", arn)
    assert packaged.returncode == 0, packaged.stderr
    out = deployed / ".serverless"
    assert sorted(p.name for p in out.iterdir()) == ["greeting.zip", "layered.zip", "nodelibs.zip"]

    layer = aws_lambda_cli(
        server,
        "publish-layer-version",
        "--layer-name",
        "greeting-by-hand",
        "--zip-file",
        f"fileb://{out / 'greeting.zip'}",
    )
    assert layer.returncode == 0, layer.stderr
    layer_arn = json.loads(layer.stdout)["LayerVersionArn"]
    created = aws_lambda_cli(
        server,
        "create-function",
        "--function-name",
        "probe-by-hand",
        "--runtime",
        "python3.11",
        "--role",
        ROLE,
        "--handler",
        "handler.probe",
        "--timeout",
        "10",
        "--zip-file",
        f"fileb://{out / 'layered.zip'}",
        "--layers",
        layer_arn,
        shared_layer["LayerVersionArn"],
    )
    assert created.returncode == 0, created.stderr

    by_hand = invoke(client, "probe-by-hand")
    deployed_one = invoke(client, "layered-dev-probe")
    # The same code: the zip faasbox deploy uploaded is the one faasbox package wrote.
    same_code = client.get_function(FunctionName="layered-dev-probe")["Configuration"]["CodeSha256"]
    assert json.loads(created.stdout)["CodeSha256"] == same_code
    for key in ("greeting", "shared", "tool_output", "library_present", "packaged_docs"):
        assert by_hand[key] == deployed_one[key], key


def wheel(folder: Path, name: str, version: str, module: str) -> Path:
    """A pure-Python wheel, made here: pip installs it from the file, with no index."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    path.write_bytes(make_zip({**files, f"{info}/RECORD": record}))
    return path


def test_faasbox_layer_build_makes_a_python_layer_that_functions_import(
    server: RunningServer, client: Any, tmp_path: Path
) -> None:
    built = wheel(tmp_path, "tinylayerpkg", "1.2.3", "VERSION = '1.2.3'\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{built}\n")
    output = tmp_path / "out" / "layer.zip"

    done = faasbox_cli(server, "layer", "build", "-r", str(requirements), "-o", str(output))

    assert done.returncode == 0, done.stdout + done.stderr
    members = zipfile.ZipFile(output).namelist()
    assert "python/tinylayerpkg/__init__.py" in members
    assert not any("__pycache__" in m for m in members)
    arn = client.publish_layer_version(LayerName="tiny", Content={"ZipFile": output.read_bytes()})[
        "LayerVersionArn"
    ]
    client.create_function(
        FunctionName="uses-built-layer",
        Runtime="python3.11",
        Role=ROLE,
        Handler="handler.handler",
        Code={
            "ZipFile": make_zip(
                {
                    "handler.py": (
                        "import tinylayerpkg\ndef handler(e, c):\n    return tinylayerpkg.VERSION\n"
                    )
                }
            )
        },
        Layers=[arn],
    )
    assert invoke(client, "uses-built-layer") == "1.2.3"


def test_faasbox_layer_build_refuses_with_pip_s_message(
    server: RunningServer, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{tmp_path / 'missing-1.0-py3-none-any.whl'}\n")

    done = faasbox_cli(
        server, "layer", "build", "-r", str(requirements), "-o", str(tmp_path / "l.zip")
    )

    assert done.returncode == 1
    assert "pip could not install" in done.stderr
    assert "missing-1.0-py3-none-any.whl" in done.stderr
    assert not (tmp_path / "l.zip").exists()


def test_list_layer_versions_pages_newest_first(client: Any) -> None:
    for n in range(3):
        client.publish_layer_version(
            LayerName="paged", Content={"ZipFile": make_zip({"python/p.py": f"N = {n}\n"})}
        )

    first = client.list_layer_versions(LayerName="paged", MaxItems=2)
    rest = client.list_layer_versions(LayerName="paged", MaxItems=2, Marker=first["NextMarker"])
    pages = client.get_paginator("list_layer_versions").paginate(
        LayerName="paged", PaginationConfig={"PageSize": 1}
    )

    assert [v["Version"] for v in first["LayerVersions"]] == [3, 2]
    assert [v["Version"] for v in rest["LayerVersions"]] == [1]
    assert "NextMarker" not in rest
    assert [v["Version"] for page in pages for v in page["LayerVersions"]] == [3, 2, 1]
