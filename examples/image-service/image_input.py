"""What both functions do with a request: take the raw body out of an API Gateway proxy event,
check that it is an image we accept and that decoding it cannot exhaust the worker's memory,
and shape the proxy responses (errors as 400 with a JSON message).

Every check here reads headers only: no pixel is decoded before the image is known to be a
JPEG, PNG, GIF or WebP of at most MAX_PIXELS pixels (per frame) and MAX_ANIMATION_PIXELS
(all frames together).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import simplejpeg
from PIL import Image, ImageFile

FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
NOT_AN_IMAGE = "the body is not an image (expected JPEG, PNG, GIF or WebP)"

# 25 megapixels: a 6000x4000 photo. A decoded RGB frame of that size is 75 MB; see the
# function's memorySize in serverless.yml.
MAX_PIXELS = int(os.environ.get("MAX_IMAGE_PIXELS", 25_000_000))
# The frames of an animation together (each counted at the canvas size).
MAX_ANIMATION_PIXELS = int(os.environ.get("MAX_ANIMATION_PIXELS", 50_000_000))
MAX_FRAMES = int(os.environ.get("MAX_ANIMATION_FRAMES", 1000))
# What a response body can carry: API Gateway passes a 6 MB (6291456 bytes) Lambda result at
# most, and a binary body travels base64-encoded (4/3 larger) inside the JSON result.
MAX_RESPONSE_BYTES = (6 * 1024 * 1024 - 1024) * 3 // 4

# Pillow's own guard, as a second line: it raises DecompressionBombError past twice this.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# A truncated image is an error, never a partly grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# OpenCV reads its limit from the environment when it is imported (serverless.yml sets it
# too, for a worker that imported cv2 before this module).
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))


class BadImage(Exception):
    """The request cannot be served: answered 400 with the message (or `status`)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def body_bytes(event: dict[str, Any]) -> bytes:
    """The raw request body of a REST (1.0) or HTTP API (2.0) proxy event, as sent."""
    body = event.get("body")
    if not body:
        raise BadImage(
            "the body is empty: POST the image itself as the request body "
            "(curl --data-binary @photo.jpg)"
        )
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadImage("isBase64Encoded is true but the body is not base64") from None
    # A text body: API Gateway decoded it as UTF-8 because its content type is not one of the
    # binary media types; encoding it back gives the bytes that were sent.
    return body.encode("utf-8")


