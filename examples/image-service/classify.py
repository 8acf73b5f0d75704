"""POST a photo, get back what is in it: `military uniform is detected with 83/255 confidence`,
or with `Accept: application/json` the top-5 classes and their probabilities.

The model (model/MODEL.md: EfficientNet-Lite0, ImageNet-1k, int8 ONNX) is loaded once per
worker, when this module is imported (INIT), and never per request.
"""

from __future__ import annotations

import json
from typing import Any

import model_loader
import numpy as np
from image_input import BadImage, body_bytes, error_response, header_value, inspect, text_response
from PIL import Image, ImageOps

MODEL = model_loader.load()  # MODEL_PATH overrides the model shipped in model/
LABELS = model_loader.load_labels()
SHORT_LABELS = [line.split(", ", 1)[0] for line in LABELS]


def preprocess(img: Image.Image, size: int = 224) -> np.ndarray:
    """Exactly as model/MODEL.md says (its predict_check.py is the reference)."""
    # = ImageOps.exif_transpose(img).convert("RGB"), without the copies that both make when
    # there is nothing to do (the pixels are the same; a 25-megapixel photo is 75 MB a copy).
    ImageOps.exif_transpose(img, in_place=True)
    if img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = size, (h * size + w // 2) // w
    else:
        nw, nh = (w * size + h // 2) // h, size
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    p = np.exp(z)
    return p / p.sum()


def top_classes(img: Image.Image, k: int = 5) -> list[tuple[str, float]]:
    height, width = MODEL.input_size
    if height != width:
        raise model_loader.ModelError(f"expected a square model input, got {height}x{width}")
    probabilities = softmax(MODEL.predict(preprocess(img, height)).reshape(-1))
    if len(probabilities) != len(LABELS):
        raise model_loader.ModelError(
            f"the model has {len(probabilities)} classes but {len(LABELS)} labels"
        )
    best = np.argsort(-probabilities, kind="stable")[:k]
    return [(SHORT_LABELS[i], float(probabilities[i])) for i in best]


def wants_json(accept: str) -> bool:
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media.lower() == "application/json":
            q = next((p.split("=", 1)[1] for p in params if p.lower().startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return True
    return False


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        info = inspect(body_bytes(event))
        try:
            top5 = top_classes(info.header)  # an animation: its first frame
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
            name = "WebP" if info.format == "WEBP" else info.format
            raise BadImage(f"the {name} image is truncated or corrupt ({e})") from None
    except BadImage as e:
        return error_response(e.status, e.message)
    label, probability = top5[0]
    confidence = round(probability * 255)
    if wants_json(header_value(event, "accept")):
        body = {
            "label": label,
            "confidence": confidence,
            "top5": [{"label": name, "probability": p} for name, p in top5],
        }
        return text_response(json.dumps(body), "application/json")
    return text_response(f"{label} is detected with {confidence}/255 confidence")
