"""The image service against hostile images: a GIF whose later frame is a decompression bomb
and a truncated JPEG made to look complete both get a 400 with a message, never a 502 or a
partly grey picture (issue 11)."""

from __future__ import annotations

import base64
import importlib
import io
import json
import struct
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from PIL import Image

from tests.support import EXAMPLES

SERVICE = EXAMPLES / "image-service"
MODULES = ("image_input", "gray_ops", "grayscale")


@pytest.fixture(scope="module")
def grayscale() -> Iterator[ModuleType]:
    sys.path.insert(0, str(SERVICE))
    try:
        yield {name: importlib.import_module(name) for name in MODULES}["grayscale"]
    finally:
        sys.path.remove(str(SERVICE))
        for name in MODULES:
            sys.modules.pop(name, None)


def call(module: ModuleType, body: bytes) -> dict[str, Any]:
    event = {"headers": {}, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    result: dict[str, Any] = module.handler(event, None)
    return result


def gif_with_huge_second_frame() -> bytes:
    """A 2-frame 32x32 GIF whose second image descriptor claims 20000x20000 pixels."""
    frames = [Image.new("P", (32, 32), i) for i in (1, 2)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], optimize=False)
    data = bytearray(out.getvalue())
    second = data.find(b"\x2c", data.find(b"\x2c") + 10)
    while struct.unpack_from("<HH", data, second + 5) != (32, 32):
        second = data.find(b"\x2c", second + 1)
    struct.pack_into("<HH", data, second + 5, 20000, 20000)
    return bytes(data)


def test_gif_frame_bomb_is_a_400(grayscale: ModuleType) -> None:
    result = call(grayscale, gif_with_huge_second_frame())
    assert result["statusCode"] == 400
    message = json.loads(result["body"])["message"]
    assert "20000x20000" in message and "the limit is 25 megapixels" in message


def test_truncated_jpeg_with_an_end_marker_is_a_400(grayscale: ModuleType) -> None:
    sample = (SERVICE / "sample.jpg").read_bytes()
    forged = sample[: len(sample) // 2] + b"\xff\xd9"
    result = call(grayscale, forged)
    assert result["statusCode"] == 400
    assert "truncated or corrupt" in json.loads(result["body"])["message"]
    assert call(grayscale, sample)["statusCode"] == 200


def test_cmyk_jpeg_still_decodes(grayscale: ModuleType) -> None:
    out = io.BytesIO()
    Image.new("CMYK", (40, 30), (10, 20, 30, 40)).save(out, "JPEG")
    assert call(grayscale, out.getvalue())["statusCode"] == 200