def sniff(data: bytes) -> str:
    """The format by the file's signature (the content type is not trusted)."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    raise BadImage(NOT_AN_IMAGE)


@dataclass
class ImageInfo:
    format: str
    width: int
    height: int
    frames: int
    orientation: int  # EXIF Orientation, 1 (as stored) to 8
    header: Image.Image  # Pillow's lazily opened image: headers parsed, no pixels decoded

    @property
    def animated(self) -> bool:
        return self.frames > 1


def inspect(data: bytes) -> ImageInfo:
    """Identify the image and enforce the size limits before anything is decoded."""
    fmt = sniff(data)
    name = "WebP" if fmt == "WEBP" else fmt
    if not COMPLETE[fmt](data):
        raise BadImage(f"the {name} image is truncated or corrupt: its data ends early")
    guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # checked just below
    try:
        header = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = header.size
        if fmt == "GIF":
            width, height = _gif_canvas(data, width, height)
        if width * height > MAX_PIXELS:
            raise BadImage(
                f"the image is {width}x{height} pixels ({width * height / 1e6:.1f} "
                f"megapixels): the limit is {MAX_PIXELS / 1e6:g} megapixels"
            )
        frames = _frame_count(header, width * height)
        orientation = _orientation(header)
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
        raise BadImage(f"the {name} image is truncated or corrupt ({e})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = guard
    if width < 1 or height < 1:
        raise BadImage(f"the {name} image has no pixels ({width}x{height})")
    if fmt == "JPEG":
        _jpeg_decodes(data)
    return ImageInfo(fmt, width, height, frames, orientation, header)


def _frame_count(header: Image.Image, frame_pixels: int) -> int:
    if not getattr(header, "is_animated", False):
        return 1
    # GIF and WebP count frames from their headers; no frame is decoded here.
    frames = int(getattr(header, "n_frames", 1))
    if frames > MAX_FRAMES:
        raise BadImage(f"the animation has {frames} frames: the limit is {MAX_FRAMES}")
    if frames * frame_pixels > MAX_ANIMATION_PIXELS:
        raise BadImage(
            f"the animation has {frames} frames of {frame_pixels / 1e6:.1f} megapixels "
            f"({frames * frame_pixels / 1e6:.1f} in all): the limit is "
            f"{MAX_ANIMATION_PIXELS / 1e6:g} megapixels"
        )
    header.seek(0)
    return frames


def _orientation(header: Image.Image) -> int:
    try:
        value = header.getexif().get(0x0112, 1)
    except Exception:  # a malformed EXIF block is ignored, as browsers do
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# Whether the file is all there, from its structure (decoders would show a partial picture:
# libjpeg paints the missing rows grey, and a GIF's first frames decode without the rest).


def _jpeg_complete(data: bytes) -> bool:
    """An End Of Image marker after the last start of scan."""
    last_scan = data.rfind(b"\xff\xda")
    return last_scan != -1 and data.find(b"\xff\xd9", last_scan) != -1


def _png_complete(data: bytes) -> bool:
    """The IEND chunk."""
    return data.rfind(b"IEND") > 8


def _webp_complete(data: bytes) -> bool:
    """As many bytes as the RIFF header announces."""
    return len(data) >= 12 and len(data) >= int.from_bytes(data[4:8], "little") + 8


def _gif_frames(data: bytes) -> list[tuple[int, int, int, int]] | None:
    """Each frame's (left, top, width, height), walking every block and sub-block up to the
    trailer (lengths only: no decoding); None when the file ends before its trailer."""
    size = len(data)
    if size < 13:
        return None
    frames: list[tuple[int, int, int, int]] = []
    pos = 13
    if data[10] & 0x80:  # global colour table
        pos += 3 << ((data[10] & 7) + 1)
    while pos < size:
        block = data[pos]
        if block == 0x3B:  # trailer
            return frames
        if block == 0x21:  # extension: label, then sub-blocks
            pos += 2
        elif block == 0x2C:  # image descriptor, local colour table, LZW code size
            if pos + 10 > size:
                return None
            frames.append(struct.unpack_from("<HHHH", data, pos + 1))
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        else:
            return None
        while pos < size and data[pos] != 0:  # sub-blocks, up to the terminator
            pos += data[pos] + 1
        pos += 1
    return None


def _gif_complete(data: bytes) -> bool:
    return _gif_frames(data) is not None


def _gif_canvas(data: bytes, width: int, height: int) -> tuple[int, int]:
    """The canvas the decoder draws on: the logical screen, grown to hold every frame (Pillow
    grows it for a frame that does not fit, so a later 20000x20000 frame is a bomb too)."""
    for left, top, frame_width, frame_height in _gif_frames(data) or []:
        width, height = max(width, left + frame_width), max(height, top + frame_height)
    return width, height


def _jpeg_decodes(data: bytes) -> None:
    """Decode the scans strictly, at 1/8 scale (a millisecond for a photo): libjpeg paints the
    missing part of a scan cut short by an end-of-image marker grey, with only a warning,
    which the strict decoder raises."""
    try:
        colorspace = "CMYK" if simplejpeg.decode_jpeg_header(data)[2] == "CMYK" else "GRAY"
        simplejpeg.decode_jpeg(
            data, colorspace=colorspace, strict=True, min_height=1, min_width=1, min_factor=8
        )
    except ValueError as e:
        raise BadImage(f"the JPEG image is truncated or corrupt ({e})") from None


COMPLETE = {
    "JPEG": _jpeg_complete,
    "PNG": _png_complete,
    "GIF": _gif_complete,
    "WEBP": _webp_complete,
}


# Responses (Lambda proxy integration).


def error_response(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": message}),
        "isBase64Encoded": False,
    }


def binary_response(data: bytes, content_type: str) -> dict[str, Any]:
    if len(data) > MAX_RESPONSE_BYTES:
        raise BadImage(
            f"the result is {len(data)} bytes, more than the {MAX_RESPONSE_BYTES} bytes a "
            f"response can carry: send a smaller image",
        )
    return {
        "statusCode": 200,
        "headers": {"Content-Type": content_type},
        "body": base64.b64encode(data).decode("ascii"),
        "isBase64Encoded": True,
    }


def text_response(text: str, content_type: str = "text/plain; charset=utf-8") -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": content_type},
        "body": text,
        "isBase64Encoded": False,
    }


def header_value(event: dict[str, Any], name: str) -> str:
    """A request header, case-insensitively, from either payload format."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted and value is not None:
            return str(value)
    return ""
