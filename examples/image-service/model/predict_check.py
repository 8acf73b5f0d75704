#!/usr/bin/env python3
"""Print the top-5 ImageNet classes for an image with the int8 model in this folder.

Needs only onnxruntime, numpy and Pillow:

    python predict_check.py path/to/photo.jpg [--threads 1]

The preprocessing is the one described in MODEL.md (shorter side to 224 bilinear, center crop
224x224, RGB, (x - 127) / 128, NCHW float32).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent


def preprocess(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img).convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = 224, (h * 224 + w // 2) // w
    else:
        nw, nh = (w * 224 + h // 2) // h, 224
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - 224) // 2, (nh - 224) // 2
    img = img.crop((left, top, left + 224, top + 224))
    x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image")
    ap.add_argument("--model", default=str(HERE / "efficientnet_lite0_int8.onnx"))
    ap.add_argument("--labels", default=str(HERE / "imagenet_labels.txt"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    labels = Path(args.labels).read_text(encoding="utf-8").splitlines()
    assert len(labels) == 1000, f"expected 1000 labels, got {len(labels)}"
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    with Image.open(args.image) as im:
        x = preprocess(im)
    logits = sess.run(["logits"], {"input": x})[0][0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    for rank, i in enumerate(np.argsort(-p)[:5], 1):
        name = labels[i].split(", ")[0]
        print(f"{rank}. {name:<24} {p[i]:6.2%}  ({round(float(p[i]) * 255)}/255)  class {i}: {labels[i]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
