"""examples/wasm-classify through the Invoker: the committed classify.wasm is what its source
builds to, it answers the Python classify function's top-1 for the sample photo, and a body
that is not an image fails with the program's reason."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from faasbox.config import load_service
from faasbox.execution.invoker import InvocationResult, Invoker
from faasbox.execution.settings import RuntimeSettings
from faasbox.registry import Registry
from faasbox.registry.services import deploy_service
from tests.support import EXAMPLES, run_with_invoker

CLASSIFY = EXAMPLES / "wasm-classify"
IMAGE_SERVICE = EXAMPLES / "image-service"
PHOTO = IMAGE_SERVICE / "sample.jpg"  # Grace Hopper, 512x600


def test_the_committed_classify_wasm_is_what_its_source_builds_to() -> None:
    done = subprocess.run(
        ["sh", str(CLASSIFY / "build.sh"), "--check"], capture_output=True, text=True, timeout=300
    )
    if done.returncode == 0 and ": skipped: " in done.stdout:
        pytest.skip(done.stdout.strip().replace("\n", "; "))  # no or another wasm32 toolchain
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: classify.wasm matches its source" in done.stdout


def python_answers(*photos: bytes) -> list[str]:
    """The Python classify function's answers, run in a fresh interpreter (its module loads
    the model when imported, as in a worker)."""
    events = [{"body": base64.b64encode(p).decode(), "isBase64Encoded": True} for p in photos]
    script = (
        "import json, sys, classify\n"
        "for event in json.loads(sys.stdin.read()):\n"
        "    print(classify.handler(event, None)['body'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        cwd=IMAGE_SERVICE,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()


def python_top1() -> str:
    return python_answers(PHOTO.read_bytes())[0]


def test_the_same_top1_as_the_python_classify_and_a_reason_for_bad_input(data_dir: Path) -> None:
    registry = Registry(data_dir)
    deploy_service(registry, load_service(CLASSIFY))
    fn = registry.get("wasm-classify-dev-classify-wasm")

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [
            await invoker.invoke(fn, PHOTO.read_bytes()),
            await invoker.invoke(fn, PHOTO.read_bytes()),  # the model is loaded already
            await invoker.invoke(fn, b"these are not pixels"),
        ]

    first, second, bad = run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario)
    python = re.fullmatch(r"(.+) is detected with (\d+)/255 confidence", python_top1())
    assert python is not None
    for result in (first, second):
        assert result.status == "success", result.payload
        wasm = re.fullmatch(rb"(.+) is detected with (\d+)/255 confidence", result.payload)
        assert wasm is not None, result.payload
        assert wasm[1].decode() == python[1]  # the same class
    assert first.cold and not second.cold
    error = json.loads(bad.payload)
    assert error["errorType"] == "Runtime.ExitError" and "exit status 1" in error["errorMessage"]
    assert "classify: the body is not a JPEG or PNG image" in bad.log


def test_a_png_gets_the_python_functions_answer_exactly(data_dir: Path) -> None:
    """A PNG decodes to the same pixels both ways, so the resize (Pillow's, re-implemented,
    its pass order too) must give the same tensor: the same label and the same N/255, for a
    wide photo (horizontal pass first) and a tall one (vertical first)."""
    from PIL import Image

    photo = Image.open(PHOTO).convert("RGB")
    pngs = []
    for size in ((800, 300), (300, 800), (225, 1000)):
        out = io.BytesIO()
        photo.resize(size).save(out, format="PNG")
        pngs.append(out.getvalue())
    registry = Registry(data_dir)
    deploy_service(registry, load_service(CLASSIFY))
    fn = registry.get("wasm-classify-dev-classify-wasm")

    async def scenario(invoker: Invoker) -> list[InvocationResult]:
        return [await invoker.invoke(fn, png) for png in pngs]

    results = run_with_invoker(RuntimeSettings(data_dir=data_dir), scenario)
    assert all(r.status == "success" for r in results), [r.payload for r in results]
    assert [r.payload.decode() for r in results] == python_answers(*pngs)
