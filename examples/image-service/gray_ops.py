"""Grayscale, per format, with Pillow or with OpenCV.

Both libraries are implemented for every format so that the choice in LIBRARY stays a measured
one (`python -m bench.image --only libraries` measures them on this machine; the figures are in
docs/image-service.md). Each function takes the request's bytes and image_input's ImageInfo
(headers already checked against the size limits) and returns the encoded grayscale image in
the input's format: EXIF orientation applied to the pixels (and not written again), alpha and
GIF transparency kept, animations frame by frame with their durations and loop count.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from image_input import BadImage, ImageInfo
from PIL import Image, ImageSequence

JPEG_QUALITY = 90
WEBP_QUALITY = 90  # lossy WebP in, lossy out; lossless WebP stays lossless
PNG_COMPRESSION = 6  # zlib's default level, for both libraries

# The faster library for each kind of input, as measured by bench/image.py --only libraries
# (figures in docs/image-service.md, "Which library, per format").
LIBRARY = {
    "JPEG": "opencv",
    "PNG": "opencv",
    "PNG with alpha": "pillow",
    "GIF": "pillow",
    "GIF animated": "pillow",
    "WebP": "opencv",
    "WebP animated": "pillow",
}

_cv2: Any = None


def cv2_module() -> Any:
    """OpenCV, imported once and set to one thread: a worker serves one request at a time,
    and parallelism comes from several workers."""
    global _cv2
    if _cv2 is None:
        import cv2

        cv2.setNumThreads(1)
        _cv2 = cv2
    return _cv2


def variant(info: ImageInfo) -> str:
    """The kind of input LIBRARY is keyed by: the format, and what changes which is faster."""
    name = "WebP" if info.format == "WEBP" else info.format
    if info.animated:
        return f"{name} animated"
    if info.format == "GIF":
        return name
    if info.format == "PNG" and (
        info.header.mode in ("RGBA", "LA", "PA", "La") or "transparency" in info.header.info
    ):
        return "PNG with alpha"
    return name


def grayscale(data: bytes, info: ImageInfo, library: str | None = None) -> bytes:
    lib = library or LIBRARY[variant(info)]
    return IMPLEMENTATIONS[lib][info.format](data, info)


def corrupt(info: ImageInfo, detail: str = "") -> BadImage:
    name = "WebP" if info.format == "WEBP" else info.format
    return BadImage(
        f"the {name} image is truncated or corrupt" + (f" ({detail})" if detail else "")
    )


# Pillow

# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
_PIL_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _pil_upright(img: Image.Image, orientation: int) -> Image.Image:
    method = _PIL_TRANSPOSE.get(orientation)
    return img.transpose(method) if method is not None else img


# Metadata that Pillow would otherwise write back from the decoded image's info: an RGB ICC
# profile is wrong on a grey image, and the EXIF orientation has been applied to the pixels.
_METADATA = ("icc_profile", "exif", "comment", "xmp", "XML:com.adobe.xmp", "photoshop")


def _pil_gray(img: Image.Image) -> Image.Image:
    """L, or LA when the image has transparency; 16-bit grayscale PNGs stay 16-bit."""
    if img.mode in ("L", "LA", "1", "I;16", "I;16B", "I;16L", "I"):
        gray = img if img.mode != "1" else img.convert("L")
    else:
        has_alpha = img.mode in ("RGBA", "PA", "La") or "transparency" in img.info
        gray = img.convert("LA" if has_alpha else "L")
    for key in _METADATA:
        gray.info.pop(key, None)
    return gray


def _pil_decode(run: Callable[[], Image.Image], info: ImageInfo) -> Image.Image:
    try:
        return run()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
        raise corrupt(info, str(e)) from None


def pil_jpeg(data: bytes, info: ImageInfo) -> bytes:
    def run() -> Image.Image:
        img = Image.open(io.BytesIO(data), formats=["JPEG"])
        img.draft("L", img.size)  # libjpeg hands over the luma plane: no colour conversion
        img = _pil_upright(img, info.orientation)
        img.load()
        return img if img.mode == "L" else img.convert("L")

    out = io.BytesIO()
    _pil_decode(run, info).save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def pil_png(data: bytes, info: ImageInfo) -> bytes:
    def run() -> Image.Image:
        img = Image.open(io.BytesIO(data), formats=["PNG"])
        img.load()
        return _pil_gray(_pil_upright(img, info.orientation))

    out = io.BytesIO()
    _pil_decode(run, info).save(out, "PNG", compress_level=PNG_COMPRESSION)
    return out.getvalue()


def pil_webp(data: bytes, info: ImageInfo) -> bytes:
    lossless = _webp_lossless(data)
    options: dict[str, Any] = {"lossless": True} if lossless else {"quality": WEBP_QUALITY}
    out = io.BytesIO()
    if not info.animated:

        def run() -> Image.Image:
            img = Image.open(io.BytesIO(data), formats=["WEBP"])
            img.load()
            return _pil_upright(_pil_gray(img), info.orientation)

        img = _pil_decode(run, info)
        # WebP has no grayscale mode: libwebp stores R=G=B (and U=V=128 when lossy).
        img.save(out, "WEBP", **options)
        return out.getvalue()
    frames, durations, loop = _pil_frames(data, info, "WEBP")
    frames[0].save(
        out,
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=loop if loop is not None else 0,
        **options,
    )
    return out.getvalue()


def _pil_frames(
    data: bytes, info: ImageInfo, fmt: str
) -> tuple[list[Image.Image], list[int], int | None]:
    """Every frame as a full canvas in L or LA, with its duration, and the loop count."""

    def run() -> tuple[list[Image.Image], list[int], int | None]:
        img = Image.open(io.BytesIO(data), formats=[fmt])
        loop = img.info.get("loop")
        frames: list[Image.Image] = []
        durations: list[int] = []
        for frame in ImageSequence.Iterator(img):
            frame.load()  # WebP sets the frame's duration when it decodes it
            durations.append(int(frame.info.get("duration", 0) or 0))
            frames.append(_pil_upright(_pil_gray(frame), info.orientation))
        return frames, durations, loop

    try:
        return run()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
        raise corrupt(info, str(e)) from None


def pil_gif(data: bytes, info: ImageInfo) -> bytes:
    frames, durations, loop = _pil_frames(data, info, "GIF")
    transparent = any(f.mode == "LA" and f.getchannel("A").getextrema()[0] < 128 for f in frames)
    if transparent:
        frames = [_gif_frame_with_transparency(f) for f in frames]
    else:
        frames = [f.convert("L") if f.mode != "L" else f for f in frames]
    options: dict[str, Any] = {}
    if info.animated:
        options = {"save_all": True, "append_images": frames[1:], "duration": durations}
        if loop is not None:
            options["loop"] = loop
        if transparent:
            options["disposal"] = 2  # each frame is a whole canvas: clear before the next
    elif durations[0]:
        options["duration"] = durations[0]
    if transparent:
        options["transparency"] = 255
    out = io.BytesIO()
    frames[0].save(out, "GIF", **options)
    return out.getvalue()


_GRAY_254 = [min(v, 254) for v in range(256)]
_GRAY_PALETTE = [c for v in range(256) for c in (v, v, v)]


def _gif_frame_with_transparency(frame: Image.Image) -> Image.Image:
    """A P frame whose palette is 255 greys and, at index 255, the transparent colour."""
    if frame.mode != "LA":
        frame = frame.convert("LA")
    gray, alpha = frame.split()
    indexed = gray.point(_GRAY_254)
    indexed.paste(255, mask=alpha.point(lambda a: 255 if a < 128 else 0))
    paletted = indexed.convert("P")
    paletted.putpalette(_GRAY_PALETTE)
    return paletted


def _webp_lossless(data: bytes) -> bool:
    """A WebP is lossless when its image chunk is VP8L (and no lossy VP8 chunk is present)."""
    head = data[:4096]
    return b"VP8L" in head and b"VP8 " not in head


# OpenCV

_CV_READ_FAILED = "OpenCV could not decode it"


def _cv_upright(img: np.ndarray, orientation: int) -> np.ndarray:
    cv2 = cv2_module()
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:
        return cv2.transpose(img)
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(img), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def _cv_gray(img: np.ndarray) -> np.ndarray:
    """1 channel, or BGRA with B=G=R when the image has alpha (OpenCV cannot write 2)."""
    cv2 = cv2_module()
    if img.ndim == 2:
        return img
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    gray = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
    return cv2.merge((gray, gray, gray, img[:, :, 3]))


def _cv_read(data: bytes, info: ImageInfo, flags: int) -> np.ndarray:
    cv2 = cv2_module()
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:
        raise corrupt(info, str(e).strip().splitlines()[-1]) from None
    if img is None:
        raise corrupt(info, _CV_READ_FAILED)
    return img


def _cv_encode(ext: str, img: np.ndarray, params: list[int], info: ImageInfo) -> bytes:
    cv2 = cv2_module()
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise corrupt(info, "OpenCV could not encode the result")
    return bytes(buf)


def cv_jpeg(data: bytes, info: ImageInfo) -> bytes:
    cv2 = cv2_module()
    # libjpeg hands over the luma plane; the orientation is applied below, as for the others.
    img = _cv_read(data, info, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    img = _cv_upright(img, info.orientation)
    return _cv_encode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY], info)


def cv_png(data: bytes, info: ImageInfo) -> bytes:
    cv2 = cv2_module()
    # UNCHANGED keeps alpha and 16-bit depth (and ignores EXIF orientation: applied below).
    img = _cv_gray(_cv_read(data, info, cv2.IMREAD_UNCHANGED))
    img = _cv_upright(img, info.orientation)
    return _cv_encode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION], info)


def cv_webp(data: bytes, info: ImageInfo) -> bytes:
    cv2 = cv2_module()
    quality = 101 if _webp_lossless(data) else WEBP_QUALITY  # > 100 is lossless
    if not info.animated:
        img = _cv_gray(_cv_read(data, info, cv2.IMREAD_UNCHANGED))
        img = _cv_upright(img, info.orientation)
        return _cv_encode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, quality], info)
    anim = _cv_animation(data, info)
    return _cv_encode_animation(".webp", anim, [cv2.IMWRITE_WEBP_QUALITY, quality], info)


def cv_gif(data: bytes, info: ImageInfo) -> bytes:
    cv2 = cv2_module()
    anim = _cv_animation(data, info)
    # Without dithering: OpenCV's default dithers grey into colours (R, G, B apart by up to 111).
    return _cv_encode_animation(".gif", anim, [cv2.IMWRITE_GIF_DITHER, 0], info)


def _cv_animation(data: bytes, info: ImageInfo) -> Any:
    cv2 = cv2_module()
    try:
        ok, anim = cv2.imdecodeanimation(np.frombuffer(data, np.uint8))
    except cv2.error as e:
        raise corrupt(info, str(e).strip().splitlines()[-1]) from None
    if not ok or not anim.frames:
        raise corrupt(info, _CV_READ_FAILED)
    frames = [_cv_upright(_cv_gray(f), info.orientation) for f in anim.frames]
    # The animation encoders take 3 or 4 channels only.
    anim.frames = [cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f for f in frames]
    return anim


def _cv_encode_animation(ext: str, anim: Any, params: list[int], info: ImageInfo) -> bytes:
    cv2 = cv2_module()
    ok, buf = cv2.imencodeanimation(ext, anim, params)
    if not ok:
        raise corrupt(info, "OpenCV could not encode the animation")
    return bytes(buf)


IMPLEMENTATIONS: dict[str, dict[str, Callable[[bytes, ImageInfo], bytes]]] = {
    "pillow": {"JPEG": pil_jpeg, "PNG": pil_png, "GIF": pil_gif, "WEBP": pil_webp},
    "opencv": {"JPEG": cv_jpeg, "PNG": cv_png, "GIF": cv_gif, "WEBP": cv_webp},
}
