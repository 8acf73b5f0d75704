"""POST a JPEG, PNG, GIF or WebP, get it back in grayscale, in the same format.

The library for each format (OpenCV or Pillow) is the faster one as measured: see gray_ops.
"""

from __future__ import annotations

from typing import Any

import gray_ops
from image_input import (
    CONTENT_TYPES,
    BadImage,
    binary_response,
    body_bytes,
    error_response,
    inspect,
)

if "opencv" in gray_ops.LIBRARY.values():
    gray_ops.cv2_module()  # import OpenCV at INIT, not on the first request


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        data = body_bytes(event)
        info = inspect(data)
        return binary_response(gray_ops.grayscale(data, info), CONTENT_TYPES[info.format])
    except BadImage as e:
        return error_response(e.status, e.message)
