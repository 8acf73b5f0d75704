"""The parts of dependency installs and of the function's import path that need no process:
serverless-python-requirements' options, bundles, the WSGI handler, sys.path's order."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from faasbox.config import load_service
from faasbox.dependencies import bundle, python, wsgi
from faasbox.execution.process.python import distributions, search_path


def service(tmp_path: Path, yaml: str, **files: str) -> Path:
    (tmp_path / "serverless.yml").write_text(yaml)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


BASE = (
    "service: s\nprovider:\n  name: aws\n  runtime: python3.11\n"
    "functions:\n  f:\n    handler: h.f\n"
)


def test_python_requirements_options_as_the_plugin_reads_them(tmp_path: Path) -> None:
    yaml = BASE + "custom:\n  pythonRequirements:\n    fileName: deps.txt\n    slim: true\n"
    yaml += "    noDeploy: [numpy]\n"
    options = python.RequirementsOptions.of(load_service(service(tmp_path, yaml)))
    assert options == python.RequirementsOptions("deps.txt", True, ("numpy",), False)
    defaults = python.RequirementsOptions.of(load_service(service(tmp_path, BASE)))
    assert defaults.file_name == "requirements.txt"
    assert "boto3" in defaults.no_deploy and not defaults.slim


def test_no_deploy_drops_the_lines_naming_those_packages() -> None:
    text = "boto3==1.0\nBoto3 >= 2\nrequests==2.0\n# boto3 in a comment\n-r other.txt\nsix\n"
    kept = python.deployed_requirements(text, ("boto3", "six"))
    assert kept == "requests==2.0\n# boto3 in a comment\n-r other.txt\n"


def test_bundles_are_reused_by_key_and_a_failed_install_leaves_none(tmp_path: Path) -> None:
    calls: list[Path] = []
    lines: list[str] = []

    def install(folder: Path) -> None:
        calls.append(folder)
        (folder / "pkg.py").write_text("x = 1\n")

    key = bundle.key("python", "pkg==1\n", "3.11", bundle.platform_tag())
    first = bundle.cached(tmp_path, key, install, lines.append)
    again = bundle.cached(tmp_path, key, install, lines.append)
    assert first == again and len(calls) == 1
    assert [rel for rel, _ in bundle.files(first)] == ["pkg.py"]
    assert "nothing to install" in lines[-1]

    def failing(folder: Path) -> None:
        bundle.run([sys.executable, "-c", "print('ERROR: no'); exit(3)"], folder, "pip", print, {})

    other = bundle.key("python", "broken\n")
    with pytest.raises(Exception, match=r"pip failed \(exit status 3\).*\nERROR: no"):
        bundle.cached(tmp_path, other, failing, lines.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == [key]  # no bundle, no leftover


def test_slim_drops_bytecode_and_dist_info(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"")
    (tmp_path / "pkg-1.0.dist-info").mkdir()
    python.slim(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "pkg",
        "pkg/__init__.py",
    ]


def test_shipped_versions_come_from_dist_info(tmp_path: Path) -> None:
    info = tmp_path / "Pillow-10.0.0.dist-info"
    info.mkdir()
    (info / "top_level.txt").write_text("PIL\n")
    other = tmp_path / "six-1.16.0.dist-info"
    other.mkdir()
    (other / "RECORD").write_text("six.py,sha256=x,1\nsix-1.16.0.dist-info/RECORD,,\n")
    assert distributions.shipped_versions(tmp_path) == {"PIL": "10.0.0", "six": "1.16.0"}


def test_sys_path_is_lambdas_order() -> None:
    path = search_path.function_sys_path("/var/task", ["/opt"], ["/preloaded"])
    assert path[:5] == [
        "/var/task",
        f"/opt/python/lib/{search_path.PYTHON_DIR}/site-packages",
        "/opt/python",
        search_path.RUNTIME_PACKAGES,
        "/preloaded",
    ]
    assert path[5:] == list(search_path.stdlib_paths())
    assert not any("site-packages" in p for p in path[5:])
    assert importlib.util.find_spec("json") is not None  # the stdlib is what is left


def test_wsgi_plugin_files_only_with_the_plugin_and_an_app(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    plain = load_service(service(tmp_path / "a", BASE))
    assert wsgi.files(plain, tmp_path / "cache", print) == []
    yaml = BASE + "plugins:\n  - serverless-wsgi\ncustom:\n  wsgi:\n    app: app.app\n"
    (tmp_path / "b").mkdir()
    spec = load_service(service(tmp_path / "b", yaml))
    names = sorted(rel for rel, _ in wsgi.files(spec, tmp_path / "cache", print))
    assert names == [".serverless-wsgi", "wsgi_handler.py"]


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    text = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}?{environ['QUERY_STRING']} "
    text += f"{environ.get('HTTP_X_THING', '')} {body.decode()}"
    start_response(
        "201 Created",
        [("Content-Type", "text/plain"), ("Content-Length", "9"), ("Set-Cookie", "a=1")],
    )
    return [text.encode()]


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_wsgi_handler_answers_both_payload_versions(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faasbox.dependencies import wsgi_handler

    monkeypatch.setattr(wsgi_handler, "_app", _app)
    if version == "2.0":
        event: dict[str, Any] = {
            "version": "2.0",
            "rawPath": "/items/1",
            "rawQueryString": "q=1",
            "headers": {"x-thing": "yes"},
            "requestContext": {"http": {"method": "PUT", "sourceIp": "1.2.3.4"}},
            "body": "hi",
        }
    else:
        event = {
            "httpMethod": "PUT",
            "path": "/items/1",
            "queryStringParameters": {"q": "1"},
            "headers": {"X-Thing": "yes"},
            "body": "aGk=",
            "isBase64Encoded": True,
        }
    response = wsgi_handler.handler(event, None)
    assert response["statusCode"] == 201
    assert response["body"] == "PUT /items/1?q=1 yes hi"
    assert "Content-Length" not in response["headers"]  # API Gateway sets its own
    if version == "2.0":
        assert response["cookies"] == ["a=1"]
    else:
        assert response["multiValueHeaders"] == {"Set-Cookie": ["a=1"]}
