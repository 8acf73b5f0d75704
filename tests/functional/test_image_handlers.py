"""The image service's handlers in this process: both grayscale libraries on every format and
kind, EXIF orientation, bad input, classify's preprocessing against the model's reference, and
the model loader on ONNX and on a real TFLite file shipped by a PyPI package.

(Through a real server, with curl and httpx: tests/integration/test_image_service.py.)
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps, ImageSequence

from tests.support import EXAMPLES

SERVICE = EXAMPLES / "image-service"
SAMPLE = SERVICE / "sample.jpg"
MODULES = ("image_input", "gray_ops", "model_loader", "grayscale", "classify")


@pytest.fixture(scope="module")
def svc() -> Iterator[dict[str, ModuleType]]:
    """The service's modules, imported as the worker imports them (its folder on sys.path)."""
    sys.path.insert(0, str(SERVICE))
    try:
        yield {name: importlib.import_module(name) for name in MODULES}
    finally:
        sys.path.remove(str(SERVICE))
        for name in (*MODULES, "predict_check"):
            sys.modules.pop(name, None)


def event(body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "headers": headers or {"Content-Type": "application/octet-stream"},
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def photo(size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A colourful picture with an asymmetric pattern (to see rotations)."""
    return Image.open(SAMPLE).convert("RGB").resize(size, Image.BILINEAR)


def frames_of(data: bytes) -> list[Image.Image]:
    return [f.convert("RGBA") for f in ImageSequence.Iterator(Image.open(io.BytesIO(data)))]


def max_channel_spread(img: Image.Image) -> int:
    a = np.asarray(img.convert("RGB")).astype(int)
    return int(max(np.abs(a[..., 0] - a[..., 1]).max(), np.abs(a[..., 1] - a[..., 2]).max()))


def animated(fmt: str, transparent: bool = False, **options: Any) -> bytes:
    frames = []
    for i in range(6):
        f = photo((96, 64)).rotate(i * 60)
        if transparent:
            f = f.convert("RGBA")
            f.paste((0, 0, 0, 0), (0, 0, 20, 20))
        frames.append(f)
    return encode(
        frames[0],
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=[40, 50, 60, 70, 80, 90],
        loop=3,
        **options,
    )


# input name -> (bytes, format, lossy WebP?, has alpha)
def inputs() -> dict[str, tuple[bytes, str, bool, bool]]:
    rgba = photo().convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    gray16 = Image.fromarray((np.arange(160 * 120).reshape(120, 160) * 3).astype(np.uint16))
    return {
        "jpeg": (encode(photo(), "JPEG", quality=90), "JPEG", False, False),
        "progressive jpeg": (encode(photo(), "JPEG", progressive=True), "JPEG", False, False),
        "cmyk jpeg": (encode(photo().convert("CMYK"), "JPEG"), "JPEG", False, False),
        "png": (encode(photo(), "PNG"), "PNG", False, False),
        "png rgba": (encode(rgba, "PNG"), "PNG", False, True),
        "png palette": (encode(photo().quantize(64), "PNG"), "PNG", False, False),
        "png 16-bit gray": (encode(gray16, "PNG"), "PNG", False, False),
        "gif": (encode(photo(), "GIF"), "GIF", False, False),
        "webp": (encode(photo(), "WEBP", quality=90), "WEBP", True, False),
        "webp lossless": (encode(photo(), "WEBP", lossless=True), "WEBP", False, False),
        "webp rgba": (encode(rgba, "WEBP", lossless=True), "WEBP", False, True),
    }


@pytest.mark.parametrize("library", ["pillow", "opencv"])
@pytest.mark.parametrize("name", list(inputs()))
def test_grayscale_keeps_format_size_and_alpha(
    svc: dict[str, ModuleType], library: str, name: str
) -> None:
    data, fmt, lossy, alpha = inputs()[name]
    info = svc["image_input"].inspect(data)
    out = svc["gray_ops"].grayscale(data, info, library)
    result = Image.open(io.BytesIO(out))
    assert result.format == fmt
    assert result.size == Image.open(io.BytesIO(data)).size
    # Lossy WebP is YUV: grey comes back with R, G, B at most 1 apart (rounding).
    assert max_channel_spread(result) <= (1 if lossy else 0)
    if alpha:
        original = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))[..., 3]
        kept = np.asarray(result.convert("RGBA"))[..., 3]
        assert np.abs(original.astype(int) - kept).max() <= 1
    if name == "png 16-bit gray":
        assert result.mode.startswith("I")  # still 16 bits deep


def test_grayscale_matches_luma(svc: dict[str, ModuleType]) -> None:
    """Both libraries give the ITU-R 601 luma Pillow's convert("L") gives (PNG: lossless)."""
    data = encode(photo(), "PNG")
    expected = np.asarray(photo().convert("L")).astype(int)
    for library in ("pillow", "opencv"):
        out = svc["gray_ops"].grayscale(data, svc["image_input"].inspect(data), library)
        got = np.asarray(Image.open(io.BytesIO(out)).convert("L")).astype(int)
        assert np.abs(got - expected).max() <= 1, library


@pytest.mark.parametrize("library", ["pillow", "opencv"])
@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_keeps_frames_durations_and_loop(
    svc: dict[str, ModuleType], library: str, fmt: str
) -> None:
    data = animated(fmt, **({"quality": 90} if fmt == "WEBP" else {}))
    info = svc["image_input"].inspect(data)
    assert info.frames == 6
    out = svc["gray_ops"].grayscale(data, info, library)
    result = Image.open(io.BytesIO(out))
    assert result.format == fmt
    assert result.n_frames == 6
    assert result.info.get("loop") == 3
    durations = []
    for frame in ImageSequence.Iterator(result):
        frame.load()  # WebP reads a frame's duration when it decodes it
        durations.append(frame.info.get("duration"))
        assert max_channel_spread(frame) <= (1 if fmt == "WEBP" else 0)
    assert durations == [40, 50, 60, 70, 80, 90]


def test_gif_transparency_is_kept(svc: dict[str, ModuleType]) -> None:
    data = animated("GIF", transparent=True)
    out = svc["gray_ops"].grayscale(data, svc["image_input"].inspect(data), "pillow")
    before, after = frames_of(data), frames_of(out)
    assert len(after) == len(before) == 6
    for b, a in zip(before, after, strict=True):
        assert (np.asarray(b)[..., 3] < 128).sum() == (np.asarray(a)[..., 3] < 128).sum() > 0
        assert max_channel_spread(a) == 0


def jpeg_with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("library", ["pillow", "opencv"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(
    svc: dict[str, ModuleType], library: str, orientation: int
) -> None:
    data = jpeg_with_orientation(photo((120, 80)), orientation)
    out = svc["gray_ops"].grayscale(data, svc["image_input"].inspect(data), library)
    result = Image.open(io.BytesIO(out))
    assert result.size == ((80, 120) if orientation >= 5 else (120, 80))
    assert 0x0112 not in result.getexif()  # a viewer will not rotate it a second time
    # Of the 8 ways to lay the stored pixels out, the result is the one a viewer shows.
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("L"))
    stored = Image.open(io.BytesIO(data)).convert("L")
    layouts = [stored, *(stored.transpose(t) for t in Image.Transpose)]
    got = np.asarray(result).astype(int)
    distances = sorted(
        float(np.abs(got - np.asarray(view)).mean()) for view in layouts if view.size == result.size
    )
    assert float(np.abs(got - upright).mean()) == distances[0] < 4
    assert distances[1] > 4 * distances[0]  # and no other layout is nearly as close


@pytest.mark.parametrize("library", ["pillow", "opencv"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_metadata_is_not_copied(svc: dict[str, ModuleType], library: str, fmt: str) -> None:
    """No RGB colour profile on a grey image, no EXIF orientation to apply a second time."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6
    for img in (photo(), photo().convert("RGBA")) if fmt != "JPEG" else (photo(),):
        data = encode(img, fmt, icc_profile=icc, exif=exif.tobytes())
        out = svc["gray_ops"].grayscale(data, svc["image_input"].inspect(data), library)
        result = Image.open(io.BytesIO(out))
        assert result.size == (120, 160)  # rotated, once
        assert "icc_profile" not in result.info
        assert 0x0112 not in result.getexif()


def test_gif_comment_is_not_copied(svc: dict[str, ModuleType]) -> None:
    data = encode(photo(), "GIF", comment=b"made with a camera")
    out = svc["gray_ops"].grayscale(data, svc["image_input"].inspect(data), "pillow")
    assert "comment" not in Image.open(io.BytesIO(out)).info


def test_handler_answers_an_image_with_its_content_type(svc: dict[str, ModuleType]) -> None:
    for data, fmt, _, _ in inputs().values():
        response = svc["grayscale"].handler(event(data), None)
        assert response["statusCode"] == 200
        assert response["isBase64Encoded"] is True
        assert response["headers"]["Content-Type"] == svc["image_input"].CONTENT_TYPES[fmt]
        assert Image.open(io.BytesIO(base64.b64decode(response["body"]))).format == fmt


def test_text_body_is_taken_as_sent(svc: dict[str, ModuleType]) -> None:
    """No binary media type matched: API Gateway passed the body as text; not an image."""
    response = svc["grayscale"].handler({"body": "hello", "isBase64Encoded": False}, None)
    assert response["statusCode"] == 400


def bomb_png(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims width x height (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * min(width, 1024)
    idat = zlib.compress(row * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bad_inputs() -> dict[str, tuple[bytes, str]]:
    jpeg = encode(photo(), "JPEG")
    png = encode(photo(), "PNG")
    gif = animated("GIF")
    webp = encode(photo(), "WEBP")
    return {
        "empty": (b"", "the body is empty"),
        "text": (b"hello, world", "the body is not an image (expected JPEG, PNG, GIF or WebP)"),
        "pdf": (b"%PDF-1.4\n" + b"x" * 100, "the body is not an image"),
        "bmp": (encode(photo(), "BMP"), "the body is not an image"),
        "truncated jpeg": (jpeg[: len(jpeg) // 2], "the JPEG image is truncated or corrupt"),
        "jpeg header only": (jpeg[:200], "the JPEG image is truncated or corrupt"),
        "truncated png": (png[: len(png) // 2], "the PNG image is truncated or corrupt"),
        "png signature only": (png[:8], "the PNG image is truncated or corrupt"),
        "truncated gif": (gif[: len(gif) // 2], "the GIF image is truncated or corrupt"),
        "truncated webp": (webp[: len(webp) // 2], "the WebP image is truncated or corrupt"),
        "png bomb": (bomb_png(50000, 50000), "the image is 50000x50000 pixels (2500.0 megapixels)"),
        "gif bomb": (
            b"GIF89a" + (65535).to_bytes(2, "little") * 2 + gif[10:],
            "the image is 65535x65535 pixels",
        ),
    }


@pytest.mark.parametrize("name", list(bad_inputs()))
def test_bad_input_is_a_400_with_a_message(svc: dict[str, ModuleType], name: str) -> None:
    data, message = bad_inputs()[name]
    for module in ("grayscale", "classify"):
        response = svc[module].handler(event(data), None)
        assert response["statusCode"] == 400, (module, response)
        assert response["headers"]["Content-Type"] == "application/json"
        assert json.loads(response["body"])["message"].startswith(message), response["body"]


def test_too_many_frames_is_refused_before_decoding(svc: dict[str, ModuleType]) -> None:
    frames = [Image.new("L", (2, 2), i % 256) for i in range(1200)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)
    response = svc["grayscale"].handler(event(data), None)
    assert response["statusCode"] == 400
    assert "frames: the limit is 1000" in json.loads(response["body"])["message"]


# classify


def test_classify_sample_photo(svc: dict[str, ModuleType]) -> None:
    text = svc["classify"].handler(event(SAMPLE.read_bytes()), None)
    assert text["statusCode"] == 200
    assert text["headers"]["Content-Type"].startswith("text/plain")
    assert text["body"].startswith("military uniform is detected with ")
    as_json = svc["classify"].handler(
        event(SAMPLE.read_bytes(), {"Accept": "application/json"}), None
    )
    answer = json.loads(as_json["body"])
    assert as_json["headers"]["Content-Type"] == "application/json"
    assert len(answer["top5"]) == 5
    assert answer["label"] == answer["top5"][0]["label"] == "military uniform"
    assert answer["confidence"] == round(answer["top5"][0]["probability"] * 255)
    assert (
        text["body"] == f"military uniform is detected with {answer['confidence']}/255 confidence"
    )
    probabilities = [c["probability"] for c in answer["top5"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_class_probabilities_sum_to_one(svc: dict[str, ModuleType]) -> None:
    every = svc["classify"].top_classes(Image.open(SAMPLE), k=1000)
    assert len(every) == 1000
    assert all(0 <= p <= 1 for _, p in every)
    assert sum(p for _, p in every) == pytest.approx(1.0, abs=1e-9)


def test_preprocessing_is_the_reference(svc: dict[str, ModuleType]) -> None:
    """classify.preprocess is model/predict_check.py's preprocess, bit for bit."""
    spec = importlib.util.spec_from_file_location(
        "predict_check", SERVICE / "model" / "predict_check.py"
    )
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    rgba = photo((300, 200)).convert("RGBA")
    samples = [
        SAMPLE.read_bytes(),
        jpeg_with_orientation(photo((300, 200)), 6),
        encode(rgba, "PNG"),
        encode(photo((200, 333)).convert("L"), "PNG"),
    ]
    for data in samples:
        ours = svc["classify"].preprocess(Image.open(io.BytesIO(data)))
        theirs = reference.preprocess(Image.open(io.BytesIO(data)))
        assert ours.shape == (1, 3, 224, 224)
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("text/plain, application/json;q=0.5", True),
        ("Application/JSON", True),
        ("application/json;q=0", False),
        ("*/*", False),
        ("", False),
        ("text/plain", False),
    ],
)
def test_accept_header(svc: dict[str, ModuleType], accept: str, expected: bool) -> None:
    assert svc["classify"].wants_json(accept) is expected


# The model loader


def test_onnx_model_is_loaded_once_with_one_thread(svc: dict[str, ModuleType]) -> None:
    model = svc["classify"].MODEL
    assert model.runtime == "onnxruntime"
    assert model.layout == "NCHW" and model.input_size == (224, 224)
    options = model.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert len(svc["classify"].LABELS) == 1000


def test_model_path_from_the_environment(
    svc: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loader = svc["model_loader"]
    assert loader.model_path() == SERVICE / "model" / "efficientnet_lite0_int8.onnx"
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "other.onnx"))
    assert loader.model_path() == tmp_path / "other.onnx"
    with pytest.raises(loader.ModelError, match="no model file at"):
        loader.load()
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(loader.ModelError, match=r"expected \.onnx or \.tflite"):
        loader.load(tmp_path / "model.pt")


def tflite_micro_sine_model() -> Path:
    """sine_float.tflite (3 KB), shipped in the tflite-micro wheel (the `examples` extra)."""
    spec = importlib.util.find_spec("tflite_micro")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "tflite-micro is not installed (pip install -e '.[examples]'): its wheel ships "
            "the .tflite file this test loads"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "python" / "tflite_micro" / "sine_float.tflite"


def test_tflite_model_through_the_same_interface(
    svc: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tflite_micro_sine_model()
    monkeypatch.setenv("MODEL_PATH", str(path))
    model = svc["model_loader"].load()  # chosen by the .tflite extension
    assert model.runtime == "litert"
    assert model.input_shape == (1, 1) and model.input_dtype == np.float32
    for x in (0.0, 0.5, 1.57, 3.0, 4.7):
        y = model.predict(np.array([[x]], dtype=np.float32))
        assert y.dtype == np.float32 and y.shape == (1, 1)
        assert abs(float(y[0, 0]) - np.sin(x)) < 0.1  # the model approximates sin(x)
